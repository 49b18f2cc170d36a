//! Hot standby: a server started while another one owns its storage (a Redis prefix).
//!
//! Such a server listens at once but serves no requests: `GET /health` answers 503 with
//! `status: "standby"`, naming the active server's advertised URL and owner id, every other
//! route (REST and WebSocket upgrades alike) answers 503 with `error: "standby"` and
//! `Retry-After`, and `/metrics` answers 200 with the gauge `switchboard_standby 1`. Meanwhile
//! [`takeover::wait_for_ownership`] keeps trying to take the storage; once it has it, the
//! server recovers the engine from storage and [`switch::RouterSwitch`] puts the full API on
//! the same listener, without a restart.
//!
//! Standby answers skip authentication on purpose: they reveal only where the active server
//! is and who owns the storage, which every client needs to find it.

pub mod switch;
pub mod takeover;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use parking_lot::RwLock;
use serde_json::json;

use crate::limits::STANDBY_RETRY_AFTER_SECONDS;
use crate::storage::OwnerSeen;

/// The body's `error` (and `status`) of a standby's answers.
pub const ERROR_STANDBY: &str = "standby";

/// What the standby last learnt about the active server. Cheap to clone; all clones share it.
#[derive(Debug, Clone)]
pub struct Standing {
    seen: Arc<RwLock<Seen>>,
}

#[derive(Debug)]
struct Seen {
    owner: OwnerSeen,
    /// Why the last attempt to take over failed, when it was not the owner's lease (e.g. the
    /// storage cannot be reached).
    problem: Option<String>,
}

impl Standing {
    /// A standby that found `owner` holding the storage.
    pub fn new(owner: OwnerSeen) -> Self {
        Self {
            seen: Arc::new(RwLock::new(Seen {
                owner,
                problem: None,
            })),
        }
    }

    /// The latest owner seen.
    pub fn owner_seen(&self, owner: OwnerSeen) {
        *self.seen.write() = Seen {
            owner,
            problem: None,
        };
    }

    /// An attempt to take over failed for another reason than the owner's lease.
    pub fn problem_seen(&self, problem: String) {
        self.seen.write().problem = Some(problem);
    }

    /// The active server's URL for clients, `null` when it advertised none.
    fn active(&self) -> serde_json::Value {
        self.seen
            .read()
            .owner
            .active_url
            .clone()
            .map_or(serde_json::Value::Null, serde_json::Value::String)
    }

    fn active_sentence(&self) -> String {
        active_sentence(&self.seen.read())
    }

    fn health_detail(&self) -> String {
        let seen = self.seen.read();
        let mut detail = format!(
            "this server is a hot standby; {}; it takes over when that server stops or its lease \
             lapses (it ends in {} ms unless renewed)",
            active_sentence(&seen),
            seen.owner.lease_remaining_ms
        );
        if let Some(problem) = &seen.problem {
            detail.push_str(&format!(
                "; the last attempt to take over failed: {problem}"
            ));
        }
        detail
    }
}

/// "the active server is URL (owner ID)": the sentence every standby answer builds on.
fn active_sentence(seen: &Seen) -> String {
    match &seen.owner.active_url {
        Some(url) => format!("the active server is {url} (owner {})", seen.owner.holder),
        None => format!(
            "the active server (owner {}) advertised no URL",
            seen.owner.holder
        ),
    }
}

/// The standby's whole API (no I/O: testable with `oneshot`).
pub fn router(standing: Standing) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(refuse)
        .with_state(standing)
}

async fn health(State(standing): State<Standing>) -> Response {
    let body = json!({
        "status": ERROR_STANDBY,
        "active": standing.active(),
        "owner": standing.seen.read().owner.holder.clone(),
        "detail": standing.health_detail(),
    });
    unavailable(body)
}

async fn refuse(State(standing): State<Standing>) -> Response {
    let body = json!({
        "detail": format!(
            "this server is a hot standby and serves no requests until it takes over; {}: send \
             requests there",
            standing.active_sentence()
        ),
        "error": ERROR_STANDBY,
        "status": ERROR_STANDBY,
        "active": standing.active(),
    });
    unavailable(body)
}

/// Prometheus text: scrapers keep working, and can alert on which server is active.
async fn metrics() -> Response {
    let text = "# HELP switchboard_standby 1 while this server is a hot standby (another server \
                owns the storage).\n# TYPE switchboard_standby gauge\nswitchboard_standby 1\n";
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        format!("{text}# EOF\n"),
    )
        .into_response()
}

fn unavailable(body: serde_json::Value) -> Response {
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(STANDBY_RETRY_AFTER_SECONDS),
    );
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    fn standing(active_url: Option<&str>) -> Standing {
        Standing::new(OwnerSeen {
            holder: "host-a:1234".into(),
            active_url: active_url.map(str::to_string),
            lease_remaining_ms: 2500,
        })
    }

    async fn call(standing: Standing, request: Request<Body>) -> (Response, serde_json::Value) {
        let response = router(standing).oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (Response::from_parts(parts, Body::empty()), value)
    }

    #[tokio::test]
    async fn health_is_503_standby_naming_the_active_server_and_owner() {
        let request = Request::get("/health").body(Body::empty()).unwrap();
        let (response, body) = call(standing(Some("http://a:8080")), request).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "standby");
        assert_eq!(body["active"], "http://a:8080");
        assert_eq!(body["owner"], "host-a:1234");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("hot standby"), "{detail}");
        assert!(detail.contains("http://a:8080"), "{detail}");
        assert!(detail.contains("2500 ms"), "{detail}");
    }

    #[tokio::test]
    async fn every_api_route_is_503_standby_with_retry_after() {
        for request in [
            Request::post("/api/v1/messages")
                .body(Body::from("{}"))
                .unwrap(),
            Request::get("/ws/alice").body(Body::empty()).unwrap(),
            Request::get("/nowhere").body(Body::empty()).unwrap(),
        ] {
            let (response, body) = call(standing(Some("http://a:8080")), request).await;
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], "1");
            assert_eq!(body["error"], "standby");
            assert_eq!(body["active"], "http://a:8080");
            assert!(body["detail"].as_str().unwrap().contains("http://a:8080"));
        }
    }

    #[tokio::test]
    async fn an_owner_without_a_url_is_null_and_named_by_id() {
        let request = Request::get("/api/v1/agents").body(Body::empty()).unwrap();
        let (_, body) = call(standing(None), request).await;
        assert_eq!(body["active"], serde_json::Value::Null);
        assert!(body["detail"].as_str().unwrap().contains("host-a:1234"));
    }

    #[tokio::test]
    async fn a_failed_takeover_attempt_is_told_in_health() {
        let standing = standing(None);
        standing.problem_seen("Redis at redis://x:1 cannot be reached".into());
        let request = Request::get("/health").body(Body::empty()).unwrap();
        let (_, body) = call(standing, request).await;
        assert!(body["detail"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"));
    }

    #[tokio::test]
    async fn metrics_stay_200_with_the_standby_gauge() {
        let request = Request::get("/metrics").body(Body::empty()).unwrap();
        let response = router(standing(None)).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&bytes).contains("switchboard_standby 1"));
    }
}
