//! Test set-up shared by the unit tests of several modules: a whole server state over an
//! engine on a manual clock, so leases, TTLs and delays run out by advancing the clock.

use std::sync::Arc;

use switchboard_engine::{Engine, EngineOptions, ManualClock, MemoryStorage};

use crate::api::wire::RegisterRequest;
use crate::config::Settings;
use crate::registry::Registry;
use crate::state::AppState;

/// A server state on a manual clock (no timer thread: time moves only when the test says)
/// with `agents` registered. Keep the returned sender alive: dropping it means "stop".
pub async fn state_with_clock(
    agents: &[&str],
) -> (AppState, Arc<ManualClock>, tokio::sync::watch::Sender<bool>) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let options = EngineOptions {
        tick_interval: None,
        ..EngineOptions::default()
    };
    let engine = Engine::open(Box::new(MemoryStorage::new()), clock.clone(), options)
        .expect("a memory engine opens");
    let registry = Registry::load(engine.clone())
        .await
        .expect("an empty registry loads");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let state = AppState::new(engine, registry, Settings::default(), stopped);
    for name in agents {
        let request: RegisterRequest =
            serde_json::from_value(serde_json::json!({ "name": name })).expect("a register body");
        state
            .registry
            .register(request)
            .await
            .expect("the agent registers");
    }
    (state, clock, stop)
}
