//! In-process tests of the broker over a real engine and registry: which inbox a routed
//! message lands in, per strategy, and how waiting messages reach an agent that arrives.

use std::sync::Arc;

use serde_json::json;
use switchboard_engine::{Engine, EngineOptions, MemoryStorage, SystemClock};

use super::rules;
use crate::api::wire::{Priority, RegisterRequest, SendMessageRequest};
use crate::config::Settings;
use crate::error::ApiError;
use crate::inbox::InboxPayload;
use crate::registry::Registry;
use crate::state::AppState;

async fn state() -> AppState {
    let engine = Engine::open(
        Box::new(MemoryStorage::new()),
        Arc::new(SystemClock),
        EngineOptions::default(),
    )
    .unwrap();
    let registry = Registry::load(engine.clone()).await.unwrap();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    AppState::new(engine, registry, Settings::default(), stopped)
}

/// Registers `name` (which makes it online) with `capabilities`.
async fn agent(state: &AppState, name: &str, capabilities: &[&str]) -> String {
    let request = RegisterRequest {
        name: name.into(),
        capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
        endpoint: None,
        metadata: Default::default(),
    };
    state.registry.register(request).await.unwrap().0.id.clone()
}

fn request(recipient: &str, content: &str, metadata: serde_json::Value) -> SendMessageRequest {
    serde_json::from_value(json!({
        "recipient": recipient, "content": content, "metadata": metadata
    }))
    .unwrap()
}

async fn send(state: &AppState, recipient: &str, content: &str) -> super::broker::Routed {
    super::send(state, "tester", request(recipient, content, json!({})))
        .await
        .unwrap()
        .1
}

/// Messages ready in `name`'s inbox, by content.
async fn inbox(state: &AppState, name: &str) -> Vec<String> {
    let record = state.registry.resolve(name).unwrap();
    state
        .engine
        .peek(&record.inbox(), 100)
        .await
        .unwrap()
        .iter()
        .map(|m| InboxPayload::of(m).content)
        .collect()
}

#[tokio::test]
async fn auto_follows_the_first_matching_rule() {
    let state = state().await;
    agent(&state, "tester", &["quality"]).await;
    agent(&state, "writer", &["documentation"]).await;
    let routed = send(&state, "auto", "please update the README").await;
    assert_eq!(routed.routed_to.as_deref(), Some("writer"));
    assert_eq!(routed.rule.as_deref(), Some("documentation"));
    let routed = send(&state, "auto", "run the test suite").await;
    assert_eq!(routed.routed_to.as_deref(), Some("tester"));
    assert_eq!(inbox(&state, "tester").await, ["run the test suite"]);
    assert_eq!(inbox(&state, "writer").await, ["please update the README"]);
}

#[tokio::test]
async fn urgent_content_is_boosted_to_critical() {
    let state = state().await;
    agent(&state, "lead", &["orchestration"]).await;
    send(&state, "auto", "URGENT: prod is down").await;
    let record = state.registry.resolve("lead").unwrap();
    let stored = state.engine.peek(&record.inbox(), 1).await.unwrap();
    assert_eq!(InboxPayload::of(&stored[0]).priority, Priority::Critical);
    assert_eq!(
        Priority::from_engine(stored[0].priority),
        Priority::Critical
    );
}

#[tokio::test]
async fn capability_recipients_take_turns() {
    let state = state().await;
    for name in ["q1", "q2", "q3"] {
        agent(&state, name, &["quality"]).await;
    }
    agent(&state, "other", &["documentation"]).await;
    let mut picks = Vec::new();
    for index in 0..6 {
        let routed = send(&state, "capability:Quality", &format!("job {index}")).await;
        picks.push(routed.routed_to.unwrap());
    }
    assert_eq!(picks, ["q1", "q2", "q3", "q1", "q2", "q3"]);
    assert!(inbox(&state, "other").await.is_empty());
}

