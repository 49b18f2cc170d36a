//! Answering a message (`POST /api/v1/messages/{id}/reply`, used by `switchboard reply` and
//! the MCP `reply` tool): the answer goes to the question's sender with `reply_to` = the
//! question's id, and the question is then acknowledged in the replier's inbox, because an
//! answered question is handled. Before, the question stayed leased and came back when its
//! lease ran out, and the agent answered it again. `keep_question` opts out (the replier
//! still has work to do on it and acks it itself later).
//!
//! Only an agent the question was for may answer it (403 for anyone else: ids are
//! guessable), and a question from `system` or a removed agent is refused with 422 and advice to
//! ack it, since its sender has no inbox (see docs/security.md).
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
    let (sender, for_replier) = match &held {
        Some((message, _)) => (Some(InboxPayload::of(message).sender), true),
        None => match state.receipts.get(question) {
            Some(receipt) => {
                let for_replier = receipt.delivered_to(&replier.name);
                (Some(receipt.sender), for_replier)
            }
            None => (None, false),
        },
    };
    let Some(sender) = sender else {
        return Err(ApiError::NotFound(format!(
            "{NOT_FOUND_PREFIX} {question} to answer (it is not in {}'s inbox and its receipt \
             is gone); send the answer as a new message to its sender with reply_to = {question}",
            replier.name
        )));
    };
    // Message ids are guessable: only an agent the question was for may answer it, or anyone
    // could put words in the recipient's mouth (and the asker would take them as the answer).
    if !for_replier {
        return Err(ApiError::Forbidden(format!(
            "message {question} was not sent to you ({}); only the agent it was delivered to \
             can answer it. To write to its sender, send a new message without reply_to",
            replier.name
        )));
    }
    if state.registry.resolve(&sender).is_none() {
        return Err(no_inbox_to_answer(question, &sender));
    }
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

/// How the route's own "no such question" detail starts, so a client can tell it from other
/// not-founds (the replier's name unknown, say).
pub const NOT_FOUND_PREFIX: &str = "cannot find message";

/// The question's sender cannot be answered: `system` (broadcasts, sends without a sender) or
/// an agent removed since. The question is left leased: the caller is told to ack it.
fn no_inbox_to_answer(question: MessageId, sender: &str) -> ApiError {
    let why = if sender == "system" {
        format!("message {question} came from `{sender}`, which has no inbox to answer")
    } else {
        format!(
            "message {question} came from `{sender}`, which is no registered agent (it was \
             removed), so it has no inbox to answer"
        )
    };
    ApiError::invalid(format!(
        "{why}; acknowledge it (switchboard ack {question})"
    ))
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
        // The answer is stored already: failing the reply now (storage went down between the
        // send and the ack) would make the replier send it again under a new key. The
        // question stays leased and is reported unacknowledged.
        Err(other) => {
            tracing::warn!(%question, error = %other, "answer sent, but acking the question failed");
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_engine::ManualClock;

    use super::*;
    use crate::api::wire::RegisterRequest;

    /// Lease the replier takes on the question, in seconds.
    const LEASE_SECONDS: u64 = 60;

    async fn state_with_clock() -> (AppState, Arc<ManualClock>, tokio::sync::watch::Sender<bool>) {
        crate::test_support::state_with_clock(&["alice", "bob"]).await
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
    async fn a_message_sent_to_someone_else_is_refused_and_left_alone() {
        let (state, _clock, _stop) = state_with_clock().await;
        let question = question_leased_by_bob(&state).await;
        let alice = state.registry.require("alice").unwrap();
        let refused = reply(&state, &alice, &question, answer(false)).await;
        match refused {
            Err(ApiError::Forbidden(detail)) => {
                assert!(detail.contains("was not sent to you"), "{detail}")
            }
            other => panic!("expected 403, got {other:?}"),
        }
        assert!(state
            .engine
            .current_lease(question.parse().unwrap())
            .is_some());
    }

    #[tokio::test]
    async fn a_message_from_system_is_refused_with_advice_to_ack_and_left_leased() {
        let (state, _clock, _stop) = state_with_clock().await;
        let request: SendMessageRequest = serde_json::from_value(
            serde_json::json!({ "recipient": "bob", "content": "maintenance at noon" }),
        )
        .unwrap();
        let (notice, _) = crate::routing::send(&state, "system", request)
            .await
            .unwrap();
        let bob = state.registry.require("bob").unwrap();
        inbox::lease(&state, &bob, 10, Some(LEASE_SECONDS), 0)
            .await
            .unwrap();
        let refused = reply(&state, &bob, &notice.id.to_string(), answer(false)).await;
        match refused {
            Err(ApiError::Invalid { status, detail }) => {
                assert_eq!(status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
                assert!(detail.contains("came from `system`"), "{detail}");
                assert!(
                    detail.contains(&format!("switchboard ack {}", notice.id)),
                    "{detail}"
                );
            }
            other => panic!("expected 422, got {other:?}"),
        }
        assert!(state.engine.current_lease(notice.id).is_some(), "not acked");
    }

    /// Alice asks bob with `expects_reply` and waits; returns the question's id.
    async fn alice_waits_for_bob(state: &AppState) -> MessageId {
        let request: SendMessageRequest = serde_json::from_value(serde_json::json!({
            "recipient": "bob",
            "content": "approve deploy?",
            "metadata": { "expects_reply": true },
        }))
        .unwrap();
        let (question, _) = crate::routing::send(state, "alice", request).await.unwrap();
        question.id
    }

    /// Sends `reply_to = question` from `sender` to alice; returns the queue it went to.
    async fn reply_to_alice(state: &AppState, sender: &str, question: MessageId) -> String {
        let request: SendMessageRequest = serde_json::from_value(serde_json::json!({
            "recipient": "alice",
            "content": "yes",
            "reply_to": question.to_string(),
        }))
        .unwrap();
        let (sent, _) = crate::routing::send(state, sender, request).await.unwrap();
        let (message, _) = state.engine.message(sent.id).await.unwrap().unwrap();
        message.queue.to_string()
    }

    #[tokio::test]
    async fn a_waiting_asker_takes_the_answer_of_the_agent_it_asked() {
        let (state, _clock, _stop) = state_with_clock().await;
        let question = alice_waits_for_bob(&state).await;
        let alice = state.registry.require("alice").unwrap();
        let queue = reply_to_alice(&state, "bob", question).await;
        assert_eq!(queue, crate::receipts::asks::replies_queue(&alice.id));
    }

    #[tokio::test]
    async fn a_reply_to_from_an_agent_not_asked_goes_to_the_inbox_not_the_ask() {
        let (state, _clock, _stop) = state_with_clock().await;
        let request: RegisterRequest =
            serde_json::from_value(serde_json::json!({ "name": "mallory" })).unwrap();
        state.registry.register(request).await.unwrap();
        let question = alice_waits_for_bob(&state).await;
        let alice = state.registry.require("alice").unwrap();
        let queue = reply_to_alice(&state, "mallory", question).await;
        assert_eq!(queue, alice.inbox());
        let receipt = state.receipts.get(question).unwrap();
        assert!(
            !receipt.has(crate::receipts::StageKind::Replied),
            "the question's receipt names no answer"
        );
    }
}
