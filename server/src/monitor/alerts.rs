//! Alerts at the seed's thresholds. [`evaluate`] is a pure function from the current numbers to
//! the conditions that hold; [`AlertBook`] turns conditions into alerts with start and resolve
//! times (an alert starts when its condition first holds and resolves when it stops holding).
//!
//! Critical: health score < 50, or error rate > 10 %. Warning: score < 75 (and not < 50, where
//! the critical alert speaks for it), mean send→ack latency > 5 s, agent availability < 80 %,
//! or at least [`DEAD_LETTERS_WARNING_MIN`] dead letter (a message no agent processed, waiting
//! for a person to redrive or purge it). No alert without a cause: the error rate needs at
//! least [`ERROR_RATE_OPERATIONS_MIN`] operations in the window, so one failed request on an
//! idle server does not page anyone, and availability needs at least one registered agent
//! ("0 of 0 online" is not an outage).
//!
//! A resolved alert's message says what recovered ("resolved: health score back to 92.0 (was
//! below 75)"), not the text it fired with.

use std::collections::{BTreeMap, VecDeque};

use serde::{Serialize, Serializer};
use switchboard_engine::UnixMillis;

use crate::time::iso8601;

/// Critical below this health score.
pub const CRITICAL_SCORE_BELOW: f64 = 50.0;
/// Warning below this health score.
pub const WARNING_SCORE_BELOW: f64 = 75.0;
/// Critical above this error rate (a fraction of operations).
pub const ERROR_RATE_MAX: f64 = 0.10;
/// Fewest operations in the window before the error rate is judged.
pub const ERROR_RATE_OPERATIONS_MIN: u64 = 20;
/// Warning above this mean send→ack latency, in seconds.
pub const LATENCY_SECONDS_MAX: f64 = 5.0;
/// Warning below this fraction of available agents.
pub const AVAILABILITY_MIN: f64 = 0.80;
/// Warning at this many dead letters (messages, all queues but the server's logs) or more.
pub const DEAD_LETTERS_WARNING_MIN: u64 = 1;
/// Resolved alerts kept (oldest dropped first); they are also dropped after 24 hours.
pub const RESOLVED_ALERTS_MAX: usize = 500;
/// How long resolved alerts are kept, in milliseconds (24 hours, the history's span).
pub const RESOLVED_ALERTS_KEPT_MS: u64 = 24 * 60 * 60 * 1000;

/// What the alert rules look at.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AlertInputs {
    /// Health score, 0 to 100.
    pub score: f64,
    /// Failed operations / operations over the window.
    pub error_rate: f64,
    /// Operations over the window.
    pub operations: u64,
    /// Mean send→ack latency over the window, in seconds.
    pub average_delivery_seconds: f64,
    /// Available agents / registered agents.
    pub availability: f64,
    /// Registered agents.
    pub agents_total: usize,
    /// Dead letters waiting for a redrive or purge.
    pub dead_letters: u64,
}

/// Which rule an alert comes from. At most one alert per rule is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertRule {
    /// Score < 50.
    HealthScoreCritical,
    /// Error rate > 10 %.
    ErrorRateHigh,
    /// 50 ≤ score < 75.
    HealthScoreLow,
    /// Mean latency > 5 s.
    DeliveryLatencyHigh,
    /// Availability < 80 %.
    AgentAvailabilityLow,
    /// At least one dead letter.
    DeadLetters,
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Act now.
    Critical,
    /// Look soon.
    Warning,
}

/// A rule whose condition holds now.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The rule.
    pub rule: AlertRule,
    /// Its severity.
    pub severity: Severity,
    /// The measured value.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// A sentence for people.
    pub message: String,
}

