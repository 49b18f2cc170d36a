//! The score's rules at their edges: each threshold is checked at its value (no penalty, the
//! rules say "above" / "fewer than") and just past it (penalty).

use super::*;

/// A server with nothing wrong: full marks.
fn perfect() -> HealthInputs {
    HealthInputs {
        queue_size: 0,
        pending: 0,
        dead_letters: 0,
        average_delivery_seconds: 0.0,
        agents_total: 3,
        agents_available: 3,
        agents_returning: 0,
        routing_success_rate: 1.0,
        average_routing_seconds: 0.0,
        storage_problem: None,
    }
}

fn with(change: impl FnOnce(&mut HealthInputs)) -> HealthReport {
    let mut inputs = perfect();
    change(&mut inputs);
    score(&inputs)
}

#[test]
fn a_server_with_nothing_wrong_scores_100_and_is_healthy() {
    let report = score(&perfect());
    assert_eq!(report.score, 100.0);
    assert_eq!(report.status, HealthStatus::Healthy);
    assert!(report.issues.is_empty(), "{:?}", report.issues);
}

#[test]
fn queue_size_costs_10_points_only_above_5000() {
    assert_eq!(with(|i| i.queue_size = 5000).components.queue.score, 25.0);
    let report = with(|i| i.queue_size = 5001);
    assert_eq!(report.components.queue.score, 15.0);
    assert_eq!(report.score, 90.0);
    assert!(report.issues[0].contains("5001"), "{:?}", report.issues);
}

#[test]
fn pending_costs_5_points_only_above_1000() {
    assert_eq!(with(|i| i.pending = 1000).components.queue.score, 25.0);
    assert_eq!(with(|i| i.pending = 1001).components.queue.score, 20.0);
}

#[test]
fn delivery_time_above_5_seconds_costs_responsiveness_10_points() {
    let at = with(|i| i.average_delivery_seconds = 5.0);
    assert_eq!(at.components.responsiveness.score, 25.0);
    assert_eq!(at.components.queue.score, 25.0);
    let above = with(|i| i.average_delivery_seconds = 5.01);
    assert_eq!(above.components.responsiveness.score, 15.0);
    assert_eq!(above.components.queue.score, 25.0);
}

#[test]
fn delivery_time_above_10_seconds_also_costs_the_queue_10_points() {
    let at = with(|i| i.average_delivery_seconds = 10.0);
    assert_eq!(at.components.queue.score, 25.0);
    let above = with(|i| i.average_delivery_seconds = 10.01);
    assert_eq!(above.components.queue.score, 15.0);
    assert_eq!(above.components.responsiveness.score, 15.0);
    assert_eq!(above.score, 80.0);
    assert_eq!(above.status, HealthStatus::Degraded);
}

#[test]
fn routing_time_above_1_second_costs_10_points() {
    let at = with(|i| i.average_routing_seconds = 1.0);
    assert_eq!(at.components.responsiveness.score, 25.0);
    let above = with(|i| i.average_routing_seconds = 1.001);
    assert_eq!(above.components.responsiveness.score, 15.0);
}

#[test]
fn agents_score_25_times_availability() {
    let report = with(|i| {
        i.agents_total = 4;
        i.agents_available = 3;
    });
    assert_eq!(report.components.agents.score, 18.8); // 18.75, one decimal
    assert!(report.issues.iter().any(|issue| issue.contains("3 of 4")));
}

#[test]
fn fewer_than_3_agents_cost_5_points() {
    let three = with(|i| {
        i.agents_total = 3;
        i.agents_available = 3;
    });
    assert_eq!(three.components.agents.score, 25.0);
    let two = with(|i| {
        i.agents_total = 2;
        i.agents_available = 2;
    });
    assert_eq!(two.components.agents.score, 20.0);
}

#[test]
fn no_agents_registered_is_nothing_unavailable() {
    let report = with(|i| {
        i.agents_total = 0;
        i.agents_available = 0;
    });
    // Only the original's 5 points for fewer than 3 agents: an idle fresh server is healthy.
    assert_eq!(report.components.agents.score, 20.0);
    assert_eq!(report.score, 95.0);
    assert_eq!(report.status, HealthStatus::Healthy);
    assert_eq!(report.issues, ["0 agents registered, fewer than 3"]);
}

