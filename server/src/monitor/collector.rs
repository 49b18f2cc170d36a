//! [`collect`]: everything the monitoring shows, read at one moment into a [`Snapshot`] (the
//! dashboard's data, `GET /api/v1/metrics/current`, and the health score's inputs). It reads
//! the engine (queue depths and counters, storage), the registry (agents and presence), the
//! sockets, the server's counters and latency windows, and the process's memory.

use serde::Serialize;
use switchboard_engine::{QueueStats, UnixMillis};

use super::alerts::{Alert, AlertInputs};
use super::counters::CounterValues;
use super::latency::LatencySummary;
use super::memory::{process_memory, ProcessMemory};
use super::recent::{EngineCounts, Growth, Sample, ERROR_WINDOW_MS, RATE_WINDOW_MS};
use super::score::{score, HealthInputs, HealthReport};
use crate::api::wire::AgentStatus;
use crate::state::AppState;
use crate::time::iso8601;

/// Most agents listed in a snapshot (the dashboard's table); the counts cover all of them.
pub const SNAPSHOT_AGENTS_MAX: usize = 200;
/// Most non-inbox queues listed in a snapshot, largest first.
pub const SNAPSHOT_QUEUES_MAX: usize = 20;
/// Resolved alerts listed in a snapshot, newest first.
pub const SNAPSHOT_RESOLVED_ALERTS_MAX: usize = 20;
/// Engine queues whose name starts with this are the server's own logs (registry, routing
/// rules, migration; the queue API refuses such names): left out of every number.
const SERVER_LOG_PREFIX: &str = "_";
/// How long after the start agents restored from storage may take to come back before they
/// count as unavailable, in milliseconds: the registry's presence window, the silence after
/// which any agent is shown offline. The registry restores every agent offline until it is
/// heard from, so without it a restart raised an availability alert at once.
pub const RETURNING_GRACE_MS: u64 = crate::limits::PRESENCE_WINDOW.as_millis() as u64;
/// Engine queues whose name starts with this are agents' inboxes.
const INBOX_PREFIX: &str = "inbox:";

/// Queues the server keeps for its own plumbing: reply queues of asks and waiting queues of
/// routed messages (`/api/v1/stats` counts those under routing). Their messages are users'
/// messages, so they count in the depths and dead letters, but they are not listed or counted
/// among the user's queues.
fn is_internal_queue(name: &str) -> bool {
    name.starts_with(crate::receipts::asks::REPLY_QUEUE_PREFIX)
        || crate::routing::waiting::is_waiting_queue(name)
}

/// Everything the monitoring shows, at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// When, ISO-8601.
    pub timestamp: String,
    /// When, Unix milliseconds.
    pub timestamp_ms: UnixMillis,
    /// Seconds since the server started.
    pub uptime_seconds: u64,
    /// The health score.
    pub health: HealthReport,
    /// Messages per second over the last 10 s.
    pub throughput: Throughput,
    /// Counters since start.
    pub totals: Totals,
    /// Latency distributions over the last 5 minutes.
    pub latency: Latencies,
    /// Error rates over the last 5 minutes.
    pub errors: Errors,
    /// Agents and their presence.
    pub agents: AgentsPanel,
    /// Queue depths.
    pub queues: QueuesPanel,
    /// The storage committer.
    pub storage: StoragePanel,
    /// Open sockets.
    pub websockets: WebsocketsPanel,
    /// This process's memory (absent where `/proc` is not).
    pub memory: Option<ProcessMemory>,
    /// Active and recently resolved alerts.
    pub alerts: AlertsPanel,
}

/// Messages per second.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Throughput {
    /// Placed in inboxes.
    pub sent_per_second: f64,
    /// Handed to agents.
    pub delivered_per_second: f64,
    /// Acknowledged.
    pub acked_per_second: f64,
    /// Seconds the rates are averaged over.
    pub window_seconds: f64,
}

/// Counters since the server started.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Totals {
    /// The server's counters.
    #[serde(flatten)]
    pub counters: CounterValues,
    /// Put back for another attempt (nacks and lease timeouts).
    pub retried: u64,
    /// Became dead letters.
    pub dead_lettered: u64,
    /// Expired.
    pub expired: u64,
}

