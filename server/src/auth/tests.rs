//! Router-level checks of token mode, through `oneshot` (no socket): no documented route but
//! the open ones answers a request without a token.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use switchboard_engine::{Engine, EngineOptions, MemoryStorage, SystemClock};
use tower::ServiceExt;

use super::rules::{documented_routes, rule, Rule};
use super::AuthSettings;
use crate::config::Settings;
use crate::registry::Registry;
use crate::state::AppState;

async fn token_mode_router() -> axum::Router {
    let engine = Engine::open(
        Box::new(MemoryStorage::new()),
        Arc::new(SystemClock),
        EngineOptions::default(),
    )
    .unwrap();
    let registry = Registry::load(engine.clone()).await.unwrap();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let settings = Settings {
        auth: AuthSettings::token_mode("admin-token-for-tests"),
        ..Settings::default()
    };
    crate::app::app(AppState::new(engine, registry, settings, stopped))
}

#[tokio::test]
async fn without_a_token_only_open_routes_answer() {
    let router = token_mode_router().await;
    let mut checked = 0;
    for (method, path) in documented_routes() {
        if matches!(rule(&method, &path), Rule::Open | Rule::Register) {
            continue;
        }
        let concrete = path
            .replace("{agent}", "alice")
            .replace("{id}", "1")
            .replace("{queue}", "jobs");
        let request = Request::builder()
            .method(method.clone())
            .uri(&concrete)
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {concrete} answered without a token"
        );
        assert!(response.headers().contains_key("www-authenticate"));
        checked += 1;
    }
    assert!(checked > 30, "only {checked} routes checked");
}

#[tokio::test]
async fn open_routes_answer_without_a_token() {
    let router = token_mode_router().await;
    for path in ["/health", "/openapi.json", "/metrics", "/"] {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        // A stale token does not make an open route refuse.
        let request = Request::get(path)
            .header("authorization", "Bearer sb_stale")
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{path} with a stale token"
        );
    }
}
