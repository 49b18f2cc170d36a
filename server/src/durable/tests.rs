//! Restarts in process: what one server saved on a storage is back in the next server started
//! on it (a restart, or a standby taking over). Each test stops the first server as SIGTERM
//! does and starts a second over the same memory storage.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchboard_engine::{ManualClock, MemoryStorage, MessageId};

use crate::api::wire::{Metadata, Priority, SendMessageRequest};
use crate::error::ApiError;
use crate::inbox::{self, Settle};
use crate::receipts::status::{status, Where};
use crate::receipts::StageKind;
use crate::reply::{reply, Answer};
use crate::test_support::Restartable;

/// Lease taken on inbox messages in these tests, in seconds.
const LEASE_SECONDS: u64 = 60;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_700_000_000_000))
}

fn request(body: serde_json::Value) -> SendMessageRequest {
    serde_json::from_value(body).expect("a send body")
}

async fn send(server: &Restartable, sender: &str, body: serde_json::Value) -> (MessageId, String) {
    let (sent, routed) = crate::routing::send(&server.state, sender, request(body))
        .await
        .expect("the send is stored");
    (sent.id, routed.name)
}

/// Leases `agent`'s inbox and acks every message; returns their ids.
async fn lease_and_ack(server: &Restartable, agent: &str) -> Vec<String> {
    let record = server.state.registry.require(agent).unwrap();
    let leased = inbox::lease(&server.state, &record, 10, Some(LEASE_SECONDS), 0)
        .await
        .unwrap();
    for message in &leased {
        inbox::settle(&server.state, &record, &message.id, Settle::Ack)
            .await
            .unwrap();
    }
    leased.into_iter().map(|message| message.id).collect()
}

fn answer(content: &str) -> Answer {
    Answer {
        content: content.into(),
        priority: Priority::Medium,
        metadata: Metadata::new(),
        keep_question: false,
        dedup_key: None,
    }
}

/// A message sent, delivered and acked before a restart still shows those stages after it,
/// as a complete history (it used to be a 404: the engine let go of it, the receipt was lost).
#[tokio::test]
async fn receipt_stages_recorded_before_a_restart_are_back_after_it() {
    let storage = MemoryStorage::new();
    let first = Restartable::start(&storage, clock()).await;
    first.register("alice", &[]).await;
    first.register("bob", &[]).await;
    let (id, _) = send(
        &first,
        "alice",
        json!({ "recipient": "bob", "content": "hi" }),
    )
    .await;
    assert_eq!(lease_and_ack(&first, "bob").await, [id.to_string()]);
    first.stop().await;

    let second = Restartable::start(&storage, clock()).await;
    let view = status(&second.state, &id.to_string()).await.unwrap();
    assert_eq!(view.state, Where::Acked);
    let kinds: Vec<StageKind> = view.stages.iter().map(|stage| stage.stage).collect();
    assert_eq!(
        kinds,
        [StageKind::Queued, StageKind::Delivered, StageKind::Acked]
    );
    assert_eq!(view.stages[1].agent.as_deref(), Some("bob"));
    assert!(view.history_complete);
}

/// The receipts' log is compacted at start: restarting again and again does not grow it, and
/// the receipts stay.
#[tokio::test]
async fn receipts_survive_repeated_restarts_with_a_compacted_log() {
    let storage = MemoryStorage::new();
    let first = Restartable::start(&storage, clock()).await;
    first.register("alice", &[]).await;
    first.register("bob", &[]).await;
    let (id, _) = send(
        &first,
        "alice",
        json!({ "recipient": "bob", "content": "hi" }),
    )
    .await;
    lease_and_ack(&first, "bob").await;
    first.stop().await;
    for _ in 0..3 {
        let again = Restartable::start(&storage, clock()).await;
        let stats = again
            .state
            .engine
            .queue_stats(crate::receipts::persist::RECEIPTS_QUEUE)
            .unwrap();
        assert_eq!(stats.ready, 1, "one snapshot message: {stats:?}");
        let view = status(&again.state, &id.to_string()).await.unwrap();
        assert_eq!(view.stages.len(), 3);
        again.stop().await;
    }
}

/// Bob acked alice's question before the restart; after it, bob can still answer it, and
/// mallory, to whom it was never delivered, still cannot (it used to be a 404 for both).
#[tokio::test]
async fn only_the_recipient_answers_a_question_settled_before_a_restart() {
    let storage = MemoryStorage::new();
    let first = Restartable::start(&storage, clock()).await;
    for name in ["alice", "bob", "mallory"] {
        first.register(name, &[]).await;
    }
    let (question, _) = send(
        &first,
        "alice",
        json!({ "recipient": "bob", "content": "which port?" }),
    )
    .await;
    lease_and_ack(&first, "bob").await;
    first.stop().await;

    let second = Restartable::start(&storage, clock()).await;
    let mallory = second.state.registry.require("mallory").unwrap();
    let refused = reply(
        &second.state,
        &mallory,
        &question.to_string(),
        answer("666"),
    )
    .await;
    assert!(
        matches!(refused, Err(ApiError::Forbidden(_))),
        "{refused:?}"
    );
    let bob = second.state.registry.require("bob").unwrap();
    let replied = reply(&second.state, &bob, &question.to_string(), answer("8080"))
        .await
        .unwrap();
    assert_eq!(replied.routed.name, "alice");
}

