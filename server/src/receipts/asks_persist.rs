//! Saving the open asks in the reserved engine queue [`ASKS_QUEUE`] (see `crate::durable`),
//! so that a question asked before a restart, or before a failover to another server on the
//! same storage, still has its reply routed to the asker's reply queue, where the `ask` that
//! reconnects takes it.
//!
//! Each ask opened or closed is one [`Change`]. The send of a question waits until its ask is
//! saved (see [`wait_saved`]), so an acknowledged question's ask survives a `kill -9`; a close
//! is saved in the background (a close lost to a crash only leaves an ask that ends by itself
//! [`ASK_IDLE_MS`](super::asks::ASK_IDLE_MS) after the restart). The idle deadlines are not saved: after a restart each
//! ask gets a fresh [`ASK_IDLE_MS`](super::asks::ASK_IDLE_MS), the asker's time to reconnect. The log is bounded like
//! the asks ([`ASKS_OPEN_MAX`]): compacted at start and whenever it outgrows its snapshot.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_engine::{EngineError, MessageId};
use tokio::task::JoinHandle;

use super::asks::{Asks, ASKS_OPEN_MAX};
use crate::durable::journal::{self, Journaled, Pending, WriterSettings};
use crate::durable::log::EngineLog;
use crate::state::AppState;

/// The reserved engine queue holding the asks' log.
pub const ASKS_QUEUE: &str = "_asks";
/// The log is not compacted below this many changes.
const COMPACT_FLOOR_CHANGES: usize = 2 * ASKS_OPEN_MAX;
/// Longest wait of a question's send for its ask to be saved, in milliseconds. Past it the
/// send is answered anyway (the question is stored; only a restart would forget the ask).
pub const ASK_SAVE_WAIT_MS_MAX: u64 = 5_000;

/// One saved change of the open asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// The agent `asker_id` waits for replies to `question`.
    Opened {
        /// The question.
        #[serde(with = "message_id_text")]
        question: MessageId,
        /// The asker's agent id.
        asker_id: String,
    },
    /// The ask ended (answered, given up, or idle).
    Closed {
        /// The question.
        #[serde(with = "message_id_text")]
        question: MessageId,
    },
}

/// Message ids as their usual text: JSON numbers do not hold 128 bits everywhere.
mod message_id_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use switchboard_engine::MessageId;

    pub fn serialize<S: Serializer>(id: &MessageId, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<MessageId, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Journaled for Asks {
    type Change = Change;

    fn pending(&mut self) -> &mut Pending<Change> {
        &mut self.pending
    }

    fn snapshot(&self) -> Vec<Change> {
        self.iter()
            .map(|(question, asker_id)| Change::Opened {
                question,
                asker_id: asker_id.to_string(),
            })
            .collect()
    }
}

/// Waits until the asks opened so far are saved (at most [`ASK_SAVE_WAIT_MS_MAX`]).
pub async fn wait_saved(state: &AppState) {
    let Some(ticket) = state.receipts.asks().saved() else {
        return;
    };
    if !ticket
        .wait(Duration::from_millis(ASK_SAVE_WAIT_MS_MAX))
        .await
    {
        tracing::warn!(
            "an ask could not be saved in {ASK_SAVE_WAIT_MS_MAX} ms; a restart now would \
             send its replies to the asker's inbox"
        );
    }
}

/// Replays the saved asks (each open again for [`ASK_IDLE_MS`](super::asks::ASK_IDLE_MS) from now), compacts the log,
/// and starts the writer.
pub async fn restore(state: &AppState) -> Result<JoinHandle<()>, EngineError> {
    let log = EngineLog::open(state.engine.clone(), ASKS_QUEUE, 0).await?;
    let (changes, read) = log.replay::<Change>().await?;
    let mut open: HashMap<MessageId, String> = HashMap::new();
    for change in changes {
        match change {
            Change::Opened { question, asker_id } => {
                open.insert(question, asker_id);
            }
            Change::Closed { question } => {
                open.remove(&question);
            }
        }
    }
    let now = state.engine.now_ms();
    let asks = state.receipts.asks();
    for (question, asker_id) in &open {
        // An asker removed since has no reply queue any more.
        if state.registry.resolve(asker_id).is_some() {
            asks.open(*question, asker_id, now);
        }
    }
    let shared = asks.shared();
    let snapshot = shared.lock().snapshot();
    log.compact(read, &snapshot).await?;
    if !snapshot.is_empty() {
        tracing::info!(asks = snapshot.len(), "open asks restored");
        // Ends those whose askers do not come back.
        state.receipts.start_maintenance(state);
    }
    let settings = WriterSettings {
        name: "asks",
        compact_floor: COMPACT_FLOOR_CHANGES,
        round_interval: Duration::ZERO,
    };
    Ok(journal::spawn(
        log,
        shared,
        settings,
        snapshot.len(),
        state.shutdown.clone(),
    ))
}
