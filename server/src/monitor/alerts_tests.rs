//! The alert rules at their edges, and the start/resolve bookkeeping.

use super::*;

/// Numbers that raise no alert.
fn calm() -> AlertInputs {
    AlertInputs {
        score: 100.0,
        error_rate: 0.0,
        operations: 1000,
        average_delivery_seconds: 0.0,
        availability: 1.0,
        agents_total: 3,
        dead_letters: 0,
    }
}

fn calm_but(change: impl FnOnce(&mut AlertInputs)) -> AlertInputs {
    let mut inputs = calm();
    change(&mut inputs);
    inputs
}

fn rules(change: impl FnOnce(&mut AlertInputs)) -> Vec<(AlertRule, Severity)> {
    evaluate(&calm_but(change))
        .into_iter()
        .map(|c| (c.rule, c.severity))
        .collect()
}

#[test]
fn calm_numbers_raise_nothing() {
    assert!(evaluate(&calm()).is_empty());
}

#[test]
fn score_below_50_is_critical_and_50_is_only_a_warning() {
    assert_eq!(
        rules(|i| i.score = 49.9),
        [(AlertRule::HealthScoreCritical, Severity::Critical)]
    );
    assert_eq!(
        rules(|i| i.score = 50.0),
        [(AlertRule::HealthScoreLow, Severity::Warning)]
    );
}

#[test]
fn score_below_75_is_a_warning_and_75_is_fine() {
    assert_eq!(
        rules(|i| i.score = 74.9),
        [(AlertRule::HealthScoreLow, Severity::Warning)]
    );
    assert!(rules(|i| i.score = 75.0).is_empty());
}

#[test]
fn error_rate_above_10_percent_is_critical_and_10_percent_is_fine() {
    assert!(rules(|i| i.error_rate = 0.10).is_empty());
    assert_eq!(
        rules(|i| i.error_rate = 0.1001),
        [(AlertRule::ErrorRateHigh, Severity::Critical)]
    );
}

#[test]
fn error_rate_is_not_judged_on_too_few_operations() {
    let few = rules(|i| {
        i.error_rate = 1.0;
        i.operations = ERROR_RATE_OPERATIONS_MIN - 1;
    });
    assert!(few.is_empty());
    let enough = rules(|i| {
        i.error_rate = 1.0;
        i.operations = ERROR_RATE_OPERATIONS_MIN;
    });
    assert_eq!(enough, [(AlertRule::ErrorRateHigh, Severity::Critical)]);
}

#[test]
fn latency_above_5_seconds_is_a_warning_and_5_is_fine() {
    assert!(rules(|i| i.average_delivery_seconds = 5.0).is_empty());
    assert_eq!(
        rules(|i| i.average_delivery_seconds = 5.01),
        [(AlertRule::DeliveryLatencyHigh, Severity::Warning)]
    );
}

#[test]
fn availability_below_80_percent_is_a_warning_and_80_is_fine() {
    assert!(rules(|i| i.availability = 0.80).is_empty());
    assert_eq!(
        rules(|i| i.availability = 0.79),
        [(AlertRule::AgentAvailabilityLow, Severity::Warning)]
    );
}

#[test]
fn availability_is_not_judged_without_agents() {
    assert!(rules(|i| {
        i.availability = 0.0;
        i.agents_total = 0;
    })
    .is_empty());
}

#[test]
fn a_dead_letter_is_a_warning() {
    assert!(rules(|i| i.dead_letters = 0).is_empty());
    assert_eq!(
        rules(|i| i.dead_letters = DEAD_LETTERS_WARNING_MIN),
        [(AlertRule::DeadLetters, Severity::Warning)]
    );
}

#[test]
fn an_idle_server_with_no_agents_raises_nothing() {
    // What the collector reports for a fresh server: no agents, no traffic.
    let idle = crate::monitor::score::HealthInputs {
        routing_success_rate: 1.0,
        ..Default::default()
    };
    let inputs = AlertInputs {
        score: crate::monitor::score::score(&idle).score,
        error_rate: 0.0,
        operations: 0,
        average_delivery_seconds: 0.0,
        availability: idle.availability(),
        agents_total: 0,
        dead_letters: 0,
    };
    assert!(evaluate(&inputs).is_empty(), "{:?}", evaluate(&inputs));
    assert_eq!(inputs.availability, 1.0, "none of no agents is unavailable");
}

/// Latency 6 s: one warning.
fn slow() -> AlertInputs {
    calm_but(|i| i.average_delivery_seconds = 6.0)
}