/// Alice asks bob and waits; the server restarts; bob's answer goes to alice's reply queue,
/// and alice's `ask`, polling again, gets it (it used to land in her inbox, and the poll
/// waited in vain).
#[tokio::test]
async fn an_ask_open_before_a_restart_gets_the_answer_after_it() {
    let storage = MemoryStorage::new();
    let first = Restartable::start(&storage, clock()).await;
    first.register("alice", &[]).await;
    first.register("bob", &[]).await;
    let (question, _) = send(
        &first,
        "alice",
        json!({
            "recipient": "bob", "content": "approve deploy?",
            "metadata": { "expects_reply": true },
        }),
    )
    .await;
    let bob = first.state.registry.require("bob").unwrap();
    inbox::lease(&first.state, &bob, 10, Some(LEASE_SECONDS), 0)
        .await
        .unwrap();
    first.stop().await;

    let second = Restartable::start(&storage, clock()).await;
    let bob = second.state.registry.require("bob").unwrap();
    let replied = reply(&second.state, &bob, &question.to_string(), answer("yes"))
        .await
        .unwrap();
    let alice = second.state.registry.require("alice").unwrap();
    let answer = crate::receipts::asks::poll(&second.state, question, &alice, Duration::ZERO)
        .await
        .unwrap()
        .expect("the answer waits in the reply queue");
    assert_eq!(answer.id, replied.enqueued.id.to_string());
    assert_eq!(answer.content, "yes");
}

/// Round robin over three agents continues after a restart with the agent whose turn it
/// was, not with the first one again.
#[tokio::test]
async fn round_robin_continues_after_a_restart() {
    let storage = MemoryStorage::new();
    let first = Restartable::start(&storage, clock()).await;
    for name in ["a", "b", "c"] {
        first.register(name, &["quality"]).await;
    }
    let to = json!({ "recipient": "capability:quality", "content": "review" });
    assert_eq!(send(&first, "tester", to.clone()).await.1, "a");
    first.stop().await;

    let second = Restartable::start(&storage, clock()).await;
    for name in ["a", "b", "c"] {
        second.heartbeat(name);
    }
    assert_eq!(send(&second, "tester", to.clone()).await.1, "b");
    assert_eq!(send(&second, "tester", to).await.1, "c");
}

/// A sticky thread bound before a restart stays on its agent after it (the restarted turn
/// would have given it to another).
#[tokio::test]
async fn a_sticky_thread_keeps_its_agent_after_a_restart() {
    let storage = MemoryStorage::new();
    let first = Restartable::start(&storage, clock()).await;
    for name in ["a", "b"] {
        first.register(name, &["quality"]).await;
    }
    let rules =
        crate::routing::rules::parse(r#"{"capability_strategy": "sticky", "rules": []}"#).unwrap();
    first
        .state
        .routing
        .replace_rules(&first.state.engine, rules)
        .await
        .unwrap();
    let in_thread = |thread: &str| {
        json!({
            "recipient": "capability:quality", "content": "more",
            "metadata": { "thread_id": thread },
        })
    };
    assert_eq!(send(&first, "tester", in_thread("t0")).await.1, "a");
    assert_eq!(send(&first, "tester", in_thread("t1")).await.1, "b");
    first.stop().await;

    let second = Restartable::start(&storage, clock()).await;
    for name in ["a", "b"] {
        second.heartbeat(name);
    }
    assert_eq!(send(&second, "tester", in_thread("t1")).await.1, "b");
    assert_eq!(send(&second, "tester", in_thread("t0")).await.1, "a");
}

/// A routed send retried with its idempotency key after a restart gets the first try's
/// message, and nothing is stored twice, though round robin would now pick another agent.
#[tokio::test]
async fn a_routed_send_retried_after_a_restart_is_stored_once() {
    let storage = MemoryStorage::new();
    let first = Restartable::start(&storage, clock()).await;
    for name in ["a", "b"] {
        first.register(name, &["quality"]).await;
    }
    let unkeyed = json!({ "recipient": "capability:quality", "content": "first" });
    assert_eq!(send(&first, "tester", unkeyed).await.1, "a");
    let keyed = json!({
        "recipient": "capability:quality", "content": "deploy", "dedup_key": "k-1"
    });
    let (id, agent) = send(&first, "tester", keyed.clone()).await;
    assert_eq!(agent, "b");
    first.stop().await;

    let second = Restartable::start(&storage, clock()).await;
    for name in ["a", "b"] {
        second.heartbeat(name);
    }
    let (retried, answer) = crate::routing::send(&second.state, "tester", request(keyed))
        .await
        .unwrap();
    assert_eq!((retried.id, retried.deduplicated), (id, true));
    assert_eq!(answer.name, "b");
    let mut stored = 0;
    for name in ["a", "b"] {
        let record = second.state.registry.require(name).unwrap();
        let queued = second.state.engine.peek(&record.inbox(), 10).await.unwrap();
        stored += queued
            .iter()
            .filter(|message| inbox::InboxPayload::of(message).content == "deploy")
            .count();
    }
    assert_eq!(stored, 1);
}

/// A send to a named agent retried with its idempotency key after a restart is stored once:
/// the engine keeps its dedup keys durably (this held before routed sends were claimed too).
#[tokio::test]
async fn a_direct_send_retried_after_a_restart_is_stored_once() {
    let storage = MemoryStorage::new();
    let first = Restartable::start(&storage, clock()).await;
    first.register("bob", &[]).await;
    let keyed = json!({ "recipient": "bob", "content": "deploy", "dedup_key": "k-2" });
    let (id, _) = send(&first, "tester", keyed.clone()).await;
    first.stop().await;

    let second = Restartable::start(&storage, clock()).await;
    let (retried, _) = crate::routing::send(&second.state, "tester", request(keyed))
        .await
        .unwrap();
    assert_eq!((retried.id, retried.deduplicated), (id, true));
    let bob = second.state.registry.require("bob").unwrap();
    assert_eq!(
        second
            .state
            .engine
            .peek(&bob.inbox(), 10)
            .await
            .unwrap()
            .len(),
        1
    );
}
