//! Answering a message (`POST /api/v1/messages/{id}/reply`, used by `switchboard reply` and
//! the MCP `reply` tool): the answer goes to the question's sender with `reply_to` = the
//! question's id, and the question is then acknowledged in the replier's inbox, because an
//! answered question is handled. Before, the question stayed leased and came back when its
//! lease ran out, and the agent answered it again. `keep_question` opts out (the replier
//! still has work to do on it and acks it itself later).
//!
//! This sits above `routing` (which sends) and `inbox` (which settles), so neither imports
//! the other for it.

use switchboard_engine::{Enqueued, MessageId};

use crate::api::wire::{Metadata, Priority, SendMessageRequest};
use crate::error::{ApiError, ApiResult};
use crate::inbox::{self, InboxPayload, Settle};
use crate::registry::AgentRecord;
use crate::routing::Routed;
use crate::state::AppState;

/// An answer to send.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The text.
    pub content: String,
    /// Its priority.
    pub priority: Priority,
    /// Free-form metadata kept with it.
    pub metadata: Metadata,
    /// Leave the question leased (not acknowledged) after answering.
    pub keep_question: bool,
    /// The answer's idempotency key (dedup key), so a retried reply is stored once.
    pub dedup_key: Option<String>,
}

/// What answering did.
#[derive(Debug)]
pub struct Replied {
    /// The answer as stored.
    pub enqueued: Enqueued,
    /// Where it went.
    pub routed: Routed,
    /// Whether the question was acknowledged: false when `keep_question` was asked, or when
    /// the question is not leased to the replier (acked already, its lease ran out, or it was
    /// never in the replier's inbox).
    pub question_acknowledged: bool,
}

/// Sends `answer` from `replier` to the sender of message `question_text`, then acks the
/// question if it is leased to `replier` (unless `answer.keep_question`).
pub async fn reply(
    state: &AppState,
    replier: &AgentRecord,
    question_text: &str,
    answer: Answer,
) -> ApiResult<Replied> {
    let question: MessageId = question_text
        .trim()
        .parse()
        .map_err(|error| ApiError::invalid(format!("message id {question_text:?}: {error}")))?;
    let inbox = replier.inbox();
    // The question itself names its sender while it is in the replier's inbox; once it is
    // gone from the engine, its receipt still does.
    let held = state
        .engine
        .message(question)
        .await?
        .filter(|(message, _)| *message.queue == inbox);
    let sender = match &held {
        Some((message, _)) => Some(InboxPayload::of(message).sender),
        None => state.receipts.get(question).map(|receipt| receipt.sender),
    };
    let Some(sender) = sender else {
        return Err(ApiError::NotFound(format!(
            "cannot find message {question} to answer (it is not in {}'s inbox and its receipt \
             is gone); send the answer as a new message to its sender with reply_to = {question}",
            replier.name
        )));
    };
    let request = SendMessageRequest {
        recipient: sender,
        content: answer.content,
        priority: answer.priority,
        expires_in_hours: Some(crate::limits::EXPIRES_IN_HOURS_DEFAULT),
        metadata: answer.metadata,
        delay_seconds: None,
        max_attempts: None,
        dedup_key: answer.dedup_key,
        reply_to: Some(question.to_string()),
    };
    let (enqueued, routed) = crate::routing::send(state, &replier.name, request).await?;
    let question_acknowledged = match held {
        Some((message, _)) if !answer.keep_question => {
            ack_question(state, question, &inbox, message.enqueued_at).await?
        }
        _ => false,
    };
    Ok(Replied {
        enqueued,
        routed,
        question_acknowledged,
    })
}

