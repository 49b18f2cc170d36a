//! The health score, 0 to 100, with the original's four components of 25 points and its
//! thresholds (`ORIGINAL_SYSTEM.md`). A pure function of [`HealthInputs`], so its rules are
//! tested at their edges without a server. Each component is clamped to 0..=25, so the score
//! is never negative.
//!
//! Additions to the original's rules:
//! - when storage refuses writes, no message can be routed, so the broker component is 0 and
//!   the issue says why;
//! - dead letters cost the queue component [`DEAD_LETTER_POINTS`] each, at most
//!   [`DEAD_LETTERS_POINTS_MAX`]: each is a message no agent processed, and it waits for a
//!   person to redrive or purge it (20 dead letters: 85, degraded);
//! - with no agent registered nothing is unavailable: availability is 1, not 0, and an idle
//!   fresh server scores 95 (the original's 5 points for fewer than 3 agents), not 75;
//! - agents restored at a restart and not heard from yet are "returning" for a grace period
//!   (see `collector::RETURNING_GRACE_MS`): their availability is not judged until then;
//! - one condition gives one issue, at its most severe: a mean delivery time above 10 s costs
//!   both the queue and responsiveness components but is listed once.

use serde::Serialize;

/// Points of each of the four components.
pub const COMPONENT_POINTS: f64 = 25.0;
/// Queue: more messages than this (all states) cost 10 points.
pub const QUEUE_SIZE_MAX: u64 = 5000;
/// Queue: a mean send→ack time above this, in seconds, costs 10 points.
pub const QUEUE_DELIVERY_SECONDS_MAX: f64 = 10.0;
/// Queue: more pending messages (ready, delayed or leased) than this cost 5 points.
pub const PENDING_MAX: u64 = 1000;
/// Agents: fewer registered agents than this cost 5 points.
pub const AGENTS_MIN: usize = 3;
/// Responsiveness: a mean send→ack time above this, in seconds, costs 10 points.
pub const RESPONSIVE_DELIVERY_SECONDS_MAX: f64 = 5.0;
/// Responsiveness: a mean routing (send handling) time above this, in seconds, costs 10 points.
pub const ROUTING_SECONDS_MAX: f64 = 1.0;
/// Queue: each dead letter (in any queue but the server's own) costs this many points.
pub const DEAD_LETTER_POINTS: f64 = 1.0;
/// Queue: dead letters cost at most this many points together.
pub const DEAD_LETTERS_POINTS_MAX: f64 = 15.0;
/// Scores at or above this are healthy.
pub const HEALTHY_SCORE_MIN: f64 = 90.0;
/// Scores at or above this (and below healthy) are degraded; below, unhealthy.
pub const DEGRADED_SCORE_MIN: f64 = 70.0;

/// What the score is computed from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthInputs {
    /// Messages in the queues, in every state (dead letters included).
    pub queue_size: u64,
    /// Messages ready, delayed or leased.
    pub pending: u64,
    /// Dead letters waiting for a redrive or purge.
    pub dead_letters: u64,
    /// Mean send→ack time over the recent window, in seconds (0 with no acks).
    pub average_delivery_seconds: f64,
    /// Registered agents.
    pub agents_total: usize,
    /// Agents online, busy or idle, or with a socket open.
    pub agents_available: usize,
    /// Agents restored at the server's start and not heard from since, within the grace
    /// after it: neither available nor unavailable yet.
    pub agents_returning: usize,
    /// Sends placed / sends attempted over the recent window (1 with no sends).
    pub routing_success_rate: f64,
    /// Mean time to handle a send over the recent window, in seconds.
    pub average_routing_seconds: f64,
    /// Why storage refuses writes, when it does.
    pub storage_problem: Option<String>,
}

impl HealthInputs {
    /// Agents whose availability is judged: all but the returning ones.
    pub fn agents_judged(&self) -> usize {
        self.agents_total.saturating_sub(self.agents_returning)
    }

    /// Available agents / judged agents; 1 with none judged (none is unavailable).
    pub fn availability(&self) -> f64 {
        let judged = self.agents_judged();
        if judged == 0 {
            1.0
        } else {
            (self.agents_available as f64 / judged as f64).min(1.0)
        }
    }
}

/// Healthy, degraded or unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Score ≥ 90.
    Healthy,
    /// 70 ≤ score < 90.
    Degraded,
    /// Score < 70.
    Unhealthy,
}

impl HealthStatus {
    /// The status of a score.
    pub fn of(score: f64) -> Self {
        if score >= HEALTHY_SCORE_MIN {
            HealthStatus::Healthy
        } else if score >= DEGRADED_SCORE_MIN {
            HealthStatus::Degraded
        } else {
            HealthStatus::Unhealthy
        }
    }
}

