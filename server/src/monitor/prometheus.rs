//! `GET /metrics`: the Prometheus text format (0.0.4), encoded by `prometheus-client`.
//!
//! Names follow Prometheus conventions: a `switchboard_` prefix, base units (`_seconds`,
//! `_bytes`), `_total` on counters, `_ratio` on a 0..1 fraction (`switchboard_error_ratio`,
//! `switchboard_agent_availability_ratio`), labels for a dimension rather than one name per
//! value. The health score stays `switchboard_health_score` in points (0 to 100, four
//! components of 25): the same number the API, the dashboard and the alert thresholds use.
//! HELP texts are written without a final period: the encoder adds one.
//! Each scrape builds a fresh registry from a [`Snapshot`] (values computed elsewhere are
//! exported as constants) plus the live latency histograms, so there is no second copy of any
//! number to keep in step. Per-agent series are left out on purpose: agents come and go, and a
//! label per agent would grow the series without bound.

use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::{Registry, Unit};

use super::collector::{collect, Snapshot};
use super::Monitor;
use crate::state::AppState;

type Labels = [(&'static str, &'static str); 1];
type FloatGauge = Gauge<f64, AtomicU64>;

/// Adds metrics to a registry with less ceremony.
struct Exposition {
    registry: Registry,
}

/// The unit of a 0..1 fraction. `Unit::Ratios` would name it `_ratios`; Prometheus names
/// end in `_ratio`.
fn ratio_unit() -> Unit {
    Unit::Other("ratio".into())
}

/// `help` as the registry wants it: the registry ends every HELP text with a period itself.
fn help(text: &str) -> &str {
    debug_assert!(
        !text.ends_with('.'),
        "HELP text {text:?} ends in a period; the encoder adds one"
    );
    text
}

