//! `GET /api/v1/agents/{agent}/leased`: the agent's messages delivered to it and not yet
//! acknowledged (or given back), so an agent can be reminded of them before they come back
//! at the end of their leases (`switchboard inbox` prints the reminder).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::error::ApiResult;
use crate::extract::ApiPath;
use crate::state::AppState;
use crate::time::iso8601;

/// The route of this file, merged into [`crate::app::app`].
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/agents/{agent}/leased", get(leased))
}

/// One leased, unsettled message.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeasedMessage {
    /// The message's id.
    pub id: String,
    /// When its lease runs out and it is delivered again (ISO 8601).
    pub lease_expires_at: String,
}

/// Answer of `GET /api/v1/agents/{agent}/leased`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeasedAnswer {
    /// The agent's name.
    pub agent: String,
    /// Its leased messages, soonest lease end first (at most 100).
    pub leased: Vec<LeasedMessage>,
}

/// The agent's messages that were delivered (leased) and are not settled yet.
#[utoipa::path(get, path = "/api/v1/agents/{agent}/leased", tag = "agents",
    params(("agent" = String, Path, description = "Agent name or id")),
    responses((status = 200, body = LeasedAnswer), (status = 404, description = "Agent not found")))]
pub async fn leased(
    State(state): State<AppState>,
    ApiPath(agent): ApiPath<String>,
) -> ApiResult<Json<LeasedAnswer>> {
    let agent = state.registry.require(&agent)?;
    let leased = crate::inbox::leased(&state, &agent)
        .into_iter()
        .map(|(id, deadline)| LeasedMessage {
            id: id.to_string(),
            lease_expires_at: iso8601(deadline),
        })
        .collect();
    Ok(Json(LeasedAnswer {
        agent: agent.name.clone(),
        leased,
    }))
}
