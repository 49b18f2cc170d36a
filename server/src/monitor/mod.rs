//! Monitoring: metrics, the health score, alerts, a day of history, the Prometheus exposition,
//! and the live dashboard.
//!
//! ## What is measured, and where
//! - The request paths call the hooks of [`Monitor`] (one relaxed atomic add, or one short
//!   lock to record a latency): sends and routing failures in `inbox.rs` and
//!   `api/broadcast.rs`, deliveries and acks in `inbox.rs`, `api/messages.rs` and the socket
//!   pusher, rejected requests in a middleware ([`count_requests`]), rejected frames in the
//!   socket reader ([`counters`]).
//! - The rest is read when needed ([`collector`]): queue depths and engine counters, storage
//!   commit statistics, agents and presence, sockets, and process memory (`/proc/self/status`).
//! - Latency percentiles (send→ack, send→first delivery, send handling) come from sliding
//!   windows of HDR histograms ([`latency`]); Prometheus gets cumulative histograms.
//!
//! ## Always on
//! Monitoring costs one task that wakes once a second ([`sampler`]) and a few MiB for the 24 h
//! history, so it is always on: `/metrics`, `/api/v1/health/detailed`, `/api/v1/alerts`,
//! `/api/v1/metrics/export`, `/api/v1/metrics/current` and the dashboard at `/` and
//! `/dashboard` (with its event stream) need no flag. `--enable-monitoring`, the original's
//! flag, is accepted and changes nothing.
//!
//! ## Files
//! `counters` (hook counters), `latency` (windows and histograms), `recent` (1 s samples for
//! rates), `memory`, `collector` ([`Snapshot`]), `score` (health score rules), `alerts` (alert
//! rules and their start/resolve book), `history` (24 h), `sampler` (the once-a-second task),
//! `prometheus` (`/metrics`), `dashboard` (the page and its event stream), `routes` (the HTTP
//! handlers of the JSON endpoints), `stats_command` (`switchboard stats [--export]`).

pub mod alerts;
pub mod collector;
pub mod counters;
pub mod dashboard;
pub mod history;
pub mod latency;
mod memory;
pub mod prometheus;
pub mod recent;
pub mod routes;
pub mod sampler;
pub mod score;
pub mod stats_command;

use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use switchboard_engine::{Delivery, UnixMillis};
use tokio::sync::{broadcast, watch};

pub use collector::{collect, Snapshot};

use crate::state::AppState;
use alerts::{AlertBook, AlertChange};
use counters::Counters;
use history::History;
use latency::LatencyTracker;
use recent::{EngineTotals, RecentSamples};

/// Alert changes buffered for a slow dashboard before it misses some (it then reloads them).
const ALERT_EVENTS_MAX: usize = 64;

/// The monitoring state shared by every handler (inside [`AppState`]).
#[derive(Debug)]
pub struct Monitor {
    /// Counters bumped by the request paths.
    pub counters: Counters,
    /// Send → ack.
    pub ack_latency: LatencyTracker,
    /// Send → first delivery.
    pub first_delivery_latency: LatencyTracker,
    /// Time to handle one send (routing and the durable enqueue).
    pub routing_latency: LatencyTracker,
    /// When the server started, Unix milliseconds.
    pub started_at: UnixMillis,
    // The locks below are parking_lot mutexes held for in-memory work only, never across an
    // `.await`.
    engine_totals: Mutex<EngineTotals>,
    recent: Mutex<RecentSamples>,
    history: Mutex<History>,
    alerts: Mutex<AlertBook>,
    /// The latest snapshot as JSON, serialized once per second for every dashboard.
    latest: watch::Sender<std::sync::Arc<str>>,
    /// Alert starts and resolutions, for dashboards.
    alert_changes: broadcast::Sender<AlertChange>,
    /// Open dashboard event streams.
    streams: AtomicUsize,
}

