//! What every handler shares: the engine, the registry, the sockets, limits and counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use switchboard_engine::{Engine, UnixMillis};
use tokio::sync::watch;

use crate::config::Settings;
use crate::lease_book::LeaseBook;
use crate::monitor::Monitor;
use crate::rate_limit::SenderLimits;
use crate::receipts::Receipts;
use crate::registry::Registry;
use crate::ws::Sockets;

/// Shared state of the HTTP and WebSocket handlers. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

/// The parts of [`AppState`].
pub struct Shared {
    /// The queue engine; agents' inboxes are its queues.
    pub engine: Engine,
    /// Agents.
    pub registry: Registry,
    /// Open agent sockets.
    pub sockets: Sockets,
    /// Per-sender token buckets.
    pub limits: SenderLimits,
    /// Send-to-ack times of agent messages.
    pub deliveries: DeliveryTimes,
    /// Tokens of REST leases, so settling by id needs no lookup.
    pub lease_book: LeaseBook,
    /// Metrics, alerts and history (see [`crate::monitor`]).
    pub monitor: Monitor,
    /// Delivery receipts, the live feed and open asks (see [`crate::receipts`]).
    pub receipts: Receipts,
    /// Run-time settings.
    pub settings: Settings,
    /// Turns true when the server is shutting down; sockets close on it.
    pub shutdown: watch::Receiver<bool>,
    /// The tmux migration: its run, and which agents' messages are also typed into panes.
    pub migration: crate::migrate::Migration,
    /// Routing of `auto` and `capability:NAME` messages: rules, strategies, waiting queues.
    pub routing: crate::routing::Router,
    /// Agent discovery from worktrees.
    pub discovery: crate::registry::discovery::Discovery,
}

impl AppState {
    /// State over an engine and a loaded registry. `shutdown` turning true closes sockets.
    pub fn new(
        engine: Engine,
        registry: Registry,
        settings: Settings,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let monitor = Monitor::new(engine.now_ms());
        let routing = crate::routing::Router::new(settings.routing_rules.clone());
        let discovery = crate::registry::discovery::Discovery::new(settings.discovery.clone());
        Self {
            inner: Arc::new(Shared {
                engine,
                registry,
                sockets: Sockets::default(),
                limits: SenderLimits::new(settings.rate_per_sender, settings.rate_burst),
                deliveries: DeliveryTimes::default(),
                lease_book: LeaseBook::default(),
                receipts: Receipts::default(),
                monitor,
                settings,
                shutdown,
                migration: crate::migrate::Migration::default(),
                routing,
                discovery,
            }),
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.inner
    }
}

/// Mean time from send to ack, kept with two atomics (no lock on the ack path).
#[derive(Debug, Default)]
pub struct DeliveryTimes {
    total_ms: AtomicU64,
    count: AtomicU64,
}

impl DeliveryTimes {
    /// Notes one ack of a message enqueued at `enqueued_at`.
    pub fn record(&self, enqueued_at: UnixMillis, now: UnixMillis) {
        self.total_ms
            .fetch_add(now.saturating_sub(enqueued_at), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The mean in seconds (0 before the first ack).
    pub fn average_seconds(&self) -> f64 {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            return 0.0;
        }
        self.total_ms.load(Ordering::Relaxed) as f64 / count as f64 / 1000.0
    }
}