/// The latency distributions.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latencies {
    /// Send → ack.
    pub ack: LatencySummary,
    /// Send → first delivery.
    pub first_delivery: LatencySummary,
    /// Handling one send (routing and the durable enqueue).
    pub routing: LatencySummary,
}

/// Error rates over the last [`ERROR_WINDOW_MS`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Errors {
    /// Seconds the window spans so far.
    pub window_seconds: f64,
    /// Requests, frames and deliveries in the window.
    pub operations: u64,
    /// Rejected requests and frames, and dead letters, in the window.
    pub failures: u64,
    /// `failures / operations` (0 with no operations).
    pub error_rate: f64,
    /// Placed sends / attempted sends (1 with none).
    pub routing_success_rate: f64,
    /// Requests and frames answered with an error, per second.
    pub rejected_per_second: f64,
    /// Sends that could not be placed, per second.
    pub routing_failures_per_second: f64,
    /// Deliveries that failed (retried or dead-lettered), per second.
    pub failed_deliveries_per_second: f64,
}

/// Agents.
#[derive(Debug, Clone, Serialize)]
pub struct AgentsPanel {
    /// Registered.
    pub total: usize,
    /// Online, busy or idle, or with a socket open.
    pub available: usize,
    /// Restored at the start and not heard from since, within [`RETURNING_GRACE_MS`]:
    /// neither available nor unavailable yet.
    pub returning: usize,
    /// `available / (total - returning)`; 1 with none judged (none is unavailable).
    pub availability: f64,
    /// Up to [`SNAPSHOT_AGENTS_MAX`] agents, by name.
    pub list: Vec<AgentRow>,
}

/// One agent and its inbox.
#[derive(Debug, Clone, Serialize)]
pub struct AgentRow {
    /// Name.
    pub name: String,
    /// Presence.
    pub status: AgentStatus,
    /// A socket is open.
    pub connected: bool,
    /// Last heartbeat or activity, ISO-8601.
    pub last_seen: String,
    /// Inbox messages waiting (ready or delayed).
    pub waiting: u64,
    /// Inbox messages leased, not yet acked.
    pub leased: u64,
    /// Dead letters.
    pub dead: u64,
}

/// Queue depths over all queues but the server's logs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueuesPanel {
    /// The user's queues: inboxes and queues made with the queue API (internal ones left out).
    pub count: usize,
    /// Ready now.
    pub ready: u64,
    /// Waiting for a delay or backoff.
    pub delayed: u64,
    /// Out with consumers.
    pub leased: u64,
    /// Dead letters.
    pub dead: u64,
    /// All of them.
    pub size: u64,
    /// Ready, delayed or leased.
    pub pending: u64,
    /// Up to [`SNAPSHOT_QUEUES_MAX`] of the user's queues that are not inboxes, largest first.
    pub other: Vec<QueueRow>,
}

/// One queue's depth.
#[derive(Debug, Clone, Serialize)]
pub struct QueueRow {
    /// Name.
    pub name: String,
    /// Ready or delayed.
    pub waiting: u64,
    /// Leased.
    pub leased: u64,
    /// Dead letters.
    pub dead: u64,
}

/// The storage committer.
#[derive(Debug, Clone, Serialize)]
pub struct StoragePanel {
    /// The backend.
    pub backend: String,
    /// Why writes are refused, when they are.
    pub problem: Option<String>,
    /// A failure stopped the engine for good.
    pub poisoned: bool,
    /// Records waiting for the next commit.
    pub pending_records: usize,
    /// Commits since start.
    pub commits: u64,
    /// Commits per second over the last 10 s.
    pub commits_per_second: f64,
    /// Mean commit duration over the last 10 s, in seconds.
    pub mean_commit_seconds: f64,
    /// Mean records per commit over the last 10 s.
    pub mean_batch_records: f64,
    /// Duration of the latest commit, in seconds.
    pub last_commit_seconds: f64,
    /// Records in the latest commit.
    pub last_batch_records: u64,
}

/// Sockets.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WebsocketsPanel {
    /// Open sockets.
    pub connections: usize,
    /// Agents with a socket open.
    pub agents: usize,
}

/// Alerts.
#[derive(Debug, Clone, Serialize)]
pub struct AlertsPanel {
    /// Active now, critical first.
    pub active: Vec<Alert>,
    /// Recently resolved, newest first.
    pub recent: Vec<Alert>,
}

