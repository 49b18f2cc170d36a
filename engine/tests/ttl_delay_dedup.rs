//! Delayed delivery, time to live, dedup, size limits and long polling.

mod common;

use std::time::Duration;

use common::Harness;
use switchboard_engine::{DeadReason, EngineError, NewMessage, QueueConfig};

#[tokio::test]
async fn a_delayed_message_is_invisible_until_due() {
    let h = Harness::new();
    h.engine
        .enqueue("q", NewMessage::new("later").with_delay_ms(5000))
        .await
        .unwrap();
    h.send("q", "now", 0).await;
    assert_eq!(h.take("q", 10).await, ["now"]);
    h.advance(4999);
    assert!(h.take("q", 10).await.is_empty());
    h.advance(1);
    assert_eq!(h.take("q", 10).await, ["later"]);
}

#[tokio::test]
async fn an_expired_message_is_never_delivered_and_becomes_a_dead_letter() {
    let h = Harness::new();
    let message = NewMessage {
        ttl_ms: Some(1000),
        ..NewMessage::new("x")
    };
    let id = h.engine.enqueue("q", message).await.unwrap().id;
    h.advance(1000);
    assert!(h.take("q", 10).await.is_empty());
    let dead = h.engine.dead_letters("q", 10).await.unwrap();
    assert_eq!(
        (dead[0].message.id, dead[0].reason),
        (id, DeadReason::Expired)
    );
    assert_eq!(h.engine.queue_stats("q").unwrap().counters.expired, 1);
}

#[tokio::test]
async fn expired_messages_are_dropped_when_dead_letters_are_off() {
    let h = Harness::new();
    h.configure(
        "q",
        QueueConfig {
            message_ttl_ms: 500,
            dead_letters: false,
            ..QueueConfig::default()
        },
    )
    .await;
    let id = h.send("q", "x", 0).await;
    h.advance(500);
    h.engine.tick();
    assert!(h.engine.message(id).await.unwrap().is_none());
    assert!(h.engine.dead_letters("q", 10).await.unwrap().is_empty());
    assert_eq!(h.storage.durable_snapshot().messages.len(), 0);
}

#[tokio::test]
async fn a_message_that_expires_while_leased_is_not_redelivered() {
    let h = Harness::new();
    let message = NewMessage {
        ttl_ms: Some(1000),
        ..NewMessage::new("x")
    };
    h.engine.enqueue("q", message).await.unwrap();
    assert_eq!(h.take("q", 1).await.len(), 1);
    h.advance(30_000);
    assert!(h.take("q", 1).await.is_empty());
    assert_eq!(
        h.engine.dead_letters("q", 1).await.unwrap()[0].reason,
        DeadReason::Expired
    );
}

#[tokio::test]
async fn the_timer_expires_messages_nobody_leases() {
    let h = Harness::new();
    let message = NewMessage {
        ttl_ms: Some(10),
        ..NewMessage::new("x")
    };
    h.engine.enqueue("q", message).await.unwrap();
    h.advance(10);
    h.engine.tick();
    h.engine.flush().await.unwrap();
    let stats = h.engine.queue_stats("q").unwrap();
    assert_eq!((stats.ready, stats.dead), (0, 1));
}

#[tokio::test]
async fn a_repeated_dedup_key_returns_the_first_id_within_the_window() {
    let h = Harness::new();
    h.configure(
        "q",
        QueueConfig {
            dedup_window_ms: 1000,
            ..QueueConfig::default()
        },
    )
    .await;
    let first = h
        .engine
        .enqueue("q", NewMessage::new("a").with_dedup_key("k"))
        .await
        .unwrap();
    let again = h
        .engine
        .enqueue("q", NewMessage::new("b").with_dedup_key("k"))
        .await
        .unwrap();
    assert!(!first.deduplicated);
    assert!(again.deduplicated);
    assert_eq!(first.id, again.id);
    assert_eq!(h.take("q", 10).await, ["a"]);
    h.advance(1000);
    let later = h
        .engine
        .enqueue("q", NewMessage::new("c").with_dedup_key("k"))
        .await
        .unwrap();
    assert!(!later.deduplicated);
    assert_ne!(later.id, first.id);
}