/// The conditions that hold for `inputs`.
pub fn evaluate(inputs: &AlertInputs) -> Vec<Condition> {
    let mut conditions = Vec::new();
    let mut hold = |rule, severity, value, threshold, message: String| {
        conditions.push(Condition {
            rule,
            severity,
            value,
            threshold,
            message,
        })
    };
    if inputs.score < CRITICAL_SCORE_BELOW {
        hold(
            AlertRule::HealthScoreCritical,
            Severity::Critical,
            inputs.score,
            CRITICAL_SCORE_BELOW,
            format!(
                "health score {:.1} is below {CRITICAL_SCORE_BELOW}",
                inputs.score
            ),
        );
    } else if inputs.score < WARNING_SCORE_BELOW {
        hold(
            AlertRule::HealthScoreLow,
            Severity::Warning,
            inputs.score,
            WARNING_SCORE_BELOW,
            format!(
                "health score {:.1} is below {WARNING_SCORE_BELOW}",
                inputs.score
            ),
        );
    }
    if inputs.operations >= ERROR_RATE_OPERATIONS_MIN && inputs.error_rate > ERROR_RATE_MAX {
        hold(
            AlertRule::ErrorRateHigh,
            Severity::Critical,
            inputs.error_rate,
            ERROR_RATE_MAX,
            format!(
                "error rate {:.1} % is above {:.0} %",
                inputs.error_rate * 100.0,
                ERROR_RATE_MAX * 100.0
            ),
        );
    }
    if inputs.average_delivery_seconds > LATENCY_SECONDS_MAX {
        hold(
            AlertRule::DeliveryLatencyHigh,
            Severity::Warning,
            inputs.average_delivery_seconds,
            LATENCY_SECONDS_MAX,
            format!(
                "mean delivery latency {:.1} s is above {LATENCY_SECONDS_MAX} s",
                inputs.average_delivery_seconds
            ),
        );
    }
    if inputs.agents_total > 0 && inputs.availability < AVAILABILITY_MIN {
        hold(
            AlertRule::AgentAvailabilityLow,
            Severity::Warning,
            inputs.availability,
            AVAILABILITY_MIN,
            format!(
                "agent availability {:.0} % is below {:.0} %",
                inputs.availability * 100.0,
                AVAILABILITY_MIN * 100.0
            ),
        );
    }
    if inputs.dead_letters >= DEAD_LETTERS_WARNING_MIN {
        hold(
            AlertRule::DeadLetters,
            Severity::Warning,
            inputs.dead_letters as f64,
            DEAD_LETTERS_WARNING_MIN as f64,
            super::score::dead_letters_waiting(inputs.dead_letters),
        );
    }
    conditions
}

/// What recovered, for an alert of `rule` that stopped holding: the value now and a sentence.
fn resolution(rule: AlertRule, inputs: &AlertInputs) -> (f64, String) {
    match rule {
        AlertRule::HealthScoreCritical => (
            inputs.score,
            format!(
                "resolved: health score back to {:.1} (was below {CRITICAL_SCORE_BELOW})",
                inputs.score
            ),
        ),
        AlertRule::HealthScoreLow if inputs.score < CRITICAL_SCORE_BELOW => (
            inputs.score,
            format!(
                "superseded: health score {:.1} fell below {CRITICAL_SCORE_BELOW} (was below \
                 {WARNING_SCORE_BELOW}); the critical alert continues it",
                inputs.score
            ),
        ),
        AlertRule::HealthScoreLow => (
            inputs.score,
            format!(
                "resolved: health score back to {:.1} (was below {WARNING_SCORE_BELOW})",
                inputs.score
            ),
        ),
        AlertRule::ErrorRateHigh if inputs.operations < ERROR_RATE_OPERATIONS_MIN => (
            inputs.error_rate,
            format!(
                "resolved: only {} operations in the window, too few to judge the error rate \
                 (was above {:.0} %)",
                inputs.operations,
                ERROR_RATE_MAX * 100.0
            ),
        ),
        AlertRule::ErrorRateHigh => (
            inputs.error_rate,
            format!(
                "resolved: error rate back to {:.1} % (was above {:.0} %)",
                inputs.error_rate * 100.0,
                ERROR_RATE_MAX * 100.0
            ),
        ),
        AlertRule::DeliveryLatencyHigh => (
            inputs.average_delivery_seconds,
            format!(
                "resolved: mean delivery latency back to {:.1} s (was above \
                 {LATENCY_SECONDS_MAX} s)",
                inputs.average_delivery_seconds
            ),
        ),
        AlertRule::AgentAvailabilityLow if inputs.agents_total == 0 => (
            inputs.availability,
            format!(
                "resolved: no agents registered, none unavailable (availability was below \
                 {:.0} %)",
                AVAILABILITY_MIN * 100.0
            ),
        ),
        AlertRule::AgentAvailabilityLow => (
            inputs.availability,
            format!(
                "resolved: agent availability back to {:.0} % (was below {:.0} %)",
                inputs.availability * 100.0,
                AVAILABILITY_MIN * 100.0
            ),
        ),
        AlertRule::DeadLetters => (
            inputs.dead_letters as f64,
            format!(
                "resolved: dead letters down to {} (was at least {DEAD_LETTERS_WARNING_MIN})",
                inputs.dead_letters
            ),
        ),
    }
}

