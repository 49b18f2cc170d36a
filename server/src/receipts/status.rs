//! `GET /api/v1/messages/{id}/status`: a message's receipt merged with where the engine holds
//! it now. The engine is the truth about the present (queued, delivered, dead); the receipt
//! adds the history (every delivery, who acked). Either alone is enough to answer.

use serde::Serialize;
use switchboard_engine::{MessageId, MessageState, StoredMessage};

use super::{Receipt, Stage, StageKind};
use crate::error::{ApiError, ApiResult};
use crate::inbox::InboxPayload;
use crate::state::AppState;
use crate::time::iso8601;

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Where {
    /// In the inbox, waiting to be delivered (again).
    Queued,
    /// Waiting for its delay or its retry backoff to end.
    Delayed,
    /// Leased to its recipient, not acked yet.
    Delivered,
    /// Acked: done.
    Acked,
    /// Out of attempts: a dead letter.
    DeadLettered,
    /// Its time to live ran out.
    Expired,
    /// Moved to another queue (a reply whose asker stopped waiting); see the last stage.
    Rerouted,
    /// Routed, and waiting until a matching agent comes online; see `waiting_for`.
    Waiting,
    /// No longer held, and no receipt says why (purged, or dropped with dead letters off).
    Gone,
}

/// A message's delivery receipt.
#[derive(Debug, Clone, Serialize)]
pub struct MessageStatus {
    /// The message.
    pub message_id: String,
    /// Where it is now.
    pub state: Where,
    /// Who sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// Whose inbox it went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// The message it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Deliveries so far (known while the engine holds the message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Deliveries allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// When it expires, if it does (ISO-8601 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Delivered: when the current lease runs out (ISO-8601 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<String>,
    /// Ids of the replies to it, oldest first.
    pub replies: Vec<String>,
    /// What happened, oldest first.
    pub stages: Vec<Stage>,
    /// False when some of the history is unknown: the message's receipt is no longer kept
    /// (only the engine's summary is left), or stages beyond the limit were dropped.
    pub history_complete: bool,
    /// Waiting: what it waits for, in words (`an agent with capability quality`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
}

/// How often, and how long apart, a status looks again for the receipt of a settle whose commit
/// just became durable (its handler records it right after).
const SETTLE_RECORD_POLLS: usize = 50;
const SETTLE_RECORD_POLL: std::time::Duration = std::time::Duration::from_millis(2);

fn has_final_stage(receipt: &Receipt) -> bool {
    receipt.stages.iter().any(|stage| stage.stage.is_final())
}

/// The status of message `id_text`: 404 when neither the engine nor the receipts know it.
pub async fn status(state: &AppState, id_text: &str) -> ApiResult<MessageStatus> {
    let unknown = || {
        ApiError::NotFound(format!(
            "no message {id_text}: receipts are kept for the last {} messages sent, and the \
             engine only holds messages not yet acked",
            super::RECEIPTS_MAX
        ))
    };
    let id: MessageId = id_text.trim().parse().map_err(|_| unknown())?;
    // Notes a death the watcher has not seen yet, so the receipt tells it.
    super::maintenance::check(state, id).await?;
    let held = state.engine.message(id).await?;
    let mut receipt = state.receipts.get(id);
    if held.is_none() && receipt.as_ref().is_some_and(|r| !has_final_stage(r)) {
        // The engine let go of the message but the settle that did so is not in the receipt
        // yet: it is recorded once its commit is durable. Wait for that rather than answer
        // "gone" for a message being acked.
        state.engine.flush().await?;
        for _ in 0..SETTLE_RECORD_POLLS {
            receipt = state.receipts.get(id);
            if receipt.as_ref().is_none_or(has_final_stage) {
                break;
            }
            tokio::time::sleep(SETTLE_RECORD_POLL).await;
        }
    }
    let view = match (held, receipt) {
        (None, None) => return Err(unknown()),
        (Some((message, now_at)), receipt) => from_engine(state, id, &message, now_at, receipt),
        (None, Some(receipt)) => from_receipt(id, receipt),
    };
    Ok(view)
}

