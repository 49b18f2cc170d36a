//! Delivery receipts and request/reply over HTTP:
//! - `GET /api/v1/messages/{id}/status`: the message's stages with times (see
//!   [`crate::receipts::status`]).
//! - `GET /api/v1/messages/{id}/reply?agent_id=A&wait_seconds=N`: the asker waits for the reply
//!   to its question; `DELETE` on the same path stops waiting (see [`crate::receipts::asks`]).
//! - `POST /api/v1/messages/{id}/reply?agent_id=A`: agent `A` answers message `id`: the answer
//!   goes to its sender and the question is acknowledged unless `keep_question` (see
//!   `crate::reply`).
//! - `GET /api/v1/feed[?agent=NAME]`: every stage of every message (or of those `NAME` sent or
//!   received) as server-sent events, for people watching (`switchboard tail`).

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use switchboard_engine::MessageId;
use tokio::sync::broadcast;

use super::wire::{InboxMessage, Metadata, Priority, SendMessageResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::limits;
use crate::receipts::feed::lagged_frame;
use crate::receipts::status::MessageStatus;
use crate::receipts::{asks, status, ReceiptEvent};
use crate::state::AppState;

/// The routes of this file, merged into [`crate::app::app`].
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/messages/{id}/status", get(message_status))
        .route(
            "/api/v1/messages/{id}/reply",
            get(wait_reply).delete(cancel_reply).post(send_reply),
        )
        .route("/api/v1/feed", get(feed))
}

/// A message's delivery receipt: where it is and what happened to it, with times.
#[utoipa::path(get, path = "/api/v1/messages/{id}/status", tag = "messages",
    params(("id" = String, Path, description = "Message id")),
    responses((status = 200, description = "The message's state and stages"),
              (status = 404, description = "No such message (or its receipt was forgotten)")))]
pub async fn message_status(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<MessageStatus>> {
    Ok(Json(status::status(&state, &id).await?))
}

/// Query of the reply endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReplyQuery {
    /// The asker (the question's sender), by name or id.
    pub agent_id: String,
    /// Long poll: wait up to this many seconds (at most 20) for the reply.
    #[serde(default)]
    pub wait_seconds: u64,
}

/// Answer of `GET .../reply`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReplyAnswer {
    /// The reply, taken (acked) for the asker; `null` when none came within the wait.
    pub reply: Option<InboxMessage>,
}

/// Answer of `DELETE .../reply`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CancelAnswer {
    /// Always `"cancelled"`.
    pub status: String,
    /// Replies that were waiting and went to the asker's inbox.
    pub moved_to_inbox: usize,
}

fn question_id(text: &str) -> ApiResult<MessageId> {
    text.trim()
        .parse()
        .map_err(|error| ApiError::invalid(format!("message id {text:?}: {error}")))
}

/// Waits for the reply to a question the agent sent with `metadata.expects_reply = true`.
#[utoipa::path(get, path = "/api/v1/messages/{id}/reply", tag = "messages",
    params(("id" = String, Path, description = "The question's id"), ReplyQuery),
    responses((status = 200, description = "`{reply: message or null}`"),
              (status = 404, description = "Unknown agent")))]
pub async fn wait_reply(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ReplyQuery>,
) -> ApiResult<Json<ReplyAnswer>> {
    if query.wait_seconds > limits::WAIT_SECONDS_MAX {
        return Err(ApiError::invalid(format!(
            "wait_seconds is {}, the limit is {}",
            query.wait_seconds,
            limits::WAIT_SECONDS_MAX
        )));
    }
    let question = question_id(&id)?;
    let asker = state.registry.require(&query.agent_id)?;
    state.registry.touch(&asker.id, None);
    let wait = std::time::Duration::from_secs(query.wait_seconds);
    let reply = asks::poll(&state, question, &asker, wait).await?;
    Ok(Json(ReplyAnswer { reply }))
}

/// Stops waiting for the reply to a question; replies already there go to the inbox.
#[utoipa::path(delete, path = "/api/v1/messages/{id}/reply", tag = "messages",
    params(("id" = String, Path, description = "The question's id"), ReplyQuery),
    responses((status = 200, description = "`{status: cancelled, moved_to_inbox}`")))]