/// One component's points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Component {
    /// Points, 0 to `max`.
    pub score: f64,
    /// Points it can have.
    pub max: f64,
}

/// The four components.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Components {
    /// Queue size, pending messages and delivery time.
    pub queue: Component,
    /// Agent availability and count.
    pub agents: Component,
    /// Routing success.
    pub broker: Component,
    /// Delivery and routing times.
    pub responsiveness: Component,
}

/// The body of `GET /api/v1/health/detailed`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// 0 to 100, one decimal.
    pub score: f64,
    /// What the score means.
    pub status: HealthStatus,
    /// Where the points came from.
    pub components: Components,
    /// Each rule that cost points, in words.
    pub issues: Vec<String>,
}

fn component(points: f64) -> Component {
    Component {
        score: round1(points.clamp(0.0, COMPONENT_POINTS)),
        max: COMPONENT_POINTS,
    }
}

/// "N dead letters waiting for a redrive or purge", for issues and alerts.
pub fn dead_letters_waiting(count: u64) -> String {
    let noun = if count == 1 {
        "dead letter"
    } else {
        "dead letters"
    };
    format!("{count} {noun} waiting for a redrive or purge")
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Scores `inputs`.
pub fn score(inputs: &HealthInputs) -> HealthReport {
    let mut issues = Vec::new();

    let mut queue = COMPONENT_POINTS;
    if inputs.queue_size > QUEUE_SIZE_MAX {
        queue -= 10.0;
        issues.push(format!(
            "queue size {} is above {QUEUE_SIZE_MAX}",
            inputs.queue_size
        ));
    }
    if inputs.average_delivery_seconds > QUEUE_DELIVERY_SECONDS_MAX {
        queue -= 10.0;
    }
    if inputs.pending > PENDING_MAX {
        queue -= 5.0;
        issues.push(format!(
            "{} pending messages, above {PENDING_MAX}",
            inputs.pending
        ));
    }
    if inputs.dead_letters > 0 {
        let points = (inputs.dead_letters as f64 * DEAD_LETTER_POINTS).min(DEAD_LETTERS_POINTS_MAX);
        queue -= points;
        issues.push(dead_letters_waiting(inputs.dead_letters));
    }

    let availability = inputs.availability();
    let mut agents = COMPONENT_POINTS * availability;
    if availability < 1.0 {
        issues.push(format!(
            "{} of {} agents available ({:.0} %)",
            inputs.agents_available,
            inputs.agents_judged(),
            availability * 100.0
        ));
    }
    if inputs.agents_total < AGENTS_MIN {
        agents -= 5.0;
        issues.push(format!(
            "{} agents registered, fewer than {AGENTS_MIN}",
            inputs.agents_total
        ));
    }

    let success = inputs.routing_success_rate.clamp(0.0, 1.0);
    let broker = if let Some(problem) = &inputs.storage_problem {
        issues.push(format!("storage refuses writes: {problem}"));
        0.0
    } else {
        if success < 1.0 {
            issues.push(format!("routing success rate {:.1} %", success * 100.0));
        }
        COMPONENT_POINTS * success
    };

    let mut responsiveness = COMPONENT_POINTS;
    if inputs.average_delivery_seconds > RESPONSIVE_DELIVERY_SECONDS_MAX {
        responsiveness -= 10.0;
        // Listed once, with the higher threshold it crossed.
        let crossed = if inputs.average_delivery_seconds > QUEUE_DELIVERY_SECONDS_MAX {
            QUEUE_DELIVERY_SECONDS_MAX
        } else {
            RESPONSIVE_DELIVERY_SECONDS_MAX
        };
        issues.push(format!(
            "average delivery time {:.1} s is above {crossed} s",
            inputs.average_delivery_seconds
        ));
    }
    if inputs.average_routing_seconds > ROUTING_SECONDS_MAX {
        responsiveness -= 10.0;
        issues.push(format!(
            "average routing time {:.2} s is above {ROUTING_SECONDS_MAX} s",
            inputs.average_routing_seconds
        ));
    }

    let components = Components {
        queue: component(queue),
        agents: component(agents),
        broker: component(broker),
        responsiveness: component(responsiveness),
    };
    let total = components.queue.score
        + components.agents.score
        + components.broker.score
        + components.responsiveness.score;
    let score = round1(total.clamp(0.0, 4.0 * COMPONENT_POINTS));
    HealthReport {
        score,
        status: HealthStatus::of(score),
        components,
        issues,
    }
}

#[cfg(test)]
#[path = "score_tests.rs"]
mod tests;
