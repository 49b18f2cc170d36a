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
    }
}

fn rules(change: impl FnOnce(&mut AlertInputs)) -> Vec<(AlertRule, Severity)> {
    let mut inputs = calm();
    change(&mut inputs);
    evaluate(&inputs)
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

fn condition(rule: AlertRule, value: f64) -> Condition {
    Condition {
        rule,
        severity: Severity::Warning,
        value,
        threshold: 5.0,
        message: format!("value {value}"),
    }
}

#[test]
fn an_alert_starts_once_keeps_its_start_and_resolves_when_the_condition_ends() {
    let mut book = AlertBook::default();
    let started = book.update(vec![condition(AlertRule::DeliveryLatencyHigh, 6.0)], 1_000);
    assert!(matches!(&started[..], [AlertChange::Started(a)] if a.started_at == 1_000));
    let again = book.update(vec![condition(AlertRule::DeliveryLatencyHigh, 7.0)], 2_000);
    assert!(again.is_empty(), "still the same alert: {again:?}");
    let active = book.active();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].started_at, 1_000);
    assert_eq!(active[0].value, 7.0);
    let resolved = book.update(vec![], 3_000);
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

#[test]
fn since_lists_alerts_that_overlap_the_window() {
    let mut book = AlertBook::default();
    book.update(vec![condition(AlertRule::DeliveryLatencyHigh, 6.0)], 1_000);
    book.update(vec![], 2_000);
    book.update(vec![condition(AlertRule::AgentAvailabilityLow, 0.5)], 5_000);
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
        book.update(
            vec![condition(AlertRule::DeliveryLatencyHigh, 6.0)],
            step * 2,
        );
        book.update(vec![], step * 2 + 1);
    }
    assert_eq!(book.recent(usize::MAX).len(), RESOLVED_ALERTS_MAX);
}

#[test]
fn alerts_serialize_with_iso_times() {
    let mut book = AlertBook::default();
    book.update(vec![condition(AlertRule::DeliveryLatencyHigh, 6.0)], 0);
    let json = serde_json::to_value(book.active()).unwrap();
    assert_eq!(json[0]["started_at"], "1970-01-01T00:00:00.000Z");
    assert_eq!(json[0]["resolved_at"], serde_json::Value::Null);
    assert_eq!(json[0]["rule"], "delivery_latency_high");
}