#[tokio::test]
async fn least_loaded_prefers_the_agent_with_fewest_unsettled_leases() {
    let state = state().await;
    let busy = agent(&state, "busy", &["quality"]).await;
    agent(&state, "free", &["quality"]).await;
    let spec = rules::parse(r#"{"rules": [], "capability_strategy": "least_loaded"}"#).unwrap();
    state
        .routing
        .replace_rules(&state.engine, spec)
        .await
        .unwrap();
    // Two messages leased to "busy" and not acked: its load is 2.
    for content in ["a", "b"] {
        let to_busy = request("busy", content, json!({}));
        super::send(&state, "tester", to_busy).await.unwrap();
    }
    let busy_inbox = crate::registry::inbox_queue(&busy);
    let leases = state
        .engine
        .lease(&busy_inbox, 10, Some(60_000))
        .await
        .unwrap();
    assert_eq!(leases.len(), 2);
    for index in 0..3 {
        let routed = send(&state, "capability:quality", &format!("job {index}")).await;
        assert_eq!(routed.routed_to.as_deref(), Some("free"));
    }
    // Acks bring the load down again: with "free" holding 3 ready, "busy" is chosen.
    for lease in &leases {
        state
            .engine
            .ack(lease.message.id, lease.token)
            .await
            .unwrap();
    }
    let routed = send(&state, "capability:quality", "after acks").await;
    assert_eq!(routed.routed_to.as_deref(), Some("busy"));
}

#[tokio::test]
async fn sticky_keeps_a_thread_with_one_agent() {
    let state = state().await;
    for name in ["a", "b", "c"] {
        agent(&state, name, &["quality"]).await;
    }
    let spec = rules::parse(r#"{"rules": [], "capability_strategy": "sticky"}"#).unwrap();
    state
        .routing
        .replace_rules(&state.engine, spec)
        .await
        .unwrap();
    let mut picks = std::collections::BTreeSet::new();
    for index in 0..5 {
        let message = request(
            "capability:quality",
            &format!("step {index}"),
            json!({"thread_id": "t-7"}),
        );
        let (_, routed) = super::send(&state, "tester", message).await.unwrap();
        picks.insert(routed.routed_to.unwrap());
    }
    assert_eq!(picks.len(), 1, "one thread, one agent: {picks:?}");
}

#[tokio::test]
async fn offline_agents_are_not_candidates() {
    let state = state().await;
    let gone = agent(&state, "away", &["quality"]).await;
    agent(&state, "here", &["quality"]).await;
    state
        .registry
        .touch(&gone, Some(crate::api::wire::AgentStatus::Offline));
    for _ in 0..3 {
        let routed = send(&state, "capability:quality", "x").await;
        assert_eq!(routed.routed_to.as_deref(), Some("here"));
    }
}

#[tokio::test]
async fn a_message_with_no_online_candidate_waits_and_is_handed_to_the_first_arrival() {
    let state = state().await;
    agent(&state, "writer", &["documentation"]).await;
    let routed = send(&state, "capability:quality", "check coverage").await;
    assert_eq!(routed.routed_to, None);
    assert_eq!(routed.waiting_queue.as_deref(), Some("capability:quality"));
    assert!(
        inbox(&state, "writer").await.is_empty(),
        "not sent to a random agent"
    );
    assert_eq!(super::stats(&state).waiting["capability:quality"], 1);
    agent(&state, "tester", &["quality"]).await;
    assert_eq!(super::waiting::sweep(&state).await, 1);
    assert_eq!(inbox(&state, "tester").await, ["check coverage"]);
    let record = state.registry.resolve("tester").unwrap();
    let stored = state.engine.peek(&record.inbox(), 1).await.unwrap();
    let metadata = InboxPayload::of(&stored[0]).metadata;
    assert_eq!(metadata["routing"]["capability"], "quality");
    assert!(metadata["routing"]["queued_message_id"].is_string());
    let stats = super::stats(&state);
    assert!(stats.waiting.is_empty(), "{:?}", stats.waiting);
    assert_eq!(stats.messages_handed_over, 1);
}

#[tokio::test]
async fn auto_without_a_matching_rule_is_refused_and_counted() {
    let state = state().await;
    agent(&state, "tester", &["quality"]).await;
    let spec =
        rules::parse(r#"[{"name": "tests", "keywords": ["test"], "capability": "quality"}]"#)
            .unwrap();
    state
        .routing
        .replace_rules(&state.engine, spec)
        .await
        .unwrap();
    let error = super::send(&state, "tester", request("auto", "hello", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(error, ApiError::Invalid { .. }), "{error:?}");
    let stats = super::stats(&state);
    assert_eq!(stats.routing_failures, 1);
    send(&state, "auto", "a test").await;
    assert_eq!(super::stats(&state).rule_hits["tests"], 1);
}

#[tokio::test]
async fn agent_only_rules_wait_in_the_rule_queue() {
    let state = state().await;
    let spec =
        rules::parse(r#"[{"name": "db", "keywords": ["postgres"], "agents": ["dba"]}]"#).unwrap();
    state
        .routing
        .replace_rules(&state.engine, spec)
        .await
        .unwrap();
    let routed = send(&state, "auto", "postgres is slow").await;
    assert_eq!(routed.waiting_queue.as_deref(), Some("rule:db"));
    agent(&state, "dba", &[]).await;
    assert_eq!(super::waiting::sweep(&state).await, 1);
    assert_eq!(inbox(&state, "dba").await, ["postgres is slow"]);
}

#[tokio::test]
async fn a_capability_no_agent_has_is_named_in_the_answer_with_the_close_ones() {
    let state = state().await;
    agent(&state, "tester", &["quality"]).await;
    let routed = send(&state, "capability:qualty", "review this").await;
    assert_eq!(routed.waiting_for_capability.as_deref(), Some("qualty"));
    let note = routed.note.unwrap_or_default();
    assert!(
        note.contains("no agent has capability \"qualty\""),
        "{note}"
    );
    assert!(note.contains("Did you mean `quality`?"), "{note}");
}

#[tokio::test]
async fn a_message_reaching_an_agent_has_no_waiting_note() {
    let state = state().await;
    agent(&state, "tester", &["quality"]).await;
    let routed = send(&state, "capability:quality", "review this").await;
    assert_eq!(routed.routed_to.as_deref(), Some("tester"));
    assert_eq!((routed.waiting_for_capability, routed.note), (None, None));
}

#[tokio::test]
async fn auto_falls_back_when_the_matched_capability_has_no_agent() {
    let state = state().await;
    agent(&state, "generalist", &["general"]).await;
    let routed = send(&state, "auto", "please review the tests").await;
    assert_eq!(routed.rule.as_deref(), Some("any-agent"));
    assert_eq!(routed.routed_to.as_deref(), Some("generalist"));
    let note = routed.note.unwrap_or_default();
    assert!(
        note.contains("rule \"quality\" matched, but no agent has capability \"quality\""),
        "{note}"
    );
    assert_eq!(
        inbox(&state, "generalist").await,
        ["please review the tests"]
    );
}

#[tokio::test]
async fn auto_keeps_a_matched_capability_whose_agents_are_offline() {
    let state = state().await;
    agent(&state, "tester", &["quality"]).await;
    agent(&state, "generalist", &[]).await;
    let tester = state.registry.resolve("tester").unwrap();
    state
        .registry
        .touch(&tester.id, Some(crate::api::wire::AgentStatus::Offline));
    let routed = send(&state, "auto", "please review the tests").await;
    assert_eq!(routed.rule.as_deref(), Some("quality"));
    assert_eq!(routed.waiting_queue.as_deref(), Some("capability:quality"));
    assert!(routed.note.unwrap_or_default().contains("is online"));
}

/// A `capability:` send with `dedup_key`, from `tester`: its answer.
async fn send_keyed(state: &AppState, content: &str, key: &str) -> (String, bool, String) {
    let request = serde_json::from_value(json!({
        "recipient": "capability:quality", "content": content, "dedup_key": key
    }))
    .unwrap();
    let (enqueued, routed) = super::send(state, "tester", request).await.unwrap();
    (
        enqueued.id.to_string(),
        enqueued.deduplicated,
        routed.routed_to.unwrap(),
    )
}

#[tokio::test]
async fn a_routed_send_retried_with_its_key_is_stored_once_though_turns_would_move_on() {
    let state = state().await;
    agent(&state, "q1", &["quality"]).await;
    agent(&state, "q2", &["quality"]).await;
    let first = send_keyed(&state, "run the suite", "retry-1").await;
    let retry = send_keyed(&state, "run the suite", "retry-1").await;
    assert_eq!(retry.0, first.0, "the retry answers the first message's id");
    assert!(!first.1 && retry.1, "only the retry is deduplicated");
    assert_eq!(retry.2, first.2, "the retry names the same agent");
    let stored = [inbox(&state, "q1").await, inbox(&state, "q2").await].concat();
    assert_eq!(stored, ["run the suite"]);
}

#[tokio::test]
async fn a_routed_send_with_another_key_is_a_new_message() {
    let state = state().await;
    agent(&state, "q1", &["quality"]).await;
    agent(&state, "q2", &["quality"]).await;
    let first = send_keyed(&state, "run the suite", "key-a").await;
    let second = send_keyed(&state, "run the suite", "key-b").await;
    assert_ne!(second.0, first.0);
    assert!(!second.1);
    let stored = [inbox(&state, "q1").await, inbox(&state, "q2").await].concat();
    assert_eq!(stored, ["run the suite", "run the suite"]);
}

#[tokio::test]
async fn a_retry_arriving_while_the_first_try_is_routed_is_stored_once() {
    let state = state().await;
    agent(&state, "q1", &["quality"]).await;
    agent(&state, "q2", &["quality"]).await;
    let (first, retry) = tokio::join!(
        send_keyed(&state, "run the suite", "racing"),
        send_keyed(&state, "run the suite", "racing")
    );
    assert_eq!(retry.0, first.0);
    let stored = [inbox(&state, "q1").await, inbox(&state, "q2").await].concat();
    assert_eq!(stored, ["run the suite"]);
}
