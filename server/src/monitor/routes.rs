//! The JSON endpoints of monitoring: detailed health, alerts, the history export and the
//! current snapshot.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::alerts::{Alert, RESOLVED_ALERTS_MAX};
use super::collector::{collect, Snapshot};
use super::history::{HistoryPoint, HISTORY_HOURS_MAX, HISTORY_RESOLUTION_MS};
use super::score::HealthReport;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::state::AppState;
use crate::time::iso8601;

/// `GET /api/v1/health/detailed`: score, status, components and issues, computed now.
#[utoipa::path(get, path = "/api/v1/health/detailed", tag = "monitoring",
    responses((status = 200, description = "`{score, status, components: {queue, agents, broker, \
        responsiveness}, issues}`: the 0–100 health score with its four components of 25")))]
pub async fn health_detailed(State(state): State<AppState>) -> Json<HealthReport> {
    Json(collect(&state).health)
}

/// The body of `GET /api/v1/alerts`.
#[derive(Debug, Serialize)]
pub struct AlertsResponse {
    /// Active now, critical first.
    pub active: Vec<Alert>,
    /// Resolved in the last 24 hours (at most 500), newest first.
    pub resolved: Vec<Alert>,
}

/// `GET /api/v1/alerts`: active alerts and recently resolved ones, with start/resolve times.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "monitoring",
    responses((status = 200, description = "`{active: [alert], resolved: [alert]}`; an alert is \
        `{id, rule, severity, value, threshold, message, started_at, resolved_at}`")))]
pub async fn alerts(State(state): State<AppState>) -> Json<AlertsResponse> {
    let book = state.monitor.alerts.lock();
    Json(AlertsResponse {
        active: book.active(),
        resolved: book.recent(RESOLVED_ALERTS_MAX),
    })
}

/// Query of `GET /api/v1/metrics/export`.
#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    /// Hours back from now, 1 to 24 (default 24).
    #[serde(default)]
    pub hours: Option<u64>,
}

/// The body of `GET /api/v1/metrics/export`.
#[derive(Debug, Serialize)]
pub struct ExportResponse {
    /// When the export was made, ISO-8601.
    pub generated_at: String,
    /// Hours covered.
    pub hours: u64,
    /// Seconds between points.
    pub resolution_seconds: u64,
    /// The points, oldest first (history starts at the server's start).
    pub points: Vec<HistoryPoint>,
    /// Alerts active at some time in the window, oldest start first.
    pub alerts: Vec<Alert>,
}

/// `GET /api/v1/metrics/export?hours=N`: the history of the last N hours as JSON.
#[utoipa::path(get, path = "/api/v1/metrics/export", tag = "monitoring",
    params(("hours" = Option<u64>, Query, description = "Hours back from now, 1 to 24 (default 24)")),
    responses((status = 200, description = "`{generated_at, hours, resolution_seconds, points, \
        alerts}`: one point every 10 s"), (status = 422, description = "hours out of range")))]
pub async fn export(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> ApiResult<Json<ExportResponse>> {
    let hours = query.hours.unwrap_or(HISTORY_HOURS_MAX);
    if hours == 0 || hours > HISTORY_HOURS_MAX {
        return Err(ApiError::invalid(format!(
            "hours must be between 1 and {HISTORY_HOURS_MAX} (history keeps {HISTORY_HOURS_MAX} hours)"
        )));
    }
    let now = state.engine.now_ms();
    let since = now.saturating_sub(hours * 60 * 60 * 1000);
    let points = state.monitor.history.lock().since(since);
    let alerts = state.monitor.alerts.lock().since(since);
    Ok(Json(ExportResponse {
        generated_at: iso8601(now),
        hours,
        resolution_seconds: HISTORY_RESOLUTION_MS / 1000,
        points,
        alerts,
    }))
}

/// `GET /api/v1/metrics/current`: everything the dashboard shows, read now.
#[utoipa::path(get, path = "/api/v1/metrics/current", tag = "monitoring",
    responses((status = 200, description = "The dashboard's snapshot: health, throughput, \
        totals, latency percentiles, errors, agents, queues, storage, sockets, memory, alerts")))]
pub async fn current(State(state): State<AppState>) -> Json<Snapshot> {
    Json(collect(&state))
}
