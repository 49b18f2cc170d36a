//! The receipts' background task, started the first time someone listens to the feed or opens
//! an ask, stopped when the server shuts down. Each round it ends asks whose askers stopped
//! polling, and — while anyone listens — checks a slice of the open receipts against the
//! engine, because dead letters and expiry happen in the engine's timer where no handler sees
//! them.

use switchboard_engine::{MessageId, MessageState};

use super::{asks, MAINTENANCE_INTERVAL, WATCH_MESSAGES_PER_ROUND_MAX};
use crate::state::AppState;

/// Runs rounds until the server shuts down.
pub async fn run(state: AppState) {
    let mut shutdown = state.shutdown.clone();
    let mut cursor = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(MAINTENANCE_INTERVAL) => {}
            stop = async { shutdown.wait_for(|stop| *stop).await.is_ok() } => {
                if stop {
                    return;
                }
                // Nobody can tell us to stop any more: keep the rhythm with plain sleeps.
                tokio::time::sleep(MAINTENANCE_INTERVAL).await;
            }
        }
        asks::close_idle(&state).await;
        if state.receipts.listened() {
            cursor = watch(&state, cursor).await;
        }
    }
}

/// Records the deaths of open receipts in one slice; returns where the next slice starts.
async fn watch(state: &AppState, cursor: usize) -> usize {
    let (ids, next) = state
        .receipts
        .open_ids(cursor, WATCH_MESSAGES_PER_ROUND_MAX);
    for id in ids {
        if let Err(error) = check(state, id).await {
            tracing::debug!(%id, %error, "receipt watcher could not read a message");
            break;
        }
    }
    next
}

/// Notes a message's death, or its expiry when the engine dropped it (dead letters off).
pub async fn check(state: &AppState, id: MessageId) -> Result<(), switchboard_engine::EngineError> {
    match state.engine.message(id).await? {
        Some((message, MessageState::Dead { reason, at })) => {
            state.receipts.died(id, reason, at, message.attempts);
        }
        Some(_) => {}
        None => {
            let now = state.engine.now_ms();
            let expired = state
                .receipts
                .get(id)
                .is_some_and(|receipt| receipt.expires_at.is_some_and(|at| at <= now));
            if expired {
                state
                    .receipts
                    .died(id, switchboard_engine::DeadReason::Expired, now, 0);
            }
        }
    }
    Ok(())
}
