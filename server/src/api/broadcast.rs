//! `POST /api/v1/broadcast`: one copy per target inbox, each with `metadata.broadcast_id`.
//! Sockets push the copies from the targets' inboxes, so only targets get them.

use axum::extract::State;
use axum::Json;
use futures_util::future::try_join_all;

use super::wire::{
    AgentStatus, BroadcastRequest, BroadcastResponse, SendMessageRequest, SenderQuery,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::inbox;
use crate::limits;
use crate::registry::AgentRecord;
use crate::state::AppState;

/// Sends one copy to each named agent (names, ids, `capability:NAME`), or to every online
/// agent when none is named.
#[utoipa::path(post, path = "/api/v1/broadcast", tag = "messages", params(SenderQuery),
    request_body = BroadcastRequest,
    responses((status = 200, body = BroadcastResponse),
              (status = 404, description = "No target agents found"),
              (status = 422, description = "Invalid body")))]
pub async fn broadcast(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SenderQuery>,
    ApiJson(request): ApiJson<BroadcastRequest>,
) -> ApiResult<Json<BroadcastResponse>> {
    if request.recipients.len() > limits::BROADCAST_RECIPIENTS_MAX {
        return Err(ApiError::invalid(format!(
            "{} recipients, the limit is {}",
            request.recipients.len(),
            limits::BROADCAST_RECIPIENTS_MAX
        )));
    }
    let started = std::time::Instant::now();
    let targets = targets(&state, &request.recipients);
    if targets.is_empty() {
        state.monitor.routing_failed();
        return Err(ApiError::NotFound("No target agents found".into()));
    }
    let broadcast_id = uuid::Uuid::new_v4().to_string();
    let mut metadata = request.metadata;
    metadata.insert("broadcast_id".into(), broadcast_id.clone().into());
    let now = state.engine.now_ms();
    let mut messages = Vec::with_capacity(targets.len());
    let mut sents = Vec::with_capacity(targets.len());
    for target in &targets {
        let copy = SendMessageRequest {
            recipient: target.name.clone(),
            content: request.content.clone(),
            priority: request.priority,
            expires_in_hours: request.expires_in_hours,
            metadata: metadata.clone(),
            delay_seconds: None,
            max_attempts: None,
            dedup_key: None,
            reply_to: None,
        };
        sents.push(crate::receipts::Sent::of(&copy));
        messages.push(inbox::new_message(&query.sender, copy, now)?);
    }
    state.limits.check(&query.sender, targets.len() as u32)?;
    // Concurrent enqueues join one group commit.
    let engine = &state.engine;
    let inboxes: Vec<String> = targets.iter().map(|t| t.inbox()).collect();
    let stored = try_join_all(
        inboxes
            .iter()
            .zip(messages)
            .map(|(queue, message)| engine.enqueue(queue, message)),
    )
    .await
    .inspect_err(|_| state.monitor.routing_failed())?;
    for ((target, enqueued), sent) in targets.iter().zip(&stored).zip(sents) {
        crate::receipts::on_sent(&state, enqueued.id, &query.sender, target, sent);
        // Dual mode: not-yet-migrated targets get a copy in their pane too.
        if crate::migrate::wants_pane_copy(&state, &target.id) {
            crate::migrate::copy_to_pane(
                &state,
                target,
                &query.sender,
                &request.content,
                enqueued.id,
            );
        }
    }
    state
        .monitor
        .sent(targets.len() as u64, started.elapsed(), engine.now_ms());
    let websocket_sent = targets
        .iter()
        .filter(|t| state.sockets.is_connected(&t.id))
        .count();
    Ok(Json(BroadcastResponse {
        broadcast_id,
        messages_sent: targets.len(),
        websocket_sent,
        target_agents: targets.len(),
        target_agent_names: targets.iter().map(|t| t.name.clone()).collect(),
    }))
}

/// The named agents that exist (each once), or every online agent when none is named.
fn targets(state: &AppState, recipients: &[String]) -> Vec<std::sync::Arc<AgentRecord>> {
    if recipients.is_empty() {
        return state
            .registry
            .list()
            .into_iter()
            .filter(|view| {
                view.status == AgentStatus::Online || state.sockets.is_connected(&view.record.id)
            })
            .map(|view| view.record)
            .collect();
    }
    let mut seen = std::collections::HashSet::new();
    recipients
        .iter()
        .flat_map(|key| expand(state, key.trim()))
        .filter(|record| seen.insert(record.id.clone()))
        .collect()
}

/// One named recipient: an agent by name or id, or `capability:NAME`, every agent with that
/// capability (online or not: its copy waits in its inbox) whose worktree is not gone. Copies
/// are addressed to these inboxes directly and never routed.
fn expand(state: &AppState, key: &str) -> Vec<std::sync::Arc<AgentRecord>> {
    if crate::routing::is_capability_recipient(key) {
        let wanted = key[crate::routing::RECIPIENT_CAPABILITY_PREFIX.len()..].trim();
        return state
            .registry
            .list()
            .into_iter()
            .map(|view| view.record)
            .filter(|record| {
                !record.is_gone()
                    && record
                        .capabilities
                        .iter()
                        .any(|capability| capability.eq_ignore_ascii_case(wanted))
            })
            .collect();
    }
    state.registry.resolve(key).into_iter().collect()
}
