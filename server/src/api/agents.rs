//! `/api/v1/agents`: register, list, show, heartbeat, delete; an agent's dead letters.

use axum::extract::State;
use axum::Json;

use super::wire::{
    AgentFilter, AgentInfo, AgentStatus, DeadLetterInfo, RedriveRequest, RedriveResponse,
    RegisterRequest, RegisterResponse, StatusResponse,
};
use crate::auth::tokens::{self, TokenHash};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, OptionalJson};
use crate::inbox;
use crate::registry::{AgentView, TokenClaim};
use crate::state::AppState;
use crate::time::iso8601;

/// Most dead letters listed at once.
const DEAD_LETTERS_LISTED_MAX: usize = 1000;

/// Registers an agent; an existing name keeps its id and is updated. With `--auth token` a
/// new name is open and answered with the agent's `token`; re-registering needs the agent's
/// token (kept, `token` absent) or the admin token (a new token is issued and returned).
#[utoipa::path(post, path = "/api/v1/agents/register", tag = "agents",
    request_body = RegisterRequest,
    responses((status = 200, body = RegisterResponse),
              (status = 401, description = "The name exists and no token (or an invalid one) was sent"),
              (status = 403, description = "The name exists and another agent's token was sent"),
              (status = 422, description = "Invalid body")))]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> ApiResult<Json<RegisterResponse>> {
    let (record, created, token) = if caller == Caller::AuthOff {
        let (record, created) = state.registry.register(request).await?;
        (record, created, None)
    } else {
        let token = tokens::generate();
        let claim = TokenClaim {
            caller,
            fresh: TokenHash::of(&token),
        };
        let (record, created, issued) = state.registry.register_as(request, Some(claim)).await?;
        if issued && !created {
            tracing::info!(agent = %record.name, "agent token re-issued by the admin");
        }
        (record, created, issued.then_some(token))
    };
    if created {
        tracing::info!(agent = %record.name, id = %record.id, "agent registered");
    }
    Ok(Json(RegisterResponse {
        agent_id: record.id.clone(),
        status: "registered".into(),
        name: record.name.clone(),
        token,
    }))
}

pub(crate) fn info(state: &AppState, view: AgentView) -> AgentInfo {
    let connected = state.sockets.is_connected(&view.record.id);
    AgentInfo {
        id: view.record.id.clone(),
        name: view.record.name.clone(),
        status: if connected {
            AgentStatus::Online
        } else {
            view.status
        },
        capabilities: view.record.capabilities.clone(),
        last_seen: iso8601(view.last_seen),
        endpoint: view.record.endpoint.clone(),
        metadata: view.record.metadata.clone(),
        connected,
        discovery: view
            .record
            .discovery
            .as_ref()
            .map(|found| super::discovery::DiscoveryInfo::from(&**found)),
    }
}

/// Lists agents, optionally only those with a status or a capability.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", params(AgentFilter),
    responses((status = 200, body = Vec<AgentInfo>), (status = 422, description = "Invalid filter")))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<AgentFilter>,
) -> Json<Vec<AgentInfo>> {
    let agents = state
        .registry
        .list()
        .into_iter()
        .map(|view| info(&state, view))
        .filter(|agent| filter.status.is_none_or(|status| agent.status == status))
        .filter(|agent| {
            filter
                .capability
                .as_ref()
                .is_none_or(|wanted| agent.capabilities.iter().any(|c| c == wanted))
        })
        .collect();
    Json(agents)
}

fn view_of(state: &AppState, key: &str) -> ApiResult<AgentView> {
    let record = state.registry.require(key)?;
    state
        .registry
        .view(&record.id)
        .ok_or_else(|| ApiError::NotFound(format!("Agent not found: {key}")))
}

/// Shows one agent, by name or id.
#[utoipa::path(get, path = "/api/v1/agents/{agent}", tag = "agents",
    params(("agent" = String, Path, description = "Agent name or id")),
    responses((status = 200, body = AgentInfo), (status = 404, description = "Unknown agent")))]
pub async fn show(
    State(state): State<AppState>,
    ApiPath(agent): ApiPath<String>,
) -> ApiResult<Json<AgentInfo>> {
    let view = view_of(&state, &agent)?;
    Ok(Json(info(&state, view)))
}

/// Records a heartbeat: the agent is online for the next 5 minutes.
#[utoipa::path(post, path = "/api/v1/agents/{agent}/heartbeat", tag = "agents",
    params(("agent" = String, Path, description = "Agent name or id")),
    responses((status = 200, body = StatusResponse), (status = 404, description = "Unknown agent")))]
pub async fn heartbeat(
    State(state): State<AppState>,
    ApiPath(agent): ApiPath<String>,
) -> ApiResult<Json<StatusResponse>> {
    let record = state.registry.require(&agent)?;
    state.registry.touch(&record.id, None);
    Ok(Json(StatusResponse {
        status: "heartbeat_recorded".into(),
    }))
}

/// Removes an agent from the registry (its inbox's messages stay in storage).
#[utoipa::path(delete, path = "/api/v1/agents/{agent}", tag = "agents",
    params(("agent" = String, Path, description = "Agent name or id")),
    responses((status = 200, body = StatusResponse), (status = 404, description = "Unknown agent")))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(agent): ApiPath<String>,
) -> ApiResult<Json<StatusResponse>> {
    let record = state.registry.remove(&agent).await?;
    tracing::info!(agent = %record.name, id = %record.id, "agent deleted");
    Ok(Json(StatusResponse {
        status: "deleted".into(),
    }))
}

/// Lists an agent's dead letters, oldest first.
#[utoipa::path(get, path = "/api/v1/agents/{agent}/dead-letters", tag = "agents",
    params(("agent" = String, Path, description = "Agent name or id")),
    responses((status = 200, body = Vec<DeadLetterInfo>), (status = 404, description = "Unknown agent")))]
pub async fn dead_letters(
    State(state): State<AppState>,
    ApiPath(agent): ApiPath<String>,
) -> ApiResult<Json<Vec<DeadLetterInfo>>> {
    let record = state.registry.require(&agent)?;
    let letters = state
        .engine
        .dead_letters(&record.inbox(), DEAD_LETTERS_LISTED_MAX)
        .await?;
    Ok(Json(
        letters
            .iter()
            .map(|letter| DeadLetterInfo {
                message: inbox::dead_message(&letter.message),
                reason: letter.reason.as_str().into(),
                died_at: iso8601(letter.died_at),
            })
            .collect(),
    ))
}

/// Sends an agent's dead letters (all, or those named) back to its inbox.
#[utoipa::path(post, path = "/api/v1/agents/{agent}/dead-letters/redrive", tag = "agents",
    params(("agent" = String, Path, description = "Agent name or id")),
    request_body(content = RedriveRequest, description = "Optional; empty body redrives all"),
    responses((status = 200, body = RedriveResponse), (status = 404, description = "Unknown agent")))]
pub async fn redrive(
    State(state): State<AppState>,
    ApiPath(agent): ApiPath<String>,
    OptionalJson(request): OptionalJson<RedriveRequest>,
) -> ApiResult<Json<RedriveResponse>> {
    let record = state.registry.require(&agent)?;
    let ids = super::queues::parse_ids(request.message_ids.as_deref())?;
    let redriven = state
        .engine
        .redrive(&record.inbox(), ids.as_deref())
        .await?;
    Ok(Json(RedriveResponse { redriven }))
}
