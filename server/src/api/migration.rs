//! `/api/v1/migration`: the tmux migration's status and report, and starting, speeding up and
//! rolling back a run (see [`crate::migrate`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::migrate::model::MigrationRun;
use crate::migrate::report::Report;
use crate::migrate::settings::StartRequest;
use crate::state::AppState;

/// `GET /api/v1/migration/status` answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MigrationStatus {
    /// Runs may be started (`--enable-migration` or `--migrate-now`).
    pub enabled: bool,
    /// The run's phase, or `idle` when there never was one.
    pub phase: String,
    /// The current or last run, in full.
    #[schema(value_type = Option<Object>)]
    pub run: Option<MigrationRun>,
}

/// `POST /api/v1/migration/rollback` body.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RollbackRequest {
    /// Why (shown to every agent and in the report).
    pub reason: Option<String>,
}

/// A short answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MigrationAck {
    /// What happened.
    pub status: String,
}

/// Longest rollback reason kept, in bytes.
const REASON_BYTES_MAX: usize = 500;

/// The migration's state: phase, agents and their stages, events, records.
#[utoipa::path(get, path = "/api/v1/migration/status", tag = "migration",
    responses((status = 200, body = MigrationStatus)))]
pub async fn status(State(state): State<AppState>) -> Json<MigrationStatus> {
    let run = state.migration.snapshot();
    Json(MigrationStatus {
        enabled: state.migration.enabled(),
        phase: run
            .as_ref()
            .map_or("idle", |run| run.phase.name())
            .to_string(),
        run,
    })
}

/// The report of the current or last run (as written to `migration_report.json`).
#[utoipa::path(get, path = "/api/v1/migration/report", tag = "migration",
    responses((status = 200, description = "The report"),
              (status = 404, description = "No migration has run")))]
pub async fn report(State(state): State<AppState>) -> ApiResult<Json<Report>> {
    let run = state
        .migration
        .snapshot()
        .ok_or_else(|| ApiError::NotFound("no migration has run on this server".into()))?;
    Ok(Json(Report::of(&run)))
}

/// Starts a run, or with `dry_run` answers with its plan and changes nothing.
#[utoipa::path(post, path = "/api/v1/migration/start", tag = "migration",
    request_body = StartRequest,
    responses((status = 202, description = "Started: {status, migration_id}"),
              (status = 200, description = "Dry run: {status: plan, plan, text}"),
              (status = 409, description = "Not enabled, or a run is going on"),
              (status = 422, description = "A setting is out of range")))]
pub async fn start(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<StartRequest>,
) -> ApiResult<(StatusCode, Json<crate::migrate::Started>)> {
    let dry_run = request.dry_run;
    let started = crate::migrate::start(&state, request).await?;
    let status = if dry_run {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(started)))
}

/// Ends dual mode now, so the batches start.
#[utoipa::path(post, path = "/api/v1/migration/proceed", tag = "migration",
    responses((status = 200, body = MigrationAck),
              (status = 409, description = "Not in dual mode")))]
pub async fn proceed(State(state): State<AppState>) -> ApiResult<Json<MigrationAck>> {
    if !state.migration.proceed() {
        return Err(ApiError::Conflict(
            "the migration is not in dual mode".into(),
        ));
    }
    Ok(Json(MigrationAck {
        status: "proceeding".into(),
    }))
}

/// Rolls the whole migration back: every agent returns to tmux delivery and is told so.
#[utoipa::path(post, path = "/api/v1/migration/rollback", tag = "migration",
    request_body = RollbackRequest,
    responses((status = 200, body = MigrationAck),
              (status = 409, description = "Nothing to roll back")))]
pub async fn rollback(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<Json<MigrationAck>> {
    // The body is optional: an empty one means "no reason given".
    let request: RollbackRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| ApiError::invalid(format!("unreadable rollback request: {error}")))?
    };
    let reason = request
        .reason
        .filter(|reason| !reason.trim().is_empty())
        .unwrap_or_else(|| "requested by the operator".into());
    if reason.len() > REASON_BYTES_MAX || reason.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "reason must be at most {REASON_BYTES_MAX} bytes without control characters"
        )));
    }
    if !crate::migrate::roll_back_all(&state, &reason).await {
        return Err(ApiError::Conflict(
            "there is no migration to roll back (none ran, or it was rolled back already)".into(),
        ));
    }
    Ok(Json(MigrationAck {
        status: "rolled_back".into(),
    }))
}

/// The migration routes, merged into [`crate::app::app`].
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/api/v1/migration/status", get(status))
        .route("/api/v1/migration/report", get(report))
        .route("/api/v1/migration/start", post(start))
        .route("/api/v1/migration/proceed", post(proceed))
        .route("/api/v1/migration/rollback", post(rollback))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use switchboard_engine::{Engine, EngineOptions, MemoryStorage, SystemClock};
    use tower::ServiceExt;
    use utoipa::OpenApi;

    use super::*;
    use crate::config::Settings;
    use crate::registry::Registry;

    async fn router() -> axum::Router {
        let engine = Engine::open(
            Box::new(MemoryStorage::new()),
            Arc::new(SystemClock),
            EngineOptions::default(),
        )
        .unwrap();
        let registry = Registry::load(engine.clone()).await.unwrap();
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        crate::app(AppState::new(
            engine,
            registry,
            Settings::default(),
            stopped,
        ))
    }

    async fn call(request: Request<Body>) -> (StatusCode, serde_json::Value) {
        let response = router().await.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_server_that_never_migrated_is_idle() {
        let request = Request::get("/api/v1/migration/status")
            .body(Body::empty())
            .unwrap();
        let (status, body) = call(request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["phase"], "idle");
        assert_eq!(body["enabled"], false);
        assert!(body["run"].is_null());
    }

    #[tokio::test]
    async fn starting_without_the_subsystem_booted_is_a_conflict() {
        let request = Request::post("/api/v1/migration/start")
            .body(Body::from("{}"))
            .unwrap();
        let (status, body) = call(request).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let request = Request::post("/api/v1/migration/rollback")
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(request).await.0, StatusCode::CONFLICT);
    }

    #[test]
    fn the_openapi_document_lists_the_migration_routes() {
        let doc = crate::api::openapi::ApiDoc::openapi();
        for path in [
            "/api/v1/migration/status",
            "/api/v1/migration/start",
            "/api/v1/migration/rollback",
        ] {
            assert!(doc.paths.paths.contains_key(path), "missing {path}");
        }
    }
}