/// Acks the question with its current lease, read from the engine; false when it is not
/// leased from `inbox` any more (the answer is sent either way).
async fn ack_question(
    state: &AppState,
    question: MessageId,
    inbox: &str,
    enqueued_at: switchboard_engine::UnixMillis,
) -> ApiResult<bool> {
    let Some((queue, token, _deadline)) = state.engine.current_lease(question) else {
        return Ok(false);
    };
    if &*queue != inbox {
        return Ok(false);
    }
    match inbox::settle_with(state, question, token, enqueued_at, Settle::Ack).await {
        Ok(_) => Ok(true),
        // The lease ran out (or another ack won) between the read and the ack.
        Err(ApiError::Conflict(_)) | Err(ApiError::NotFound(_)) => Ok(false),
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_engine::{Engine, EngineOptions, ManualClock, MemoryStorage};

    use super::*;
    use crate::api::wire::RegisterRequest;
    use crate::config::Settings;
    use crate::registry::Registry;

    /// Lease the replier takes on the question, in seconds.
    const LEASE_SECONDS: u64 = 60;

    /// A server state on a manual clock with the agents alice and bob.
    async fn state_with_clock() -> (AppState, Arc<ManualClock>, tokio::sync::watch::Sender<bool>) {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let options = EngineOptions {
            tick_interval: None,
            ..EngineOptions::default()
        };
        let engine = Engine::open(Box::new(MemoryStorage::new()), clock.clone(), options).unwrap();
        let registry = Registry::load(engine.clone()).await.unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let state = AppState::new(engine, registry, Settings::default(), stopped);
        for name in ["alice", "bob"] {
            let request: RegisterRequest =
                serde_json::from_value(serde_json::json!({ "name": name })).unwrap();
            state.registry.register(request).await.unwrap();
        }
        (state, clock, stop)
    }

    /// Alice asks bob something; bob leases it. Returns the question's id.
    async fn question_leased_by_bob(state: &AppState) -> String {
        let request: SendMessageRequest = serde_json::from_value(
            serde_json::json!({ "recipient": "bob", "content": "which port?" }),
        )
        .unwrap();
        let (question, _) = crate::routing::send(state, "alice", request).await.unwrap();
        let bob = state.registry.require("bob").unwrap();
        let leased = inbox::lease(state, &bob, 10, Some(LEASE_SECONDS), 0)
            .await
            .unwrap();
        assert_eq!(leased.len(), 1);
        question.id.to_string()
    }

    fn answer(keep_question: bool) -> Answer {
        Answer {
            content: "8080".into(),
            priority: Priority::Medium,
            metadata: Metadata::new(),
            keep_question,
            dedup_key: None,
        }
    }

    /// Bob's inbox once the question's lease would have run out.
    async fn bob_inbox_after_the_lease(state: &AppState, clock: &ManualClock) -> Vec<String> {
        clock.advance_ms(LEASE_SECONDS * 1000 + 1);
        state.engine.tick();
        let bob = state.registry.require("bob").unwrap();
        inbox::lease(state, &bob, 10, None, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|message| message.id)
            .collect()
    }

    #[tokio::test]
    async fn a_replied_question_does_not_come_back_after_its_lease() {
        let (state, clock, _stop) = state_with_clock().await;
        let question = question_leased_by_bob(&state).await;
        let bob = state.registry.require("bob").unwrap();
        let replied = reply(&state, &bob, &question, answer(false)).await.unwrap();
        assert!(replied.question_acknowledged);
        assert_eq!(replied.routed.name, "alice", "the answer goes to the asker");
        assert!(bob_inbox_after_the_lease(&state, &clock).await.is_empty());
    }

    #[tokio::test]
    async fn a_question_kept_by_the_replier_comes_back_after_its_lease() {
        let (state, clock, _stop) = state_with_clock().await;
        let question = question_leased_by_bob(&state).await;
        let bob = state.registry.require("bob").unwrap();
        let replied = reply(&state, &bob, &question, answer(true)).await.unwrap();
        assert!(!replied.question_acknowledged);
        assert_eq!(bob_inbox_after_the_lease(&state, &clock).await, [question]);
    }

    #[tokio::test]
    async fn another_agents_message_is_answered_but_not_acknowledged() {
        let (state, _clock, _stop) = state_with_clock().await;
        let question = question_leased_by_bob(&state).await;
        let alice = state.registry.require("alice").unwrap();
        let replied = reply(&state, &alice, &question, answer(false))
            .await
            .unwrap();
        assert!(
            !replied.question_acknowledged,
            "only bob may settle bob's message"
        );
        assert!(state
            .engine
            .current_lease(question.parse().unwrap())
            .is_some());
    }
}