impl Monitor {
    /// A monitor with nothing counted yet; `now` is the server's start.
    pub fn new(now: UnixMillis) -> Self {
        Self {
            counters: Counters::default(),
            ack_latency: LatencyTracker::default(),
            first_delivery_latency: LatencyTracker::default(),
            routing_latency: LatencyTracker::default(),
            started_at: now,
            engine_totals: Mutex::default(),
            recent: Mutex::default(),
            history: Mutex::default(),
            alerts: Mutex::default(),
            latest: watch::Sender::new("{}".into()),
            alert_changes: broadcast::Sender::new(ALERT_EVENTS_MAX),
            streams: AtomicUsize::new(0),
        }
    }

    /// `count` messages were placed in inboxes by one send that took `took`.
    pub fn sent(&self, count: u64, took: Duration, now: UnixMillis) {
        self.counters.sent(count);
        self.routing_latency
            .record(took.as_micros().min(u128::from(u64::MAX)) as u64, now);
    }

    /// A send could not be placed (no such recipient, no target, or the enqueue failed).
    pub fn routing_failed(&self) {
        self.counters.routing_failed();
    }

    /// Messages were handed to an agent at `now`.
    pub fn delivered(&self, deliveries: &[Delivery], now: UnixMillis) {
        let mut first = 0;
        for delivery in deliveries {
            // The engine counts the attempt when it leases, so 1 is the first delivery.
            if delivery.message.attempts == 1 {
                first += 1;
                let waited = now.saturating_sub(delivery.message.enqueued_at);
                self.first_delivery_latency.record(waited * 1000, now);
            }
        }
        self.counters.delivered(deliveries.len() as u64, first);
    }

    /// A message enqueued at `enqueued_at` was acknowledged at `now`.
    pub fn acked(&self, enqueued_at: UnixMillis, now: UnixMillis) {
        self.counters.acked(1);
        self.ack_latency
            .record(now.saturating_sub(enqueued_at) * 1000, now);
    }

    /// A message was given back.
    pub fn nacked(&self) {
        self.counters.nacked();
    }
}

/// Paths whose requests are not counted: the monitoring's own, so that a dashboard or a
/// Prometheus scraper does not dilute the error rate it reports.
fn is_monitoring_path(path: &str) -> bool {
    matches!(
        path,
        "/" | "/dashboard" | "/metrics" | "/api/v1/health/detailed" | "/api/v1/alerts"
    ) || path.starts_with("/api/v1/metrics/")
        || path.starts_with("/api/v1/monitor/")
}

/// Middleware counting HTTP requests and rejections (status ≥ 400) for the error rate.
pub async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let counted = !is_monitoring_path(request.uri().path());
    let response = next.run(request).await;
    if counted {
        state
            .monitor
            .counters
            .http_answered(response.status().as_u16());
    }
    response
}

/// The monitoring routes: `/`, `/dashboard`, `/metrics`, `/api/v1/health/detailed`,
/// `/api/v1/alerts`, `/api/v1/metrics/export`, `/api/v1/metrics/current` and
/// `/api/v1/monitor/events`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/dashboard", get(dashboard::page))
        .route("/api/v1/monitor/events", get(dashboard::events))
        .route("/metrics", get(prometheus::metrics))
        .route("/api/v1/health/detailed", get(routes::health_detailed))
        .route("/api/v1/alerts", get(routes::alerts))
        .route("/api/v1/metrics/export", get(routes::export))
        .route("/api/v1/metrics/current", get(routes::current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitoring_paths_are_not_counted_and_api_paths_are() {
        for path in [
            "/",
            "/metrics",
            "/api/v1/metrics/export",
            "/api/v1/monitor/events",
        ] {
            assert!(is_monitoring_path(path), "{path}");
        }
        for path in ["/api/v1/messages", "/api/v1/stats", "/ws/alice", "/nowhere"] {
            assert!(!is_monitoring_path(path), "{path}");
        }
    }
}