#[tokio::test]
async fn dedup_keys_survive_a_restart_even_after_the_message_is_acked() {
    let h = Harness::new();
    let first = h
        .engine
        .enqueue("q", NewMessage::new("a").with_dedup_key("k"))
        .await
        .unwrap();
    let d = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    h.engine.ack(first.id, d.token).await.unwrap();
    let h = h.restart();
    let again = h
        .engine
        .enqueue("q", NewMessage::new("b").with_dedup_key("k"))
        .await
        .unwrap();
    assert!(again.deduplicated);
    assert!(h.take("q", 10).await.is_empty());
}

#[tokio::test]
async fn a_full_queue_refuses_the_whole_batch() {
    let h = Harness::new();
    h.configure(
        "q",
        QueueConfig {
            max_size: 3,
            ..QueueConfig::default()
        },
    )
    .await;
    h.send("q", "a", 0).await;
    let batch = vec![
        NewMessage::new("b"),
        NewMessage::new("c"),
        NewMessage::new("d"),
    ];
    assert_eq!(
        h.engine.enqueue_batch("q", batch).await,
        Err(EngineError::QueueFull {
            queue: "q".into(),
            max_size: 3
        })
    );
    assert_eq!(h.engine.queue_stats("q").unwrap().ready, 1);
    h.engine
        .enqueue_batch("q", vec![NewMessage::new("b"), NewMessage::new("c")])
        .await
        .unwrap();
}

#[tokio::test]
async fn oversize_and_invalid_input_is_refused_with_a_reason() {
    let h = Harness::new();
    let big = NewMessage::new(vec![0u8; switchboard_engine::PAYLOAD_BYTES_MAX + 1]);
    let error = h.engine.enqueue("q", big).await.unwrap_err();
    assert!(error.to_string().contains("payload"), "{error}");
    assert!(matches!(
        h.engine.enqueue("", NewMessage::new("x")).await,
        Err(EngineError::InvalidArgument(_))
    ));
    let bad_config = QueueConfig {
        max_attempts: 0,
        ..QueueConfig::default()
    };
    assert!(matches!(
        h.engine.configure_queue("q", bad_config).await,
        Err(EngineError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn a_long_poll_wakes_as_soon_as_a_message_arrives() {
    let h = Harness::new();
    let engine = h.engine.clone();
    let waiter = tokio::spawn(async move {
        engine
            .lease_wait("q", 1, Some(1000), Duration::from_secs(30))
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished());
    h.send("q", "x", 0).await;
    let got = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);
}

#[tokio::test]
async fn a_long_poll_returns_empty_when_its_wait_ends() {
    let h = Harness::new();
    let got = h
        .engine
        .lease_wait("q", 1, Some(1000), Duration::from_millis(50))
        .await
        .unwrap();
    assert!(got.is_empty());
}

#[tokio::test]
async fn stats_count_every_state_and_event() {
    let h = Harness::new();
    h.send("q", "a", 0).await;
    h.send("q", "b", 0).await;
    h.engine
        .enqueue("q", NewMessage::new("c").with_delay_ms(1000))
        .await
        .unwrap();
    let d = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    let stats = h.engine.queue_stats("q").unwrap();
    assert_eq!(
        (stats.ready, stats.delayed, stats.leased, stats.dead),
        (1, 1, 1, 0)
    );
    h.engine.ack(d.message.id, d.token).await.unwrap();
    let stats = h.engine.queue_stats("q").unwrap();
    assert_eq!(
        (
            stats.counters.enqueued,
            stats.counters.delivered,
            stats.counters.acked
        ),
        (3, 1, 1)
    );
}

#[tokio::test]
async fn ids_of_acked_messages_are_never_minted_again_after_a_restart() {
    let h = Harness::new();
    h.advance(5); // mint in a later millisecond than the engine opened in
    let first = h
        .engine
        .enqueue("q", NewMessage::new("a").with_dedup_key("k"))
        .await
        .unwrap();
    let d = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    h.engine.ack(first.id, d.token).await.unwrap();
    let plain = h.send("q", "p", 0).await;
    let d = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    h.engine.ack(plain, d.token).await.unwrap();
    let h = h.restart(); // same millisecond: the clock did not move
    let second = h.engine.enqueue("q", NewMessage::new("b")).await.unwrap();
    assert!(
        second.id > plain && second.id > first.id,
        "{} {} {}",
        first.id,
        plain,
        second.id
    );
    let again = h
        .engine
        .enqueue("q", NewMessage::new("c").with_dedup_key("k"))
        .await
        .unwrap();
    assert_eq!((again.id, again.deduplicated), (first.id, true));
}