/// The cumulative numbers now, for [`super::recent::RecentSamples`].
pub fn sample(state: &AppState, queues: &[QueueStats]) -> Sample {
    let monitor = &state.monitor;
    Sample {
        at: state.engine.now_ms(),
        counters: monitor.counters.values(),
        engine: monitor.engine_totals.lock().update(queues),
        commits: state.engine.engine_stats().commits,
    }
}

/// Reads everything now. Rates come from the samples the sampler keeps; without any (the
/// sampler not started yet) rates are 0 and windows cover the whole run.
pub fn collect(state: &AppState) -> Snapshot {
    collect_with_sample(state).0
}

/// [`collect`], also giving the cumulative numbers it read (the sampler keeps them).
pub fn collect_with_sample(state: &AppState) -> (Snapshot, Sample) {
    let monitor = &state.monitor;
    let queues: Vec<QueueStats> = state
        .engine
        .all_queue_stats()
        .into_iter()
        .filter(|q| !q.name.starts_with(SERVER_LOG_PREFIX))
        .collect();
    let now_sample = sample(state, &queues);
    let now = now_sample.at;
    let (rate, window) = {
        let recent = monitor.recent.lock();
        (
            recent.growth(&now_sample, RATE_WINDOW_MS),
            recent.growth(&now_sample, ERROR_WINDOW_MS),
        )
    };
    let latency = Latencies {
        ack: monitor.ack_latency.summary(now),
        first_delivery: monitor.first_delivery_latency.summary(now),
        routing: monitor.routing_latency.summary(now),
    };
    let errors = errors(&rate, &window);
    let agents = agents_panel(state, &queues);
    let queues_panel = queues_panel(&queues);
    let engine_stats = state.engine.engine_stats();
    let health = score(&HealthInputs {
        queue_size: queues_panel.size,
        pending: queues_panel.pending,
        dead_letters: queues_panel.dead,
        average_delivery_seconds: latency.ack.mean_seconds,
        agents_total: agents.total,
        agents_available: agents.available,
        agents_returning: agents.returning,
        routing_success_rate: errors.routing_success_rate,
        average_routing_seconds: latency.routing.mean_seconds,
        storage_problem: engine_stats.storage_problem.clone(),
    });
    let alerts = {
        let book = monitor.alerts.lock();
        AlertsPanel {
            active: book.active(),
            recent: book.recent(SNAPSHOT_RESOLVED_ALERTS_MAX),
        }
    };
    let commits = engine_stats.commits;
    let snapshot = Snapshot {
        timestamp: iso8601(now),
        timestamp_ms: now,
        uptime_seconds: now.saturating_sub(monitor.started_at) / 1000,
        health,
        throughput: Throughput {
            sent_per_second: rate.per_second(rate.counters.sent),
            delivered_per_second: rate.per_second(rate.counters.delivered),
            acked_per_second: rate.per_second(rate.counters.acked),
            window_seconds: rate.seconds,
        },
        totals: totals(&now_sample.counters, &now_sample.engine),
        latency,
        errors,
        agents,
        queues: queues_panel,
        storage: StoragePanel {
            backend: engine_stats.storage,
            problem: engine_stats.storage_problem,
            poisoned: engine_stats.poisoned,
            pending_records: engine_stats.pending_records,
            commits: commits.commits,
            commits_per_second: rate.per_second(rate.commits),
            mean_commit_seconds: ratio(rate.commit_micros, rate.commits) / 1e6,
            mean_batch_records: ratio(rate.records, rate.commits),
            last_commit_seconds: commits.last_commit_micros as f64 / 1e6,
            last_batch_records: commits.last_batch_records,
        },
        websockets: WebsocketsPanel {
            connections: state.sockets.open_count(),
            agents: state.sockets.agent_count(),
        },
        memory: process_memory(),
        alerts,
    };
    (snapshot, now_sample)
}

