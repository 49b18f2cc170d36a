//! Arbitrary requests (method, path, query, headers, body bytes) through the real router on
//! `memory:` storage, with no socket: every answer is a 4xx or a success, never a 5xx (the one
//! exception is 507, the documented answer of a full queue), and nothing panics (libFuzzer's
//! panic hook aborts even inside `CatchPanicLayer` or a spawned task).
//!
//! A case is a short sequence of requests against one fresh server, so the fuzzer can reach
//! states that need set-up (register, send, receive, ack). Paths are either one of the routes
//! with fuzzed segments or raw fuzzed text.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use switchboard_engine::{Engine, EngineOptions, MemoryStorage, SystemClock};
use switchboard_server::config::Settings;
use switchboard_server::{app, AppState, Registry};
use tower::ServiceExt;

/// Requests per case: enough for register → send → receive → ack chains.
const REQUESTS_PER_CASE_MAX: usize = 8;

/// Every route, with `{}` standing for a fuzzed path segment.
const ROUTES: &[&str] = &[
    "/health",
    "/openapi.json",
    "/api/v1/agents",
    "/api/v1/agents/register",
    "/api/v1/agents/{}",
    "/api/v1/agents/{}/heartbeat",
    "/api/v1/agents/{}/dead-letters",
    "/api/v1/agents/{}/dead-letters/redrive",
    "/api/v1/agents/discover",
    "/api/v1/messages",
    "/api/v1/messages/ack",
    "/api/v1/messages/{}",
    "/api/v1/messages/{}/ack",
    "/api/v1/messages/{}/nack",
    "/api/v1/messages/{}/extend",
    "/api/v1/messages/{}/status",
    "/api/v1/broadcast",
    "/api/v1/stats",
    "/api/v1/queues",
    "/api/v1/queues/{}",
    "/api/v1/queues/{}/messages",
    "/api/v1/queues/{}/lease",
    "/api/v1/queues/{}/ack",
    "/api/v1/queues/{}/nack",
    "/api/v1/queues/{}/extend",
    "/api/v1/queues/{}/dead-letters",
    "/api/v1/queues/{}/dead-letters/redrive",
    "/api/v1/routing/rules",
    "/api/v1/migration/status",
    "/api/v1/migration/report",
    "/api/v1/migration/rollback",
    "/metrics",
];

const METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
];

/// Names the set-up registers, so fuzzed requests often name an agent that exists.
const AGENTS: &[&str] = &["alice", "bob"];

#[derive(Debug, Arbitrary)]
enum Path {
    Route { route: u8, segment: Segment },
    Raw(String),
}

#[derive(Debug, Arbitrary)]
enum Segment {
    Agent(u8),
    Text(String),
}

#[derive(Debug, Arbitrary)]
struct Call {
    method: u8,
    path: Path,
    query: Option<String>,
    json_content_type: bool,
    body: Vec<u8>,
}

fuzz_target!(|calls: Vec<Call>| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    runtime.block_on(run(calls));
});

async fn run(calls: Vec<Call>) {
    let router = router().await;
    for agent in AGENTS {
        let body = format!(r#"{{"name":"{agent}"}}"#);
        let request = Request::post("/api/v1/agents/register")
            .body(Body::from(body))
            .unwrap();
        let status = router.clone().oneshot(request).await.unwrap().status();
        assert_eq!(status, StatusCode::OK, "set-up registration of {agent}");
    }
    for call in calls.into_iter().take(REQUESTS_PER_CASE_MAX) {
        let Some(request) = request(&call) else {
            continue;
        };
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.map(|b| b.to_bytes());
        assert!(
            !status.is_server_error() || status == StatusCode::INSUFFICIENT_STORAGE,
            "{call:?} was answered {status}: {body:?}"
        );
    }
}

async fn router() -> axum::Router {
    let engine = Engine::open(
        Box::new(MemoryStorage::new()),
        Arc::new(SystemClock),
        EngineOptions::default(),
    )
    .expect("memory storage opens");
    let registry = Registry::load(engine.clone())
        .await
        .expect("an empty registry loads");
    // The sender is dropped at once: the state never sees a shutdown, which is what we want.
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    app(AppState::new(
        engine,
        registry,
        Settings::default(),
        stopped,
    ))
}

/// The request a call describes, or `None` when its text is not a valid URI (the HTTP layer
/// below the router would refuse it before any handler runs).
fn request(call: &Call) -> Option<Request<Body>> {
    let mut uri = match &call.path {
        Path::Route { route, segment } => {
            let segment = match segment {
                Segment::Agent(pick) => AGENTS[*pick as usize % AGENTS.len()].to_string(),
                Segment::Text(text) => escape(text),
            };
            ROUTES[*route as usize % ROUTES.len()].replace("{}", &segment)
        }
        Path::Raw(text) => text.clone(),
    };
    if let Some(query) = &call.query {
        uri.push('?');
        uri.push_str(query);
    }
    let mut builder = Request::builder()
        .method(METHODS[call.method as usize % METHODS.len()].clone())
        .uri(uri);
    if call.json_content_type {
        builder = builder.header("content-type", "application/json");
    }
    builder.body(Body::from(call.body.clone())).ok()
}

/// Percent-encodes what may not stand in a path segment, so fuzzed names reach the handlers.
fn escape(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