pub async fn cancel_reply(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ReplyQuery>,
) -> ApiResult<Json<CancelAnswer>> {
    let question = question_id(&id)?;
    let asker = state.registry.require(&query.agent_id)?;
    let moved_to_inbox = asks::cancel(&state, question, &asker).await?;
    Ok(Json(CancelAnswer {
        status: "cancelled".into(),
        moved_to_inbox,
    }))
}

/// Query of `POST .../reply`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnswerQuery {
    /// The agent answering (the question was delivered to it), by name or id.
    pub agent_id: String,
}

/// Body of `POST .../reply`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplyRequest {
    /// The answer; must not be empty.
    pub content: String,
    /// Defaults to medium.
    #[serde(default)]
    pub priority: Priority,
    /// Free-form object kept with the answer.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    /// Leave the question leased instead of acknowledging it (default false: answering a
    /// question acknowledges it, so it is not delivered again).
    #[serde(default)]
    pub keep_question: bool,
    /// Idempotency key of the answer (the send's `dedup_key`): a reply retried with the same
    /// key within the dedup window is stored once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
}

/// Answer of `POST .../reply`: the send's answer, and whether the question was acknowledged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplySent {
    /// The answer as sent (its `message_id`, `recipient`, ...).
    #[serde(flatten)]
    pub sent: SendMessageResponse,
    /// True when the question was acknowledged; false with `keep_question`, or when it was
    /// not leased to the replier (acked already, or its lease ran out: it comes again).
    pub question_acknowledged: bool,
}

/// Answers message `id`: the answer goes to its sender with `reply_to` = `id`, then the
/// question is acknowledged in the replier's inbox (unless `keep_question`).
#[utoipa::path(post, path = "/api/v1/messages/{id}/reply", tag = "messages",
    params(("id" = String, Path, description = "The message answered"), AnswerQuery),
    request_body = ReplyRequest,
    responses((status = 200, description = "The send's answer plus `question_acknowledged`"),
              (status = 404, description = "Unknown agent, or no such message to answer"),
              (status = 422, description = "Invalid body")))]
pub async fn send_reply(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<AnswerQuery>,
    ApiJson(request): ApiJson<ReplyRequest>,
) -> ApiResult<Json<ReplySent>> {
    let replier = state.registry.require(&query.agent_id)?;
    let answer = crate::reply::Answer {
        content: request.content,
        priority: request.priority,
        metadata: request.metadata,
        keep_question: request.keep_question,
        dedup_key: request.dedup_key,
    };
    let replied = crate::reply::reply(&state, &replier, &id, answer).await?;
    Ok(Json(ReplySent {
        sent: super::messages::sent_response(&replied.enqueued, replied.routed),
        question_acknowledged: replied.question_acknowledged,
    }))
}

/// Query of the feed.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Only messages this agent (name or id) sent or received.
    #[serde(default)]
    pub agent: Option<String>,
}

/// Live traffic as server-sent events: a `ready` event first, then one `receipt` event per
/// stage (the JSON of [`ReceiptEvent`]), and `lagged` when a slow reader missed some.
#[utoipa::path(get, path = "/api/v1/feed", tag = "messages", params(FeedQuery),
    responses((status = 200, description = "text/event-stream"),
              (status = 404, description = "Unknown agent")))]
pub async fn feed(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let agent = match &query.agent {
        Some(key) => Some(state.registry.require(key)?.name.clone()),
        None => None,
    };
    let events = state.receipts.subscribe(&state);
    let ready = Event::default()
        .event("ready")
        .data(serde_json::json!({ "agent": agent }).to_string());
    let live = stream::unfold(
        (events, state.shutdown.clone(), agent),
        |(mut events, mut shutdown, agent)| async move {
            loop {
                let received = tokio::select! {
                    received = events.recv() => received,
                    _ = stopping(&mut shutdown) => return None,
                };
                let event = match received {
                    Ok(event) if agent.as_deref().is_none_or(|name| event.involves(name)) => {
                        receipt_event(&event)
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(missed)) => Event::default()
                        .event("lagged")
                        .data(lagged_frame(missed).to_string()),
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                return Some((Ok(event), (events, shutdown, agent)));
            }
        },
    );
    let stream = stream::once(async move { Ok(ready) }).chain(live);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn receipt_event(event: &ReceiptEvent) -> Event {
    Event::default()
        .event("receipt")
        .data(serde_json::to_string(event).expect("an event always serializes"))
}

/// Resolves when the server starts shutting down, so open feeds end and graceful shutdown is
/// not held up by them (never, if nobody can tell it to).
async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}