impl Snapshot {
    /// What the alert rules look at.
    pub fn alert_inputs(&self) -> AlertInputs {
        AlertInputs {
            score: self.health.score,
            error_rate: self.errors.error_rate,
            operations: self.errors.operations,
            average_delivery_seconds: self.latency.ack.mean_seconds,
            availability: self.agents.availability,
            agents_total: self.agents.total,
            dead_letters: self.queues.dead,
        }
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn totals(counters: &CounterValues, engine: &EngineCounts) -> Totals {
    Totals {
        counters: *counters,
        retried: engine.retried,
        dead_lettered: engine.dead_lettered,
        expired: engine.expired,
    }
}

fn errors(rate: &Growth, window: &Growth) -> Errors {
    let operations = window.counters.requests() + window.counters.delivered;
    let failures = window.counters.rejected() + window.engine.dead_lettered;
    let placed = window.counters.sent;
    let attempted = placed + window.counters.routing_failures;
    Errors {
        window_seconds: window.seconds,
        operations,
        failures,
        error_rate: ratio(failures, operations).min(1.0),
        routing_success_rate: if attempted == 0 {
            1.0
        } else {
            ratio(placed, attempted)
        },
        rejected_per_second: rate.per_second(rate.counters.rejected()),
        routing_failures_per_second: rate.per_second(rate.counters.routing_failures),
        failed_deliveries_per_second: rate
            .per_second(rate.engine.retried + rate.engine.dead_lettered),
    }
}

fn agents_panel(state: &AppState, queues: &[QueueStats]) -> AgentsPanel {
    let views = state.registry.list();
    let by_name: std::collections::HashMap<&str, &QueueStats> =
        queues.iter().map(|q| (&*q.name, q)).collect();
    let now = state.engine.now_ms();
    let mut available = 0;
    let mut returning = 0;
    let mut list = Vec::with_capacity(views.len().min(SNAPSHOT_AGENTS_MAX));
    for view in &views {
        let connected = state.sockets.is_connected(&view.record.id);
        let status = if connected && view.status == AgentStatus::Offline {
            AgentStatus::Online
        } else {
            view.status
        };
        if connected
            || matches!(
                status,
                AgentStatus::Online | AgentStatus::Busy | AgentStatus::Idle
            )
        {
            available += 1;
        } else if is_returning(view.last_seen, state.monitor.started_at, now) {
            returning += 1;
        }
        if list.len() < SNAPSHOT_AGENTS_MAX {
            let depth = by_name.get(view.record.inbox().as_str());
            list.push(AgentRow {
                name: view.record.name.clone(),
                status,
                connected,
                last_seen: iso8601(view.last_seen),
                waiting: depth.map_or(0, |q| q.ready + q.delayed),
                leased: depth.map_or(0, |q| q.leased),
                dead: depth.map_or(0, |q| q.dead),
            });
        }
    }
    AgentsPanel {
        total: views.len(),
        available,
        returning,
        availability: if views.len() == returning {
            1.0
        } else {
            ratio(available as u64, (views.len() - returning) as u64)
        },
        list,
    }
}

/// An unavailable agent last seen no later than the start was restored from storage and not
/// heard from since; within [`RETURNING_GRACE_MS`] of the start it is still on its way back.
fn is_returning(last_seen: UnixMillis, started_at: UnixMillis, now: UnixMillis) -> bool {
    last_seen <= started_at && now < started_at.saturating_add(RETURNING_GRACE_MS)
}

fn queues_panel(queues: &[QueueStats]) -> QueuesPanel {
    let mut panel = QueuesPanel {
        count: queues
            .iter()
            .filter(|q| !is_internal_queue(&q.name))
            .count(),
        ..QueuesPanel::default()
    };
    for queue in queues {
        panel.ready += queue.ready;
        panel.delayed += queue.delayed;
        panel.leased += queue.leased;
        panel.dead += queue.dead;
    }
    panel.pending = panel.ready + panel.delayed + panel.leased;
    panel.size = panel.pending + panel.dead;
    let mut other: Vec<QueueRow> = queues
        .iter()
        .filter(|q| !q.name.starts_with(INBOX_PREFIX) && !is_internal_queue(&q.name))
        .map(|q| QueueRow {
            name: q.name.to_string(),
            waiting: q.ready + q.delayed,
            leased: q.leased,
            dead: q.dead,
        })
        .collect();
    other.sort_by_key(|q| std::cmp::Reverse(q.waiting + q.leased + q.dead));
    other.truncate(SNAPSHOT_QUEUES_MAX);
    panel.other = other;
    panel
}

#[cfg(test)]
#[path = "collector_tests.rs"]
mod tests;
