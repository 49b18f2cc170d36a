//! Server state kept *inside the engine*, so that a restart, or another `switchboard serve`
//! taking over on the same storage (failover), finds it again.
//!
//! The engine's queues are the only store every backend (Redis, redb, sled, memory) keeps
//! with the messages' guarantees and moves with the data, so each piece of state is a log in
//! a reserved queue (names starting with `_` are refused by the queue API):
//!
//! | state | queue | written |
//! |---|---|---|
//! | agents (`registry/persist.rs`) | `_registry` | before the API answers |
//! | routing rules (`routing/persist.rs`) | `_routing_rules` | before the API answers |
//! | migration (`migrate/state.rs`) | `_migration` | before the migration goes on |
//! | delivery receipts (`receipts/persist.rs`) | `_receipts` | in the background, grouped |
//! | open asks (`receipts/asks_persist.rs`) | `_asks` | before the question's send answers |
//! | sticky threads, round-robin cursors (`routing/strategy_persist.rs`) | `_routing_strategies` | in the background, grouped |
//! | routed sends' idempotency keys (`routing/claims.rs`) | `_routed_sends` | before the message is stored |
//!
//! - [`log`]: [`log::EngineLog`], the log itself: append, replay, compact.
//! - [`journal`]: state changed on hot paths and saved by a background writer, compacted to
//!   a snapshot as it grows.

pub mod journal;
pub mod log;
#[cfg(test)]
mod tests;

use std::time::Duration;

use switchboard_engine::EngineError;
use tokio::task::JoinHandle;

use crate::state::AppState;

/// How long a graceful stop waits for the writers' last writes.
pub const WRITERS_FINISH_TIMEOUT: Duration = Duration::from_secs(10);

/// The background writers of the saved state.
#[derive(Default)]
pub struct Writers {
    tasks: Vec<JoinHandle<()>>,
}

impl Writers {
    /// Waits (after shutdown was signalled) until every writer wrote what was pending and
    /// stopped; false when some did not within [`WRITERS_FINISH_TIMEOUT`].
    pub async fn finish(self) -> bool {
        let all = futures_util::future::join_all(self.tasks);
        tokio::time::timeout(WRITERS_FINISH_TIMEOUT, all)
            .await
            .is_ok()
    }
}

/// Reads back the receipts, open asks and routing memory saved by an earlier server on this
/// storage, and starts saving them. Call once, before serving requests; the writers stop when
/// the state's shutdown turns true.
pub async fn restore(state: &AppState) -> Result<Writers, EngineError> {
    let mut writers = Writers::default();
    writers
        .tasks
        .push(crate::receipts::persist::restore(state).await?);
    writers
        .tasks
        .push(crate::receipts::asks_persist::restore(state).await?);
    writers.tasks.push(crate::routing::restore(state).await?);
    Ok(writers)
}
