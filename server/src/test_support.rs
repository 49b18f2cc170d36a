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

/// A server over `storage` started as `switchboard serve` starts one: registry, routing rules
/// and the saved state (receipts, asks, routing memory) read back. Opening one again on the
/// same storage after [`Restartable::stop`] is a restart, or a failover to a second server.
pub struct Restartable {
    /// The server's state.
    pub state: AppState,
    stop: tokio::sync::watch::Sender<bool>,
    writers: crate::durable::Writers,
}

impl Restartable {
    /// Starts a server on `storage` (a clone shares the same data) with `clock`.
    pub async fn start(storage: &MemoryStorage, clock: Arc<ManualClock>) -> Self {
        let options = EngineOptions {
            tick_interval: None,
            ..EngineOptions::default()
        };
        let engine =
            Engine::open(Box::new(storage.clone()), clock, options).expect("a memory engine opens");
        let registry = Registry::load(engine.clone())
            .await
            .expect("the registry loads");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let state = AppState::new(engine.clone(), registry, Settings::default(), stopped);
        state
            .routing
            .load(&engine)
            .await
            .expect("the routing rules load");
        let writers = crate::durable::restore(&state)
            .await
            .expect("the saved state loads");
        Self {
            state,
            stop,
            writers,
        }
    }

    /// Stops gracefully, as on SIGTERM: the writers save what is pending, the engine makes
    /// it durable.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        assert!(self.writers.finish().await, "the writers stopped in time");
        self.state
            .engine
            .flush()
            .await
            .expect("the last writes are durable");
    }

    /// Marks the registered agent `name` online (a heartbeat): presence is not saved, so
    /// after a restart an agent is online again once it shows up.
    pub fn heartbeat(&self, name: &str) {
        let agent = self
            .state
            .registry
            .require(name)
            .expect("a registered agent");
        self.state.registry.touch(&agent.id, None);
    }

    /// Registers `name` with `capabilities` (registering makes it online).
    pub async fn register(&self, name: &str, capabilities: &[&str]) {
        let request: RegisterRequest = serde_json::from_value(
            serde_json::json!({ "name": name, "capabilities": capabilities }),
        )
        .expect("a register body");
        self.state
            .registry
            .register(request)
            .await
            .expect("the agent registers");
    }
}