fn from_engine(
    state: &AppState,
    id: MessageId,
    message: &StoredMessage,
    now_at: MessageState,
    receipt: Option<Receipt>,
) -> MessageStatus {
    let payload = InboxPayload::of(message);
    let (state_now, lease_expires_at) = match now_at {
        MessageState::Ready => (Where::Queued, None),
        MessageState::Delayed { .. } => (Where::Delayed, None),
        MessageState::Leased { deadline, .. } => (Where::Delivered, Some(iso8601(deadline))),
        MessageState::Dead { reason, .. } => match reason {
            switchboard_engine::DeadReason::MaxAttempts => (Where::DeadLettered, None),
            switchboard_engine::DeadReason::Expired => (Where::Expired, None),
        },
    };
    // A routed message waiting for an agent has no receipt until it reaches one: queued is its
    // whole history so far, and its recipient is the waiting queue (as the send answered).
    let waiting_for = crate::routing::waiting::waits_for(&message.queue)
        .filter(|_| !matches!(now_at, MessageState::Dead { .. }));
    let state_now = if waiting_for.is_some() {
        Where::Waiting
    } else {
        state_now
    };
    let recipient = match &waiting_for {
        Some(_) => Some(message.queue.to_string()),
        None => receipt
            .as_ref()
            .map(|r| r.recipient.clone())
            .or_else(|| agent_of_queue(state, &message.queue)),
    };
    let history_complete = match &receipt {
        Some(receipt) => receipt.stages_dropped == 0,
        None => waiting_for.is_some(),
    };
    let stages = match &receipt {
        Some(receipt) => receipt.stages.clone(),
        // Its receipt is not kept (older than the book's limit): only the engine's summary.
        None => {
            let mut stages = vec![Stage::new(StageKind::Queued, message.enqueued_at)];
            if let MessageState::Dead { reason, at } = now_at {
                let mut stage = Stage::new(
                    match reason {
                        switchboard_engine::DeadReason::MaxAttempts => StageKind::DeadLettered,
                        switchboard_engine::DeadReason::Expired => StageKind::Expired,
                    },
                    at,
                );
                stage.reason = Some(reason.as_str().to_string());
                stages.push(stage);
            }
            stages
        }
    };
    MessageStatus {
        message_id: id.to_string(),
        state: state_now,
        sender: Some(payload.sender),
        recipient,
        reply_to: payload.reply_to,
        attempts: Some(message.attempts),
        max_attempts: Some(message.max_attempts),
        expires_at: message.expires_at.map(iso8601),
        lease_expires_at,
        replies: receipt.as_ref().map(replies).unwrap_or_default(),
        stages,
        history_complete,
        waiting_for,
    }
}

fn from_receipt(id: MessageId, receipt: Receipt) -> MessageStatus {
    let last_final = receipt.stages.iter().rev().find(|s| s.stage.is_final());
    let state_now = match last_final.map(|s| s.stage) {
        Some(StageKind::Acked) => Where::Acked,
        Some(StageKind::DeadLettered) => Where::DeadLettered,
        Some(StageKind::Expired) => Where::Expired,
        Some(StageKind::Rerouted) => Where::Rerouted,
        _ => Where::Gone,
    };
    let attempts = receipt.stages.iter().filter_map(|s| s.attempt).max();
    MessageStatus {
        message_id: id.to_string(),
        state: state_now,
        sender: Some(receipt.sender.clone()),
        recipient: Some(receipt.recipient.clone()),
        reply_to: receipt.reply_to.clone(),
        attempts,
        max_attempts: None,
        expires_at: receipt.expires_at.map(iso8601),
        lease_expires_at: None,
        replies: replies(&receipt),
        history_complete: receipt.stages_dropped == 0,
        stages: receipt.stages,
        waiting_for: None,
    }
}

fn replies(receipt: &Receipt) -> Vec<String> {
    receipt
        .stages
        .iter()
        .filter(|s| s.stage == StageKind::Replied)
        .filter_map(|s| s.related_message_id.clone())
        .collect()
}

