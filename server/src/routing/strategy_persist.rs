//! Saving the strategies' memory in the reserved engine queue [`STRATEGIES_QUEUE`] (see
//! `crate::durable`): sticky threads keep their agent, and round robin continues from its
//! turn, after a restart or a failover to another server on the same storage.
//!
//! Saved lazily, in the background, at most every [`SAVE_INTERVAL`]: a new thread binding is
//! one [`Change`]; a cursor is saved as its latest value only (a round-robin pick moves it,
//! and saving every move would add a write per routed message). So after a graceful stop
//! everything continues exactly; after a `kill -9` the bindings and turns of the last
//! [`SAVE_INTERVAL`] may be forgotten: a thread that new goes to a new agent, and round robin
//! repeats a turn or two. Bounded like the memory itself
//! ([`STICKY_THREADS_MAX`](super::strategy::STICKY_THREADS_MAX),
//! [`CURSORS_MAX`](super::strategy::CURSORS_MAX)): compacted at start and whenever the log
//! outgrows its snapshot.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_engine::EngineError;
use tokio::task::JoinHandle;

use super::strategy::Strategies;
use crate::durable::journal::{self, Journaled, Pending, WriterSettings};
use crate::durable::log::EngineLog;
use crate::state::AppState;

/// The reserved engine queue holding the strategies' log.
pub const STRATEGIES_QUEUE: &str = "_routing_strategies";
/// Least time between two saves: the turns and bindings of that time share one write.
pub const SAVE_INTERVAL: Duration = Duration::from_millis(100);
/// The log is not compacted below this many changes.
const COMPACT_FLOOR_CHANGES: usize = 10_000;

/// One saved change of the strategies' memory.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// The turn counter of a round-robin key (the capability, the rule, or `*`).
    Cursor {
        /// The key.
        key: String,
        /// The turn it takes next.
        next: u64,
    },
    /// A sticky thread's agent.
    Thread {
        /// `metadata.thread_id`.
        thread: String,
        /// The agent id it sticks to.
        agent_id: String,
    },
}

impl Journaled for Strategies {
    type Change = Change;

    fn pending(&mut self) -> &mut Pending<Change> {
        &mut self.pending
    }

    fn take_coalesced(&mut self) -> Vec<Change> {
        let moved = std::mem::take(&mut self.moved_cursors);
        moved
            .into_iter()
            .filter_map(|key| {
                let next = *self.cursors().get(&key)?;
                Some(Change::Cursor { key, next })
            })
            .collect()
    }

    fn snapshot(&self) -> Vec<Change> {
        let cursors = self.cursors().iter().map(|(key, next)| Change::Cursor {
            key: key.clone(),
            next: *next,
        });
        let threads = self.threads().map(|(thread, agent_id)| Change::Thread {
            thread: thread.to_string(),
            agent_id: agent_id.to_string(),
        });
        cursors.chain(threads).collect()
    }
}

/// Replays the saved strategies' memory into the router, compacts the log, and starts the
/// writer.
pub async fn restore(state: &AppState) -> Result<JoinHandle<()>, EngineError> {
    let log = EngineLog::open(state.engine.clone(), STRATEGIES_QUEUE, 0).await?;
    let (changes, read) = log.replay::<Change>().await?;
    let shared = state.routing.strategies.clone();
    let snapshot = {
        let mut strategies = shared.lock();
        for change in changes {
            match change {
                Change::Cursor { key, next } => strategies.restore_cursor(&key, next),
                Change::Thread { thread, agent_id } => strategies.bind(&thread, &agent_id),
            }
        }
        strategies.snapshot()
    };
    log.compact(read, &snapshot).await?;
    let settings = WriterSettings {
        name: "routing strategies",
        compact_floor: COMPACT_FLOOR_CHANGES,
        round_interval: SAVE_INTERVAL,
    };
    Ok(journal::spawn(
        log,
        shared,
        settings,
        snapshot.len(),
        state.shutdown.clone(),
    ))
}
