//! `POST /api/v1/agents/discover`: rescan the worktrees now; and the wire form of what
//! discovery knows about an agent (shown in agent listings).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::wire::Metadata;
use crate::error::{ApiError, ApiResult};
use crate::registry::discovery::{CapabilityOrigin, Discovered, DiscoveryReport, FoundBy};
use crate::state::AppState;
use crate::time::iso8601;

/// Where discovery found an agent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DiscoveryInfo {
    /// The worktree directory.
    pub path: String,
    /// `CLAUDE.md` or `AGENTS.md`.
    pub agent_file: String,
    /// `worktree_root` or `git_worktree`.
    pub found_by: FoundBy,
    /// Discovered capabilities, each with its source (`keyword`, `declared`, `role`), file and
    /// keyword.
    pub capabilities: Vec<CapabilityOrigin>,
    /// `role` of its declarations.
    pub role: Option<String>,
    /// `metadata` of its declarations.
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    /// Declarations that could not be read.
    pub warnings: Vec<String>,
    /// True when its worktree has disappeared (it keeps its id and inbox; routing skips it).
    pub gone: bool,
    /// When the worktree was found missing (ISO-8601 UTC).
    pub gone_since: Option<String>,
}

impl From<&Discovered> for DiscoveryInfo {
    fn from(found: &Discovered) -> Self {
        Self {
            path: found.path.clone(),
            agent_file: found.agent_file.clone(),
            found_by: found.found_by,
            capabilities: found.capabilities.clone(),
            role: found.role.clone(),
            metadata: found.metadata.clone(),
            warnings: found.warnings.clone(),
            gone: found.gone_since.is_some(),
            gone_since: found.gone_since.map(iso8601),
        }
    }
}

/// Rescans the worktree roots and git worktrees now and reports what changed.
#[utoipa::path(post, path = "/api/v1/agents/discover", tag = "agents",
    responses((status = 200, body = DiscoveryReport),
              (status = 409, description = "Discovery is turned off")))]
pub async fn discover(State(state): State<AppState>) -> ApiResult<Json<DiscoveryReport>> {
    let config = state.discovery.config();
    if config.roots.is_empty() && !config.git {
        // A scan of nothing would mark every discovered agent gone.
        return Err(ApiError::Conflict(
            "agent discovery is turned off on this server (--no-discovery)".into(),
        ));
    }
    Ok(Json(state.discovery.rescan(&state).await?))
}