/// The name of the agent whose inbox (or reply queue) `queue` is.
fn agent_of_queue(state: &AppState, queue: &str) -> Option<String> {
    let (_, agent_id) = queue.split_once(':')?;
    state
        .registry
        .resolve(agent_id)
        .map(|agent| agent.name.clone())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_engine::ManualClock;

    use super::*;
    use crate::api::wire::SendMessageRequest;
    use crate::config::Settings;
    use crate::registry::Registry;

    const HOUR_MS: u64 = 3_600_000;

    async fn state_with_clock() -> (AppState, Arc<ManualClock>, tokio::sync::watch::Sender<bool>) {
        crate::test_support::state_with_clock(&["alice", "bob"]).await
    }

    fn message(body: serde_json::Value) -> SendMessageRequest {
        serde_json::from_value(body).unwrap()
    }

    /// A message nobody acked within its time to live reads as expired, with the reason.
    #[tokio::test]
    async fn unacked_message_past_its_lifetime_is_expired() {
        let (state, clock, _stop) = state_with_clock().await;
        let request = message(serde_json::json!({
            "recipient": "bob", "content": "too late", "expires_in_hours": 1
        }));
        let (sent, _) = crate::inbox::send(&state, "alice", request).await.unwrap();
        let id = sent.id.to_string();
        assert_eq!(status(&state, &id).await.unwrap().state, Where::Queued);
        clock.advance_ms(HOUR_MS + 1);
        state.engine.tick();
        let view = status(&state, &id).await.unwrap();
        assert_eq!(view.state, Where::Expired);
        let last = view.stages.last().unwrap();
        assert_eq!(last.stage, StageKind::Expired);
        assert!(last.reason.as_ref().unwrap().contains("time to live"));
        assert!(view.history_complete);
    }

    /// A message whose receipt is not kept still has a status, marked incomplete, from what
    /// the engine holds.
    #[tokio::test]
    async fn message_without_a_receipt_is_described_from_the_engine() {
        let (state, _clock, _stop) = state_with_clock().await;
        let request = message(serde_json::json!({ "recipient": "bob", "content": "old" }));
        let (sent, _) = crate::inbox::send(&state, "alice", request).await.unwrap();
        // A second state over the same engine that never read the saved receipts back.
        let forgetful = AppState::new(
            state.engine.clone(),
            Registry::load(state.engine.clone()).await.unwrap(),
            Settings::default(),
            state.shutdown.clone(),
        );
        assert!(forgetful.receipts.get(sent.id).is_none());
        let view = status(&forgetful, &sent.id.to_string()).await.unwrap();
        assert_eq!(view.state, Where::Queued);
        assert_eq!(view.sender.as_deref(), Some("alice"));
        assert_eq!(view.recipient.as_deref(), Some("bob"));
        assert!(!view.history_complete);
        assert_eq!(view.stages.len(), 1);
    }

    /// A routed message waiting for a capability says so, and not that history was lost.
    #[tokio::test]
    async fn a_message_waiting_for_a_capability_says_what_it_waits_for() {
        let (state, _clock, _stop) = state_with_clock().await;
        let request = message(serde_json::json!({
            "recipient": "capability:quality", "content": "review the tests"
        }));
        let (sent, _) = crate::routing::send(&state, "alice", request)
            .await
            .unwrap();
        let view = status(&state, &sent.id.to_string()).await.unwrap();
        assert_eq!(view.state, Where::Waiting);
        assert_eq!(
            view.waiting_for.as_deref(),
            Some("an agent with capability quality")
        );
        assert_eq!(view.recipient.as_deref(), Some("capability:quality"));
        assert!(view.history_complete);
    }

    #[tokio::test]
    async fn unknown_id_is_not_found() {
        let (state, _clock, _stop) = state_with_clock().await;
        let error = status(&state, "not-an-id").await.unwrap_err();
        assert!(matches!(error, ApiError::NotFound(_)), "{error:?}");
    }
}
