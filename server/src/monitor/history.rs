//! The last 24 hours, one [`HistoryPoint`] every 10 seconds (8640 points, a few MiB at most),
//! kept in memory: the source of `GET /api/v1/metrics/export?hours=N`, of
//! `switchboard stats --export`, and of the dashboard's charts when it opens. History starts
//! empty at each start of the server; Prometheus is the place for longer, durable history.

use std::collections::VecDeque;

use serde::{Serialize, Serializer};
use switchboard_engine::UnixMillis;

use super::collector::Snapshot;
use super::score::HealthStatus;
use crate::time::iso8601;

/// Time between two points, in milliseconds.
pub const HISTORY_RESOLUTION_MS: u64 = 10_000;
/// Longest span kept and exported, in hours.
pub const HISTORY_HOURS_MAX: u64 = 24;
/// Points kept: 24 hours at one per 10 seconds.
pub const HISTORY_POINTS_MAX: usize =
    (HISTORY_HOURS_MAX * 60 * 60 * 1000 / HISTORY_RESOLUTION_MS) as usize;

fn iso<S: Serializer>(ms: &UnixMillis, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&iso8601(*ms))
}

/// The numbers of one moment that are worth keeping for a day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// When, ISO-8601.
    #[serde(serialize_with = "iso")]
    pub timestamp: UnixMillis,
    /// Health score.
    pub score: f64,
    /// Health status.
    pub status: HealthStatus,
    /// Messages placed in inboxes per second (10 s mean).
    pub sent_per_second: f64,
    /// Deliveries per second (10 s mean).
    pub delivered_per_second: f64,
    /// Acks per second (10 s mean).
    pub acked_per_second: f64,
    /// Send → ack median over the last 5 minutes, in seconds.
    pub ack_latency_p50_seconds: f64,
    /// Send → ack 95th percentile, in seconds.
    pub ack_latency_p95_seconds: f64,
    /// Send → ack 99th percentile, in seconds.
    pub ack_latency_p99_seconds: f64,
    /// Send → first delivery 95th percentile, in seconds.
    pub first_delivery_latency_p95_seconds: f64,
    /// Failed / all operations over the last 5 minutes.
    pub error_rate: f64,
    /// Messages in queues.
    pub queue_size: u64,
    /// Messages ready, delayed or leased.
    pub pending: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Registered agents.
    pub agents_total: usize,
    /// Available agents.
    pub agents_available: usize,
    /// Open sockets.
    pub websocket_connections: usize,
    /// Mean storage commit duration, in seconds.
    pub mean_commit_seconds: f64,
    /// Mean records per commit.
    pub mean_batch_records: f64,
    /// Resident memory, in bytes (0 where unknown).
    pub resident_memory_bytes: u64,
}

impl HistoryPoint {
    /// The point of a snapshot.
    pub fn of(snapshot: &Snapshot) -> Self {
        Self {
            timestamp: snapshot.timestamp_ms,
            score: snapshot.health.score,
            status: snapshot.health.status,
            sent_per_second: snapshot.throughput.sent_per_second,
            delivered_per_second: snapshot.throughput.delivered_per_second,
            acked_per_second: snapshot.throughput.acked_per_second,
            ack_latency_p50_seconds: snapshot.latency.ack.p50_seconds,
            ack_latency_p95_seconds: snapshot.latency.ack.p95_seconds,
            ack_latency_p99_seconds: snapshot.latency.ack.p99_seconds,
            first_delivery_latency_p95_seconds: snapshot.latency.first_delivery.p95_seconds,
            error_rate: snapshot.errors.error_rate,
            queue_size: snapshot.queues.size,
            pending: snapshot.queues.pending,
            dead_letters: snapshot.queues.dead,
            agents_total: snapshot.agents.total,
            agents_available: snapshot.agents.available,
            websocket_connections: snapshot.websockets.connections,
            mean_commit_seconds: snapshot.storage.mean_commit_seconds,
            mean_batch_records: snapshot.storage.mean_batch_records,
            resident_memory_bytes: snapshot.memory.map_or(0, |m| m.resident_bytes),
        }
    }
}

/// Points, oldest first, at most [`HISTORY_POINTS_MAX`].
#[derive(Debug, Default)]
pub struct History {
    points: VecDeque<HistoryPoint>,
}

impl History {
    /// True when a point taken at `now` is due (none yet, or the last is 10 s old).
    pub fn due(&self, now: UnixMillis) -> bool {
        self.points
            .back()
            .is_none_or(|last| now >= last.timestamp + HISTORY_RESOLUTION_MS)
    }

    /// Keeps `point`, dropping the oldest beyond the bound and any older than 24 hours.
    pub fn push(&mut self, point: HistoryPoint) {
        let oldest_kept = point
            .timestamp
            .saturating_sub(HISTORY_HOURS_MAX * 60 * 60 * 1000);
        while self.points.len() >= HISTORY_POINTS_MAX
            || self
                .points
                .front()
                .is_some_and(|p| p.timestamp < oldest_kept)
        {
            self.points.pop_front();
        }
        self.points.push_back(point);
    }

    /// The points taken at or after `since`, oldest first.
    pub fn since(&self, since: UnixMillis) -> Vec<HistoryPoint> {
        let start = self.points.partition_point(|p| p.timestamp < since);
        self.points.range(start..).cloned().collect()
    }

    /// Points kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.points.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(timestamp: UnixMillis) -> HistoryPoint {
        HistoryPoint {
            timestamp,
            score: 100.0,
            status: HealthStatus::Healthy,
            sent_per_second: 0.0,
            delivered_per_second: 0.0,
            acked_per_second: 0.0,
            ack_latency_p50_seconds: 0.0,
            ack_latency_p95_seconds: 0.0,
            ack_latency_p99_seconds: 0.0,
            first_delivery_latency_p95_seconds: 0.0,
            error_rate: 0.0,
            queue_size: 0,
            pending: 0,
            dead_letters: 0,
            agents_total: 0,
            agents_available: 0,
            websocket_connections: 0,
            mean_commit_seconds: 0.0,
            mean_batch_records: 0.0,
            resident_memory_bytes: 0,
        }
    }

    #[test]
    fn a_point_is_due_every_10_seconds() {
        let mut history = History::default();
        assert!(history.due(0));
        history.push(point(0));
        assert!(!history.due(HISTORY_RESOLUTION_MS - 1));
        assert!(history.due(HISTORY_RESOLUTION_MS));
    }

    #[test]
    fn a_day_of_points_is_kept_and_no_more() {
        let mut history = History::default();
        let points = HISTORY_POINTS_MAX as u64 + 100;
        for step in 0..points {
            history.push(point(step * HISTORY_RESOLUTION_MS));
        }
        assert_eq!(history.len(), HISTORY_POINTS_MAX);
        let last = (points - 1) * HISTORY_RESOLUTION_MS;
        let day_ago = last - HISTORY_HOURS_MAX * 3_600_000;
        assert!(history.since(0)[0].timestamp >= day_ago);
    }

    #[test]
    fn points_older_than_a_day_are_dropped_after_a_gap() {
        let mut history = History::default();
        history.push(point(0));
        history.push(point(25 * 3_600_000));
        assert_eq!(history.len(), 1);
    }

    #[test]
    fn since_returns_the_window_oldest_first() {
        let mut history = History::default();
        for step in 0..10 {
            history.push(point(step * HISTORY_RESOLUTION_MS));
        }
        let window = history.since(7 * HISTORY_RESOLUTION_MS);
        let times: Vec<u64> = window.iter().map(|p| p.timestamp).collect();
        assert_eq!(times, [70_000, 80_000, 90_000]);
    }
}
