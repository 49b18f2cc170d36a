//! `GET /health`: 200 while storage works, 503 when the engine reports it unreachable (a
//! commit failed, or the backend's own checks failed while idle) or stopped.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::wire::HealthResponse;
use crate::state::AppState;
use crate::time::iso8601;

/// Reports whether the server can store messages.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, body = HealthResponse), (status = 503, body = HealthResponse)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthResponse>) {
    let stats = state.engine.engine_stats();
    let status = if stats.storage_problem.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = HealthResponse {
        status: if status.is_success() {
            "healthy"
        } else {
            "unhealthy"
        }
        .into(),
        timestamp: iso8601(state.engine.now_ms()),
        storage: stats.storage,
        detail: stats.storage_problem.map(|problem| {
            if stats.poisoned {
                format!("storage failed, writes stopped until a restart: {problem}")
            } else {
                format!("storage unavailable: {problem}")
            }
        }),
    };
    (status, Json(body))
}
