//! `/api/v1/messages`: send, lease (GET), ack, nack, extend, batch ack.

use axum::extract::State;
use axum::Json;
use switchboard_engine::{LeaseToken, MessageId, MessageState};

use super::wire::{
    AckResponse, AgentQuery, BatchAckRequest, BatchAckResponse, InboxMessage, InboxQuery,
    SendMessageRequest, SendMessageResponse, SenderQuery,
};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::inbox::{self, Settle};
use crate::limits;
use crate::state::AppState;
use crate::time::iso8601;

/// Sends a message to one agent's inbox.
#[utoipa::path(post, path = "/api/v1/messages", tag = "messages", params(SenderQuery),
    request_body = SendMessageRequest,
    responses((status = 200, body = SendMessageResponse),
              (status = 404, description = "Agent not found"),
              (status = 422, description = "Invalid body"),
              (status = 429, description = "Sender over its rate limit")))]
pub async fn send(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SenderQuery>,
    ApiJson(request): ApiJson<SendMessageRequest>,
) -> ApiResult<Json<SendMessageResponse>> {
    // `auto` and `capability:NAME` are routed (see `routing`); names and ids go direct.
    let (enqueued, routed) = crate::routing::send(&state, &query.sender, request).await?;
    Ok(Json(sent_response(&enqueued, routed)))
}

/// The answer to a send (also part of the answer to a reply).
pub fn sent_response(
    enqueued: &switchboard_engine::Enqueued,
    routed: crate::routing::Routed,
) -> SendMessageResponse {
    SendMessageResponse {
        message_id: enqueued.id.to_string(),
        status: "sent".into(),
        recipient: routed.name,
        deduplicated: enqueued.deduplicated,
        routed_to: routed.routed_to,
        rule: routed.rule,
        strategy: routed.strategy.map(|s| s.as_str().to_string()),
        capability: routed.capability,
        waiting_queue: routed.waiting_queue,
        waiting_for_capability: routed.waiting_for_capability,
        note: routed.note,
    }
}

/// Leases up to `limit` of an agent's messages, highest priority first, oldest first within a
/// priority. A message not acked before its lease ends is delivered again.
#[utoipa::path(get, path = "/api/v1/messages/{agent}", tag = "messages",
    params(("agent" = String, Path, description = "Agent name or id"), InboxQuery),
    responses((status = 200, body = Vec<InboxMessage>), (status = 404, description = "Agent not found")))]
pub async fn receive(
    State(state): State<AppState>,
    ApiPath(agent): ApiPath<String>,
    ApiQuery(query): ApiQuery<InboxQuery>,
) -> ApiResult<Json<Vec<InboxMessage>>> {
    let agent = state.registry.require(&agent)?;
    let messages = inbox::lease(
        &state,
        &agent,
        query.limit,
        query.lease_seconds,
        query.wait_seconds,
    )
    .await?;
    Ok(Json(messages))
}

/// Acknowledges one of the agent's leased messages: it is deleted.
#[utoipa::path(post, path = "/api/v1/messages/{id}/ack", tag = "messages",
    params(("id" = String, Path, description = "Message id"), AgentQuery),
    responses((status = 200, body = AckResponse),
              (status = 404, description = "Message not found or already acknowledged"),
              (status = 409, description = "The lease ran out")))]
pub async fn ack(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<AgentQuery>,
) -> ApiResult<Json<AckResponse>> {
    let agent = state.registry.require(&query.agent_id)?;
    inbox::settle(&state, &agent, &id, Settle::Ack).await?;
    Ok(Json(AckResponse {
        status: "acknowledged".into(),
        message_id: id,
        lease_expires_at: None,
    }))
}

/// Gives a leased message back: retried after `delay_seconds` (default: the backoff).
#[utoipa::path(post, path = "/api/v1/messages/{id}/nack", tag = "messages",
    params(("id" = String, Path, description = "Message id"), AgentQuery),
    responses((status = 200, body = AckResponse),
              (status = 404, description = "Message not found or already acknowledged")))]
