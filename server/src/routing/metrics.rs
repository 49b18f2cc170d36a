//! Routing counters for `/api/v1/stats`: how many messages were routed, waited, were handed
//! over from a waiting queue, or failed, hits per rule, and the time routing decisions take.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Distinct rule names counted; hits of further names (rules renamed many times) are counted
/// under [`OTHER_RULES`].
pub const RULE_NAMES_COUNTED_MAX: usize = 1024;
/// The bucket of rule names beyond [`RULE_NAMES_COUNTED_MAX`].
pub const OTHER_RULES: &str = "(other rules)";

/// Counters since the server started. Lock-free but for the per-rule map, which is touched
/// once per routed message for a few nanoseconds.
#[derive(Debug, Default)]
pub struct RoutingMetrics {
    routed: AtomicU64,
    queued: AtomicU64,
    handed_over: AtomicU64,
    failures: AtomicU64,
    decisions: AtomicU64,
    decision_time_ns: AtomicU64,
    rule_hits: Mutex<BTreeMap<String, u64>>,
}

impl RoutingMetrics {
    /// A message went to an agent's inbox at send time.
    pub fn routed(&self) {
        self.routed.fetch_add(1, Ordering::Relaxed);
    }

    /// A message went to a waiting queue: no candidate was online.
    pub fn queued(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages moved from a waiting queue to an agent that came online.
    pub fn handed_over(&self, count: u64) {
        self.handed_over.fetch_add(count, Ordering::Relaxed);
    }

    /// A message could not be routed (no rule matched, or storage failed).
    pub fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Rule `name` matched a message.
    pub fn rule_hit(&self, name: &str) {
        let mut hits = self.rule_hits.lock();
        let key = if hits.contains_key(name) || hits.len() < RULE_NAMES_COUNTED_MAX {
            name
        } else {
            OTHER_RULES
        };
        *hits.entry(key.to_string()).or_insert(0) += 1;
    }

    /// One routing decision took `took` (rules, candidates and strategy; not the enqueue).
    pub fn decision(&self, took: Duration) {
        self.decisions.fetch_add(1, Ordering::Relaxed);
        self.decision_time_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// The counters now; `waiting` is filled in by the caller from the engine.
    pub fn snapshot(&self) -> RoutingStats {
        let decisions = self.decisions.load(Ordering::Relaxed);
        let average_ms = if decisions == 0 {
            0.0
        } else {
            self.decision_time_ns.load(Ordering::Relaxed) as f64 / decisions as f64 / 1e6
        };
        RoutingStats {
            messages_routed: self.routed.load(Ordering::Relaxed),
            messages_queued: self.queued.load(Ordering::Relaxed),
            messages_handed_over: self.handed_over.load(Ordering::Relaxed),
            routing_failures: self.failures.load(Ordering::Relaxed),
            rule_hits: self.rule_hits.lock().clone(),
            average_routing_time_ms: average_ms,
            waiting: BTreeMap::new(),
        }
    }
}

/// The `routing` section of `/api/v1/stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RoutingStats {
    /// Messages sent to `auto` or `capability:NAME` that went to an agent at once.
    pub messages_routed: u64,
    /// Such messages that had to wait: no candidate was online.
    pub messages_queued: u64,
    /// Waiting messages handed to an agent when one came online.
    pub messages_handed_over: u64,
    /// Messages that could not be routed (no rule matched, or storage failed).
    pub routing_failures: u64,
    /// Messages matched per rule name.
    pub rule_hits: BTreeMap<String, u64>,
    /// Mean time of one routing decision, in milliseconds.
    pub average_routing_time_ms: f64,
    /// Messages waiting now, per waiting queue (`capability:NAME`, `capability:*`,
    /// `rule:NAME`); dead letters of waiting queues under `NAME (dead)`.
    pub waiting: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up() {
        let metrics = RoutingMetrics::default();
        metrics.routed();
        metrics.routed();
        metrics.queued();
        metrics.handed_over(3);
        metrics.failed();
        metrics.rule_hit("quality");
        metrics.rule_hit("quality");
        metrics.decision(Duration::from_millis(2));
        metrics.decision(Duration::from_millis(4));
        let stats = metrics.snapshot();
        assert_eq!(stats.messages_routed, 2);
        assert_eq!(stats.messages_queued, 1);
        assert_eq!(stats.messages_handed_over, 3);
        assert_eq!(stats.routing_failures, 1);
        assert_eq!(stats.rule_hits["quality"], 2);
        assert!((stats.average_routing_time_ms - 3.0).abs() < 1e-9);
    }

    #[test]
    fn rule_names_beyond_the_limit_share_one_bucket() {
        let metrics = RoutingMetrics::default();
        for index in 0..=RULE_NAMES_COUNTED_MAX {
            metrics.rule_hit(&format!("rule-{index}"));
        }
        let hits = metrics.snapshot().rule_hits;
        assert_eq!(hits.len(), RULE_NAMES_COUNTED_MAX + 1);
        assert_eq!(hits[OTHER_RULES], 1);
    }
}
