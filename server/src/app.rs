//! The router: every route, and the layers that put limits on requests. No I/O happens here,
//! so tests can drive it with `tower::ServiceExt::oneshot` and no socket.

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;

use crate::api::{agents, broadcast, health, messages, openapi, queues, stats};
use crate::error::ApiError;
use crate::limits;
use crate::state::AppState;

/// The whole HTTP and WebSocket API over `state`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/openapi.json", get(openapi::openapi))
        .route("/api/v1/agents", get(agents::list))
        .route("/api/v1/agents/register", post(agents::register))
        .route(
            "/api/v1/agents/{agent}",
            get(agents::show).delete(agents::delete),
        )
        .route("/api/v1/agents/{agent}/heartbeat", post(agents::heartbeat))
        .route(
            "/api/v1/agents/{agent}/dead-letters",
            get(agents::dead_letters),
        )
        .route(
            "/api/v1/agents/{agent}/dead-letters/redrive",
            post(agents::redrive),
        )
        .route("/api/v1/messages", post(messages::send))
        .route("/api/v1/messages/ack", post(messages::ack_batch))
        .route("/api/v1/messages/{agent}", get(messages::receive))
        .route("/api/v1/messages/{id}/ack", post(messages::ack))
        .route("/api/v1/messages/{id}/nack", post(messages::nack))
        .route("/api/v1/messages/{id}/extend", post(messages::extend))
        .route("/api/v1/broadcast", post(broadcast::broadcast))
        .route("/api/v1/stats", get(stats::stats))
        .route("/api/v1/queues", get(queues::list))
        .route(
            "/api/v1/queues/{queue}",
            get(queues::show).put(queues::configure),
        )
        .route("/api/v1/queues/{queue}/messages", post(queues::enqueue))
        .route("/api/v1/queues/{queue}/lease", post(queues::lease))
        .route("/api/v1/queues/{queue}/ack", post(queues::ack))
        .route("/api/v1/queues/{queue}/nack", post(queues::nack))
        .route("/api/v1/queues/{queue}/extend", post(queues::extend))
        .route(
            "/api/v1/queues/{queue}/dead-letters",
            get(queues::dead_letters),
        )
        .route(
            "/api/v1/queues/{queue}/dead-letters/redrive",
            post(queues::redrive),
        )
        .route("/ws/{agent}", get(crate::ws::handler))
        .merge(crate::monitor::routes())
        .merge(crate::api::receipts::routes())
        .merge(crate::api::leased::routes())
        .merge(crate::api::migration::routes())
        .merge(crate::api::routing::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Every route's rule is checked here, before its handler (see `auth::rules`).
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::guard,
        ))
        .layer(DefaultBodyLimit::max(limits::BODY_BYTES_MAX))
        .layer(middleware::from_fn(refuse_declared_oversize))
        .layer(middleware::from_fn(time_limit))
        .layer(ConcurrencyLimitLayer::new(limits::REQUESTS_IN_FLIGHT_MAX))
        .layer(CatchPanicLayer::custom(panicked))
        // Outermost, so it counts the answers of every layer above (timeouts, panics).
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::monitor::count_requests,
        ))
        .with_state(state)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no route {} {}",
        request.method(),
        request.uri().path()
    ))
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::Invalid {
        status: StatusCode::METHOD_NOT_ALLOWED,
        detail: format!(
            "method {} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    }
}

/// Answers 413 at once to a request whose `Content-Length` is over [`limits::BODY_BYTES_MAX`],
/// without reading its body: the body limit alone waits for the body (and a client that sent
/// `Expect: 100-continue` got `100 Continue` and was held until the request timed out), while
/// hyper sends `100 Continue` only once a body is read. The connection is closed after the
/// answer, since the unread body must not be taken for the next request.
async fn refuse_declared_oversize(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(bytes) if bytes > limits::BODY_BYTES_MAX as u64 => {
            let mut response = ApiError::Invalid {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                detail: format!(
                    "request body of {bytes} bytes is larger than {} bytes",
                    limits::BODY_BYTES_MAX
                ),
            }
            .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        _ => next.run(request).await,
    }
}

/// Answers a request that takes longer than [`limits::REQUEST_TIMEOUT`] with a 503.
async fn time_limit(request: Request, next: Next) -> Response {
    match tokio::time::timeout(limits::REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(limits::REQUEST_TIMEOUT).into_response(),
    }
}

fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::Internal(format!("handler panicked: {text}")).into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use switchboard_engine::{Engine, EngineOptions, MemoryStorage, SystemClock};
    use tower::ServiceExt;

    use super::*;
    use crate::config::Settings;
    use crate::registry::Registry;

    async fn router() -> Router {
        let engine = Engine::open(
            Box::new(MemoryStorage::new()),
            Arc::new(SystemClock),
            EngineOptions::default(),
        )
        .unwrap();
        let registry = Registry::load(engine.clone()).await.unwrap();
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        app(AppState::new(
            engine,
            registry,
            Settings::default(),
            stopped,
        ))
    }

    async fn call(router: Router, request: Request<Body>) -> (StatusCode, serde_json::Value) {
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn health_is_healthy_on_working_storage() {
        let request = Request::get("/health").body(Body::empty()).unwrap();
        let (status, body) = call(router().await, request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "healthy");
    }

    #[tokio::test]
    async fn unknown_route_is_a_json_404() {
        let request = Request::get("/nowhere").body(Body::empty()).unwrap();
        let (status, body) = call(router().await, request).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["detail"], "no route GET /nowhere");
    }

    #[tokio::test]
    async fn send_without_content_type_is_still_read_as_json() {
        let router = router().await;
        let register = Request::post("/api/v1/agents/register")
            .body(Body::from(r#"{"name":"alice"}"#))
            .unwrap();
        assert_eq!(call(router.clone(), register).await.0, StatusCode::OK);
        let send = Request::post("/api/v1/messages")
            .body(Body::from(r#"{"recipient":"alice","content":"hi"}"#))
            .unwrap();
        let (status, body) = call(router, send).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["recipient"], "alice");
    }
}
