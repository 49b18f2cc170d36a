//! Operations servers build on: cancel-safe long polls, peeking, purging a queue, and reading
//! a message's current lease.

mod common;

use std::time::Duration;

use common::Harness;
use switchboard_engine::{FaultPlan, FaultyStorage, MemoryStorage, NewMessage};

#[tokio::test]
async fn a_cancelled_long_poll_leaves_no_message_leased_to_nobody() {
    // With durable leases the poll waits for the lease's commit; a storage that stalls
    // commits makes the cancellation land after the lease was taken.
    let storage = MemoryStorage::new();
    let plan = FaultPlan {
        fail_after: Some(1),
        transient: true,
        ..FaultPlan::default()
    };
    let faulty = FaultyStorage::new(storage.clone(), plan);
    let handle = faulty.plan();
    let clock = std::sync::Arc::new(switchboard_engine::ManualClock::new(common::START_MS));
    let options = switchboard_engine::EngineOptions {
        durable_leases: true,
        ..common::options()
    };
    let engine = switchboard_engine::Engine::open(Box::new(faulty), clock, options).unwrap();
    engine.enqueue("q", NewMessage::new("x")).await.unwrap();
    let poll = engine.lease_wait("q", 1, Some(60_000), Duration::from_secs(30));
    let cancelled = tokio::time::timeout(Duration::from_millis(100), poll).await;
    assert!(
        cancelled.is_err(),
        "the poll was still waiting for its commit"
    );
    handle.lock().fail_after = None;
    engine.flush().await.unwrap();
    let stats = engine.queue_stats("q").unwrap();
    assert_eq!((stats.ready, stats.leased), (1, 0));
    let again = engine.lease("q", 1, Some(1000)).await.unwrap();
    assert_eq!(
        again[0].message.attempts, 1,
        "the released delivery is not counted"
    );
}

#[tokio::test]
async fn peek_shows_ready_messages_in_order_without_leasing() {
    let h = Harness::new();
    h.send("q", "low", 1).await;
    h.send("q", "high", 9).await;
    let peeked: Vec<_> = h
        .engine
        .peek("q", 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.payload.to_vec())
        .collect();
    assert_eq!(peeked, [b"high".to_vec(), b"low".to_vec()]);
    assert_eq!(h.take("q", 10).await, ["high", "low"]);
}

#[tokio::test]
async fn purge_queue_deletes_every_message_durably() {
    let h = Harness::new();
    h.send("q", "a", 0).await;
    h.send("q", "b", 0).await;
    h.engine
        .enqueue("q", NewMessage::new("c").with_delay_ms(1000))
        .await
        .unwrap();
    h.take("q", 1).await;
    h.send("other", "keep", 0).await;
    assert_eq!(h.engine.purge_queue("q").await.unwrap(), 3);
    let h = h.restart();
    assert!(h.take("q", 10).await.is_empty());
    assert_eq!(h.take("other", 10).await, ["keep"]);
}

#[tokio::test]
async fn current_lease_names_the_queue_token_and_deadline() {
    let h = Harness::new();
    let id = h.send("q", "a", 0).await;
    assert!(h.engine.current_lease(id).is_none());
    let d = h.engine.lease("q", 1, Some(5000)).await.unwrap().remove(0);
    let (queue, token, deadline) = h.engine.current_lease(id).unwrap();
    assert_eq!((&*queue, token, deadline), ("q", d.token, d.lease_deadline));
    h.engine.ack(id, token).await.unwrap();
    assert!(h.engine.current_lease(id).is_none());
}