#[test]
fn an_alert_starts_once_keeps_its_start_and_resolves_when_the_condition_ends() {
    let mut book = AlertBook::default();
    let started = book.update(&slow(), 1_000);
    assert!(matches!(&started[..], [AlertChange::Started(a)] if a.started_at == 1_000));
    let again = book.update(&calm_but(|i| i.average_delivery_seconds = 7.0), 2_000);
    assert!(again.is_empty(), "still the same alert: {again:?}");
    let active = book.active();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].started_at, 1_000);
    assert_eq!(active[0].value, 7.0);
    let resolved = book.update(&calm(), 3_000);
    match &resolved[..] {
        [AlertChange::Resolved(alert)] => {
            assert_eq!(alert.started_at, 1_000);
            assert_eq!(alert.resolved_at, Some(3_000));
        }
        other => panic!("expected one resolution, got {other:?}"),
    }
    assert!(book.active().is_empty());
    assert_eq!(book.recent(10).len(), 1);
}

fn resolved_message(changes: &[AlertChange], rule: AlertRule) -> (f64, String) {
    changes
        .iter()
        .find_map(|change| match change {
            AlertChange::Resolved(alert) if alert.rule == rule => {
                Some((alert.value, alert.message.clone()))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no resolution of {rule:?} in {changes:?}"))
}

#[test]
fn a_resolved_alert_says_what_recovered() {
    let mut book = AlertBook::default();
    book.update(&calm_but(|i| i.score = 70.0), 1_000);
    let changes = book.update(&calm_but(|i| i.score = 92.0), 2_000);
    let (value, message) = resolved_message(&changes, AlertRule::HealthScoreLow);
    assert_eq!(
        message,
        "resolved: health score back to 92.0 (was below 75)"
    );
    assert_eq!(value, 92.0);
    assert_eq!(
        book.recent(1)[0].message,
        message,
        "the resolved list says it too"
    );
}

#[test]
fn a_warning_that_turns_critical_says_it_was_superseded() {
    let mut book = AlertBook::default();
    book.update(&calm_but(|i| i.score = 70.0), 1_000);
    let changes = book.update(&calm_but(|i| i.score = 40.0), 2_000);
    let (_, message) = resolved_message(&changes, AlertRule::HealthScoreLow);
    assert!(
        message.starts_with("superseded: health score 40.0 fell below 50"),
        "{message}"
    );
    assert!(changes
        .iter()
        .any(|c| matches!(c, AlertChange::Started(a) if a.rule == AlertRule::HealthScoreCritical)));
}

#[test]
fn each_rule_resolves_with_its_recovered_value() {
    let cases: [(AlertInputs, AlertRule, &str); 4] = [
        (
            calm_but(|i| i.error_rate = 0.5),
            AlertRule::ErrorRateHigh,
            "resolved: error rate back to 0.0 % (was above 10 %)",
        ),
        (
            slow(),
            AlertRule::DeliveryLatencyHigh,
            "resolved: mean delivery latency back to 0.0 s (was above 5 s)",
        ),
        (
            calm_but(|i| i.availability = 0.5),
            AlertRule::AgentAvailabilityLow,
            "resolved: agent availability back to 100 % (was below 80 %)",
        ),
        (
            calm_but(|i| i.dead_letters = 20),
            AlertRule::DeadLetters,
            "resolved: dead letters down to 0 (was at least 1)",
        ),
    ];
    for (firing, rule, expected) in cases {
        let mut book = AlertBook::default();
        book.update(&firing, 1_000);
        let changes = book.update(&calm(), 2_000);
        assert_eq!(resolved_message(&changes, rule).1, expected);
    }
}

#[test]
fn since_lists_alerts_that_overlap_the_window() {
    let mut book = AlertBook::default();
    book.update(&slow(), 1_000);
    book.update(&calm(), 2_000);
    book.update(&calm_but(|i| i.availability = 0.5), 5_000);
    assert_eq!(book.since(0).len(), 2);
    assert_eq!(book.since(2_000).len(), 2);
    let late = book.since(2_001);
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].rule, AlertRule::AgentAvailabilityLow);
}

#[test]
fn resolved_alerts_are_bounded() {
    let mut book = AlertBook::default();
    for step in 0..(RESOLVED_ALERTS_MAX as u64 + 10) {
        book.update(&slow(), step * 2);
        book.update(&calm(), step * 2 + 1);
    }
    assert_eq!(book.recent(usize::MAX).len(), RESOLVED_ALERTS_MAX);
}

#[test]
fn alerts_serialize_with_iso_times() {
    let mut book = AlertBook::default();
    book.update(&slow(), 0);
    let json = serde_json::to_value(book.active()).unwrap();
    assert_eq!(json[0]["started_at"], "1970-01-01T00:00:00.000Z");
    assert_eq!(json[0]["resolved_at"], serde_json::Value::Null);
    assert_eq!(json[0]["rule"], "delivery_latency_high");
}