fn iso<S: Serializer>(ms: &UnixMillis, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&iso8601(*ms))
}

fn iso_option<S: Serializer>(ms: &Option<UnixMillis>, serializer: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => serializer.serialize_str(&iso8601(*ms)),
        None => serializer.serialize_none(),
    }
}

/// An alert: a condition that held from `started_at` until `resolved_at` (or still holds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Unique within this server's run.
    pub id: u64,
    /// The rule.
    pub rule: AlertRule,
    /// Its severity.
    pub severity: Severity,
    /// The latest measured value while active; the value that ended it when resolved.
    pub value: f64,
    /// The threshold.
    pub threshold: f64,
    /// The latest sentence while active; once resolved, what recovered.
    pub message: String,
    /// When the condition first held.
    #[serde(serialize_with = "iso")]
    pub started_at: UnixMillis,
    /// When it stopped holding; `null` while active.
    #[serde(serialize_with = "iso_option")]
    pub resolved_at: Option<UnixMillis>,
}

/// A change reported by [`AlertBook::update`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", content = "alert", rename_all = "lowercase")]
pub enum AlertChange {
    /// A new alert.
    Started(Alert),
    /// An alert whose condition stopped holding.
    Resolved(Alert),
}

/// Active alerts and recently resolved ones.
#[derive(Debug, Default)]
pub struct AlertBook {
    active: BTreeMap<AlertRule, Alert>,
    /// Oldest first; bounded by [`RESOLVED_ALERTS_MAX`] and [`RESOLVED_ALERTS_KEPT_MS`].
    resolved: VecDeque<Alert>,
    last_id: u64,
}

impl AlertBook {
    /// Evaluates `inputs`: starts alerts for new conditions, refreshes active ones, resolves
    /// the rest (saying what recovered).
    pub fn update(&mut self, inputs: &AlertInputs, now: UnixMillis) -> Vec<AlertChange> {
        let conditions = evaluate(inputs);
        let mut changes = Vec::new();
        let holding: Vec<AlertRule> = conditions.iter().map(|c| c.rule).collect();
        for condition in conditions {
            match self.active.get_mut(&condition.rule) {
                Some(alert) => {
                    alert.value = condition.value;
                    alert.message = condition.message;
                }
                None => {
                    self.last_id += 1;
                    let alert = Alert {
                        id: self.last_id,
                        rule: condition.rule,
                        severity: condition.severity,
                        value: condition.value,
                        threshold: condition.threshold,
                        message: condition.message,
                        started_at: now,
                        resolved_at: None,
                    };
                    changes.push(AlertChange::Started(alert.clone()));
                    self.active.insert(condition.rule, alert);
                }
            }
        }
        let ended: Vec<AlertRule> = self
            .active
            .keys()
            .filter(|rule| !holding.contains(rule))
            .copied()
            .collect();
        for rule in ended {
            let mut alert = self.active.remove(&rule).expect("listed from the map");
            (alert.value, alert.message) = resolution(rule, inputs);
            alert.resolved_at = Some(now);
            changes.push(AlertChange::Resolved(alert.clone()));
            self.resolved.push_back(alert);
        }
        while self.resolved.len() > RESOLVED_ALERTS_MAX
            || self.resolved.front().is_some_and(|alert| {
                alert.resolved_at.unwrap_or(now) + RESOLVED_ALERTS_KEPT_MS < now
            })
        {
            self.resolved.pop_front();
        }
        changes
    }

    /// Alerts active now, critical first.
    pub fn active(&self) -> Vec<Alert> {
        let mut active: Vec<Alert> = self.active.values().cloned().collect();
        active.sort_by_key(|alert| (alert.severity != Severity::Critical, alert.started_at));
        active
    }

    /// Up to `limit` resolved alerts, newest first.
    pub fn recent(&self, limit: usize) -> Vec<Alert> {
        self.resolved.iter().rev().take(limit).cloned().collect()
    }

    /// Every alert active at some time since `since`: active ones, and resolved ones that
    /// resolved at or after it; oldest start first.
    pub fn since(&self, since: UnixMillis) -> Vec<Alert> {
        let mut alerts: Vec<Alert> = self
            .resolved
            .iter()
            .filter(|alert| alert.resolved_at.is_some_and(|at| at >= since))
            .chain(self.active.values())
            .cloned()
            .collect();
        alerts.sort_by_key(|alert| (alert.started_at, alert.id));
        alerts
    }
}

#[cfg(test)]
#[path = "alerts_tests.rs"]
mod tests;
