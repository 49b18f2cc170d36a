//! Registry tests over a real engine: which agent a key resolves to, and that records stored
//! before the name checks still load.

use std::sync::Arc;

use switchboard_engine::{Engine, EngineOptions, MemoryStorage, SystemClock};

use super::{persist, AgentRecord, Registry};
use crate::api::wire::RegisterRequest;
use crate::error::ApiError;

fn engine() -> Engine {
    Engine::open(
        Box::new(MemoryStorage::new()),
        Arc::new(SystemClock),
        EngineOptions::default(),
    )
    .unwrap()
}

fn request(name: &str) -> RegisterRequest {
    RegisterRequest {
        name: name.into(),
        capabilities: Vec::new(),
        endpoint: None,
        metadata: Default::default(),
    }
}

/// A record as an older server stored it, without the name checks.
fn legacy(name: &str) -> AgentRecord {
    AgentRecord {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.into(),
        capabilities: Vec::new(),
        endpoint: None,
        metadata: Default::default(),
        registered_at: 0,
        registered_capabilities: None,
        discovery: None,
        token_sha256: None,
    }
}

#[tokio::test]
async fn registering_another_agents_id_as_a_name_is_refused() {
    let registry = Registry::load(engine()).await.unwrap();
    let (victim, _) = registry.register(request("victim")).await.unwrap();
    let error = registry.register(request(&victim.id)).await.unwrap_err();
    assert!(matches!(error, ApiError::Invalid { .. }), "{error:?}");
    assert_eq!(registry.resolve(&victim.id).unwrap().name, "victim");
}

#[tokio::test]
async fn an_id_resolves_to_its_agent_even_when_a_stored_name_equals_it() {
    let engine = engine();
    let registry = Registry::load(engine.clone()).await.unwrap();
    let (victim, _) = registry.register(request("victim")).await.unwrap();
    persist::put(&engine, 100, &legacy(&victim.id))
        .await
        .unwrap();
    let reloaded = Registry::load(engine).await.unwrap();
    assert_eq!(reloaded.resolve(&victim.id).unwrap().name, "victim");
    let removed = reloaded.remove(&victim.id).await.unwrap();
    assert_eq!(removed.name, "victim");
}

#[tokio::test]
async fn records_stored_with_names_now_refused_still_load() {
    let engine = engine();
    let names = ["system", "capability:quality", "bob\u{200B}"];
    for (version, name) in names.iter().enumerate() {
        persist::put(&engine, version as u64 + 1, &legacy(name))
            .await
            .unwrap();
    }
    let registry = Registry::load(engine).await.unwrap();
    for name in names {
        assert!(registry.resolve(name).is_some(), "{name:?} did not load");
        assert!(registry.register(request(name)).await.is_err(), "{name:?}");
    }
}

/// An agent stored as `system` by an older server keeps its token, but that token never sends
/// as `system`: only the admin does.
#[tokio::test]
async fn a_stored_agent_named_system_cannot_send_as_system() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    let engine = engine();
    let token = "sb_token-of-a-legacy-system-agent";
    let mut record = legacy("system");
    record.token_sha256 = Some(crate::auth::TokenHash::of(token).to_hex());
    persist::put(&engine, 1, &record).await.unwrap();
    let registry = Registry::load(engine.clone()).await.unwrap();
    registry.register(request("bob")).await.unwrap();
    let settings = crate::config::Settings {
        auth: crate::auth::AuthSettings::token_mode("admin-token-for-tests"),
        ..crate::config::Settings::default()
    };
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let state = crate::state::AppState::new(engine, registry, settings, stopped);
    let send = Request::post("/api/v1/messages?sender=system")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"recipient": "bob", "content": "rm -rf"}"#))
        .unwrap();
    let response = crate::app::app(state).oneshot(send).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