impl Exposition {
    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.registry
            .register(name, self::help(help), ConstCounter::new(value));
    }

    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.registry
            .register(name, self::help(help), ConstGauge::new(value));
    }

    fn gauge_in(&mut self, name: &str, help: &str, unit: Unit, value: f64) {
        self.registry
            .register_with_unit(name, self::help(help), unit, ConstGauge::new(value));
    }

    fn histogram_seconds(
        &mut self,
        name: &str,
        help: &str,
        histogram: prometheus_client::metrics::histogram::Histogram,
    ) {
        self.registry
            .register_with_unit(name, self::help(help), Unit::Seconds, histogram);
    }

    /// One gauge series per value of `label`.
    fn gauges_by(
        &mut self,
        name: &str,
        help: &str,
        label: &'static str,
        values: &[(&'static str, f64)],
    ) {
        let family = Family::<Labels, FloatGauge>::default();
        for (label_value, value) in values {
            family.get_or_create(&[(label, *label_value)]).set(*value);
        }
        self.registry.register(name, self::help(help), family);
    }

    /// One counter series per value of `label`.
    fn counters_by(
        &mut self,
        name: &str,
        help: &str,
        label: &'static str,
        values: &[(&'static str, u64)],
    ) {
        let family = Family::<Labels, prometheus_client::metrics::counter::Counter>::default();
        for (label_value, value) in values {
            family
                .get_or_create(&[(label, *label_value)])
                .inc_by(*value);
        }
        self.registry.register(name, self::help(help), family);
    }
}

/// The exposition text of `snapshot` and `monitor`'s histograms.
pub fn render(snapshot: &Snapshot, monitor: &Monitor) -> String {
    let mut out = Exposition {
        registry: Registry::default(),
    };
    let totals = &snapshot.totals;
    let counters = &totals.counters;
    out.counter(
        "switchboard_messages_sent",
        "Messages placed in agents' inboxes (a broadcast counts one per copy)",
        counters.sent,
    );
    out.counter(
        "switchboard_messages_delivered",
        "Messages handed to agents, redeliveries included",
        counters.delivered,
    );
    out.counter(
        "switchboard_messages_first_delivered",
        "Deliveries that were a message's first",
        counters.first_delivered,
    );
    out.counter(
        "switchboard_messages_acked",
        "Messages acknowledged by their agent",
        counters.acked,
    );
    out.counter(
        "switchboard_messages_nacked",
        "Messages given back by their agent",
        counters.nacked,
    );
    out.counter(
        "switchboard_messages_retried",
        "Messages put back for another attempt (nacks and lease timeouts), all queues",
        totals.retried,
    );
    out.counter(
        "switchboard_messages_dead_lettered",
        "Messages that became dead letters, all queues",
        totals.dead_lettered,
    );
    out.counter(
        "switchboard_messages_expired",
        "Messages whose time to live ran out, all queues",
        totals.expired,
    );
    out.counter(
        "switchboard_routing_failures",
        "Sends that could not be placed (unknown recipient, no target, enqueue failed)",
        counters.routing_failures,
    );
    let http_ok =
        counters.http_requests - counters.http_client_errors - counters.http_server_errors;
    out.counters_by(
        "switchboard_http_requests",
        "HTTP requests answered, by outcome (monitoring endpoints excluded)",
        "outcome",
        &[
            ("success", http_ok),
            ("client_error", counters.http_client_errors),
            ("server_error", counters.http_server_errors),
        ],
    );
    out.counters_by(
        "switchboard_websocket_frames",
        "WebSocket frames received from agents, by outcome",
        "outcome",
        &[
            ("accepted", counters.ws_frames - counters.ws_frames_rejected),
            ("rejected", counters.ws_frames_rejected),
        ],
    );

    out.histogram_seconds(
        "switchboard_message_ack_latency",
        "Time from send to acknowledgement",
        monitor.ack_latency.exported(),
    );
    out.histogram_seconds(
        "switchboard_message_first_delivery_latency",
        "Time from send to first delivery",
        monitor.first_delivery_latency.exported(),
    );
    out.histogram_seconds(
        "switchboard_send_duration",
        "Time to handle one send: routing and the durable enqueue",
        monitor.routing_latency.exported(),
    );

    let health = &snapshot.health;
    out.gauge(
        "switchboard_health_score",
        "Health score, 0 to 100",
        health.score,
    );
    out.gauges_by(
        "switchboard_health_component_score",
        "Points of each health component, 0 to 25",
        "component",
        &[
            ("queue", health.components.queue.score),
            ("agents", health.components.agents.score),
            ("broker", health.components.broker.score),
            ("responsiveness", health.components.responsiveness.score),
        ],
    );
    out.gauge_in(
        "switchboard_error",
        "Failed operations / operations over the last 5 minutes",
        ratio_unit(),
        snapshot.errors.error_rate,
    );
    let active = &snapshot.alerts.active;
    let count = |severity| active.iter().filter(|a| a.severity == severity).count() as f64;
    out.gauges_by(
        "switchboard_alerts_active",
        "Active alerts, by severity",
        "severity",
        &[
            ("critical", count(super::alerts::Severity::Critical)),
            ("warning", count(super::alerts::Severity::Warning)),
        ],
    );

    let queues = &snapshot.queues;
    out.gauges_by(
        "switchboard_queue_messages",
        "Messages in all queues, by state",
        "state",
        &[
            ("ready", queues.ready as f64),
            ("delayed", queues.delayed as f64),
            ("leased", queues.leased as f64),
            ("dead", queues.dead as f64),
        ],
    );
    out.gauge(
        "switchboard_queues",
        "The user's queues: agent inboxes and queues made with the queue API",
        queues.count as f64,
    );
    out.gauge(
        "switchboard_agents_registered",
        "Registered agents",
        snapshot.agents.total as f64,
    );
    out.gauge(
        "switchboard_agents_available",
        "Agents online, busy or idle, or with a socket open",
        snapshot.agents.available as f64,
    );
    out.gauge_in(
        "switchboard_agent_availability",
        "Available agents / registered agents (1 with none registered: none is unavailable)",
        ratio_unit(),
        snapshot.agents.availability,
    );
    out.gauge(
        "switchboard_websocket_connections",
        "Open agent WebSockets",
        snapshot.websockets.connections as f64,
    );

    let storage = &snapshot.storage;
    out.gauge(
        "switchboard_storage_up",
        "1 while storage accepts writes, else 0",
        if storage.problem.is_none() { 1.0 } else { 0.0 },
    );
    out.counter(
        "switchboard_storage_commits",
        "Storage commits (batches)",
        storage.commits,
    );
    out.gauge(
        "switchboard_storage_pending_records",
        "Records waiting for the next commit",
        storage.pending_records as f64,
    );
    out.gauge_in(
        "switchboard_storage_last_commit_duration",
        "Duration of the latest storage commit",
        Unit::Seconds,
        storage.last_commit_seconds,
    );
    out.gauge(
        "switchboard_storage_last_batch_records",
        "Records in the latest storage commit",
        storage.last_batch_records as f64,
    );

    if let Some(memory) = snapshot.memory {
        out.gauge_in(
            "process_resident_memory",
            "Resident memory size",
            Unit::Bytes,
            memory.resident_bytes as f64,
        );
        out.gauge_in(
            "process_virtual_memory",
            "Virtual memory size",
            Unit::Bytes,
            memory.virtual_bytes as f64,
        );
    }

    let mut text = String::new();
    prometheus_text::encode(&mut text, &out.registry).expect("writing to a String cannot fail");
    text
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "monitoring",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let snapshot = collect(&state);
    (
        [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
        render(&snapshot, &state.monitor),
    )
}
