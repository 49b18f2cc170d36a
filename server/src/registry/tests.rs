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