pub async fn nack(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<AgentQuery>,
) -> ApiResult<Json<AckResponse>> {
    let agent = state.registry.require(&query.agent_id)?;
    let delay_ms = match query.delay_seconds {
        Some(seconds) if seconds > limits::DELAY_SECONDS_MAX => {
            return Err(ApiError::invalid(format!(
                "delay_seconds is {seconds}, the limit is {}",
                limits::DELAY_SECONDS_MAX
            )))
        }
        other => other.map(|seconds| seconds * 1000),
    };
    inbox::settle(&state, &agent, &id, Settle::Nack(delay_ms)).await?;
    Ok(Json(AckResponse {
        status: "requeued".into(),
        message_id: id,
        lease_expires_at: None,
    }))
}

/// Extends the lease of a leased message to `lease_seconds` from now.
#[utoipa::path(post, path = "/api/v1/messages/{id}/extend", tag = "messages",
    params(("id" = String, Path, description = "Message id"), AgentQuery),
    responses((status = 200, body = AckResponse),
              (status = 404, description = "Message not found or already acknowledged"),
              (status = 422, description = "lease_seconds missing or out of range")))]
pub async fn extend(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<AgentQuery>,
) -> ApiResult<Json<AckResponse>> {
    let agent = state.registry.require(&query.agent_id)?;
    let Some(seconds) = query.lease_seconds else {
        return Err(ApiError::invalid("lease_seconds is required"));
    };
    let lease_ms = inbox::lease_ms(Some(seconds))?;
    let deadline = inbox::settle(&state, &agent, &id, Settle::Extend(lease_ms)).await?;
    Ok(Json(AckResponse {
        status: "extended".into(),
        message_id: id,
        lease_expires_at: deadline.map(iso8601),
    }))
}

/// Acknowledges many of the agent's leased messages in one commit.
#[utoipa::path(post, path = "/api/v1/messages/ack", tag = "messages",
    request_body = BatchAckRequest,
    responses((status = 200, body = BatchAckResponse), (status = 404, description = "Agent not found")))]
pub async fn ack_batch(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<BatchAckRequest>,
) -> ApiResult<Json<BatchAckResponse>> {
    if request.message_ids.len() > limits::BATCH_ACK_IDS_MAX {
        return Err(ApiError::invalid(format!(
            "{} message_ids, the limit is {}",
            request.message_ids.len(),
            limits::BATCH_ACK_IDS_MAX
        )));
    }
    // The guard cannot read bodies; the agent named here is checked against the token here.
    caller.may_act_as(&state, &request.agent_id)?;
    let agent = state.registry.require(&request.agent_id)?;
    let inbox = agent.inbox();
    let now = state.engine.now_ms();
    let mut held: Vec<(String, MessageId, LeaseToken, u64)> = Vec::new();
    let mut not_found = Vec::new();
    for text in request.message_ids {
        let Ok(id) = text.parse::<MessageId>() else {
            not_found.push(text);
            continue;
        };
        if let Some(lease) = state.lease_book.get(id, &inbox, now) {
            held.push((text, id, lease.token, lease.enqueued_at));
            continue;
        }
        match state.engine.message(id).await? {
            Some((message, MessageState::Leased { token, .. })) if *message.queue == inbox => {
                held.push((text, id, token, message.enqueued_at));
            }
            _ => not_found.push(text),
        }
    }
    let items: Vec<(MessageId, LeaseToken)> = held.iter().map(|h| (h.1, h.2)).collect();
    let results = state.engine.ack_batch(&items).await?;
    let now = state.engine.now_ms();
    for (id, token) in &items {
        state.lease_book.remove(*id, *token);
    }
    let mut acknowledged = Vec::new();
    for ((text, id, _, enqueued_at), result) in held.into_iter().zip(results) {
        match result {
            Ok(()) => {
                state.deliveries.record(enqueued_at, now);
                state.monitor.acked(enqueued_at, now);
                state.receipts.acked(id, None, now);
                acknowledged.push(text);
            }
            Err(_) => not_found.push(text),
        }
    }
    Ok(Json(BatchAckResponse {
        acknowledged,
        not_found,
    }))
}
