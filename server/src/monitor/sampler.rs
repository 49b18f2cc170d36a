//! The once-a-second task: takes a snapshot, keeps its counters for rates, updates the alerts
//! (logging and pushing each start and resolution), keeps a history point every 10 seconds,
//! and hands the snapshot to the dashboards. It stops when the server shuts down.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::alerts::AlertChange;
use super::collector::{collect_with_sample, Snapshot, SNAPSHOT_RESOLVED_ALERTS_MAX};
use super::history::HistoryPoint;
use crate::state::AppState;

/// Time between two samples.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Starts the sampler; it ends when `shutdown` turns true.
pub fn spawn(state: AppState, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(SAMPLE_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    tick(&state);
                }
                () = stopping(&mut shutdown) => return,
            }
        }
    })
}

/// One sample: snapshot, alerts, history, publication. Returns the published snapshot.
pub fn tick(state: &AppState) -> Snapshot {
    let monitor = &state.monitor;
    let (mut snapshot, sample) = collect_with_sample(state);
    monitor.recent.lock().push(sample);
    let changes = {
        let mut book = monitor.alerts.lock();
        let changes = book.update(&snapshot.alert_inputs(), snapshot.timestamp_ms);
        snapshot.alerts.active = book.active();
        snapshot.alerts.recent = book.recent(SNAPSHOT_RESOLVED_ALERTS_MAX);
        changes
    };
    for change in changes {
        log(&change);
        // No dashboard open is not an error.
        let _ = monitor.alert_changes.send(change);
    }
    {
        let mut history = monitor.history.lock();
        if history.due(snapshot.timestamp_ms) {
            history.push(HistoryPoint::of(&snapshot));
        }
    }
    match serde_json::to_string(&snapshot) {
        Ok(json) => {
            monitor.latest.send_replace(Arc::from(json));
        }
        Err(error) => tracing::error!(%error, "cannot serialize the monitoring snapshot"),
    }
    snapshot
}

/// Resolves when the server starts shutting down (never, if nobody can tell it to).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn log(change: &AlertChange) {
    match change {
        AlertChange::Started(alert) => {
            tracing::warn!(rule = ?alert.rule, severity = ?alert.severity, "alert started: {}", alert.message)
        }
        AlertChange::Resolved(alert) => {
            // The message says "resolved: ..." and what recovered.
            tracing::info!(rule = ?alert.rule, "alert {}", alert.message)
        }
    }
}
