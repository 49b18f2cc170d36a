//! `/api/v1/routing/rules`: the ordered routing rules, read and replaced.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::routing::rules::{self, RuleSet, RuleSpec};
use crate::routing::strategy::StrategyKind;
use crate::state::AppState;

/// The rules in force.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RulesView {
    /// In order; the first rule that matches an `auto` message wins.
    pub rules: Vec<RuleSpec>,
    /// Strategy of `capability:NAME` recipients.
    pub capability_strategy: StrategyKind,
    /// Where they came from: `defaults`, `file:PATH` or `api`.
    pub source: String,
}

fn view(set: &RuleSet, source: String) -> RulesView {
    let spec = set.spec();
    RulesView {
        rules: spec.rules,
        capability_strategy: spec.capability_strategy,
        source,
    }
}

/// Shows the routing rules in force.
#[utoipa::path(get, path = "/api/v1/routing/rules", tag = "routing",
    responses((status = 200, body = RulesView)))]
pub async fn show(State(state): State<AppState>) -> Json<RulesView> {
    let (set, source) = state.routing.rules_with_source();
    Json(view(&set, source.to_string()))
}

/// Replaces the routing rules: a list of rules, or `{"rules": [...], "capability_strategy"}`.
/// Kept in the `--routing-rules` file when there is one, else in storage.
#[utoipa::path(put, path = "/api/v1/routing/rules", tag = "routing",
    request_body(content = Object, description = "A list of rules, or {rules, capability_strategy}"),
    responses((status = 200, body = RulesView),
              (status = 422, description = "An invalid rule (the detail names it)"),
              (status = 503, description = "The rules could not be kept")))]
pub async fn replace(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<RulesView>> {
    let spec = rules::from_value(body).map_err(ApiError::invalid)?;
    let set = state.routing.replace_rules(&state.engine, spec).await?;
    tracing::info!(rules = set.rules.len(), "routing rules replaced");
    let (_, source) = state.routing.rules_with_source();
    Ok(Json(view(&set, source.to_string())))
}

/// The routes of routing and discovery, merged into [`crate::app::app`].
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/api/v1/routing/rules", get(show).put(replace))
        .route("/api/v1/agents/discover", post(super::discovery::discover))
}
