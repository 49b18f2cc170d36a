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
             is gone); send the answer with `switchboard send SENDER TEXT --reply-to {question}`",
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
        dedup_key: None,
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