#[test]
fn agents_returning_after_a_restart_are_not_unavailable() {
    let restarted = with(|i| {
        i.agents_total = 3;
        i.agents_available = 0;
        i.agents_returning = 3;
    });
    assert_eq!(restarted.components.agents.score, 25.0);
    let one_back = with(|i| {
        i.agents_total = 4;
        i.agents_available = 1;
        i.agents_returning = 2;
    });
    assert_eq!(one_back.components.agents.score, 12.5, "1 of the 2 judged");
    assert!(one_back.issues.iter().any(|issue| issue.contains("1 of 2")));
}

#[test]
fn a_slow_delivery_is_listed_once_at_its_most_severe() {
    let report = with(|i| i.average_delivery_seconds = 12.0);
    assert_eq!(report.score, 80.0, "both components still pay");
    assert_eq!(
        report.issues,
        ["average delivery time 12.0 s is above 10 s"]
    );
    let report = with(|i| i.average_delivery_seconds = 7.0);
    assert_eq!(report.issues, ["average delivery time 7.0 s is above 5 s"]);
}

#[test]
fn each_dead_letter_costs_the_queue_a_point() {
    let report = with(|i| i.dead_letters = 3);
    assert_eq!(report.components.queue.score, 22.0);
    assert_eq!(
        report.issues,
        ["3 dead letters waiting for a redrive or purge"]
    );
}

#[test]
fn twenty_dead_letters_make_a_perfect_server_degraded() {
    let report = with(|i| i.dead_letters = 20);
    assert_eq!(
        report.components.queue.score,
        25.0 - DEAD_LETTERS_POINTS_MAX
    );
    assert_eq!(report.score, 85.0);
    assert_eq!(report.status, HealthStatus::Degraded);
}

#[test]
fn broker_scores_25_times_routing_success() {
    assert_eq!(
        with(|i| i.routing_success_rate = 0.5)
            .components
            .broker
            .score,
        12.5
    );
    assert_eq!(
        with(|i| i.routing_success_rate = 7.0)
            .components
            .broker
            .score,
        25.0,
        "a rate above 1 is clamped"
    );
}

#[test]
fn storage_refusing_writes_zeroes_the_broker() {
    let report = with(|i| i.storage_problem = Some("disk full".into()));
    assert_eq!(report.components.broker.score, 0.0);
    assert!(report.issues.iter().any(|i| i.contains("disk full")));
}

#[test]
fn everything_wrong_scores_near_zero_never_below() {
    let report = score(&HealthInputs {
        queue_size: u64::MAX,
        pending: u64::MAX,
        dead_letters: u64::MAX,
        average_delivery_seconds: 1e9,
        agents_total: 1,
        agents_available: 0,
        agents_returning: 0,
        routing_success_rate: -3.0,
        average_routing_seconds: 1e9,
        storage_problem: None,
    });
    // Responsiveness loses at most 10 + 10 of its 25 points; everything else is 0.
    assert_eq!(report.components.responsiveness.score, 5.0);
    assert_eq!(report.score, 5.0);
    for component in [
        report.components.queue,
        report.components.agents,
        report.components.broker,
        report.components.responsiveness,
    ] {
        assert!(component.score >= 0.0, "{component:?}");
    }
    assert_eq!(report.status, HealthStatus::Unhealthy);
}

#[test]
fn status_edges_are_90_and_70() {
    assert_eq!(HealthStatus::of(100.0), HealthStatus::Healthy);
    assert_eq!(HealthStatus::of(90.0), HealthStatus::Healthy);
    assert_eq!(HealthStatus::of(89.9), HealthStatus::Degraded);
    assert_eq!(HealthStatus::of(70.0), HealthStatus::Degraded);
    assert_eq!(HealthStatus::of(69.9), HealthStatus::Unhealthy);
    assert_eq!(HealthStatus::of(0.0), HealthStatus::Unhealthy);
}

#[test]
fn status_follows_the_reported_score() {
    // 25 + 25·(2/3) + 25 + 25 = 91.7: healthy; 25 + (25·(1/2) − 5) + 25 + 25 = 82.5: degraded.
    let report = with(|i| {
        i.agents_total = 3;
        i.agents_available = 2;
    });
    assert_eq!(report.score, 91.7);
    assert_eq!(report.status, HealthStatus::Healthy);
    let report = with(|i| {
        i.agents_total = 2;
        i.agents_available = 1;
    });
    assert_eq!(report.score, 82.5);
    assert_eq!(report.status, HealthStatus::Degraded);
}
