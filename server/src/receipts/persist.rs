//! Saving the receipts in the reserved engine queue [`RECEIPTS_QUEUE`] (see
//! `crate::durable`), so `switchboard status` and `GET .../status` still show the stages
//! recorded before a restart or a failover to another server on the same storage.
//!
//! Each new receipt and each stage is one [`Change`]; a background writer saves them in
//! groups (a stage is recorded *after* the engine made its event durable, and the handler
//! does not wait for its receipt, as it did not before). The log is bounded like the book:
//! once it holds twice what the book's last snapshot held, it is replaced by a snapshot of the
//! book, which keeps at most [`super::RECEIPTS_MAX`] receipts of at most
//! [`super::STAGES_PER_RECEIPT_MAX`] stages. Start-up replays the log into the book (the same
//! limits apply) and compacts it to one snapshot.
//!
//! What a `kill -9` loses: the stages of the writer's round in flight, a few milliseconds'
//! worth. A graceful stop saves everything.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_engine::{EngineError, MessageId, UnixMillis};
use tokio::task::JoinHandle;

use super::book::{Book, Receipt, Stage, StageKind};
use crate::durable::journal::{self, Journaled, Pending, WriterSettings};
use crate::durable::log::EngineLog;
use crate::state::AppState;

/// The reserved engine queue holding the receipts' log.
pub const RECEIPTS_QUEUE: &str = "_receipts";
/// The log is not compacted below this many changes (a small book need not be rewritten for
/// every few stages).
const COMPACT_FLOOR_CHANGES: usize = 20_000;
/// Least time between two saves: stages recorded meanwhile share one engine commit.
const SAVE_INTERVAL: Duration = Duration::from_millis(10);

/// One saved change of the book.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// A receipt, whole: a new message's, or one of a snapshot (it replaces what was known).
    Receipt {
        /// The message.
        id: String,
        /// Its receipt.
        receipt: SavedReceipt,
    },
    /// A stage added to a message's receipt.
    Stage {
        /// The message.
        id: String,
        /// The stage.
        stage: SavedStage,
    },
}

impl Change {
    /// The change that opens (or replaces) `id`'s receipt.
    pub fn receipt(id: MessageId, receipt: &Receipt) -> Self {
        Change::Receipt {
            id: id.to_string(),
            receipt: SavedReceipt::from(receipt),
        }
    }

    /// The change that adds `stage` to `id`'s receipt.
    pub fn stage(id: MessageId, stage: &Stage) -> Self {
        Change::Stage {
            id: id.to_string(),
            stage: SavedStage::from(stage),
        }
    }
}

/// A receipt as saved (times in milliseconds, not the API's ISO-8601 text).
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedReceipt {
    sender: String,
    recipient: String,
    expires_at: Option<UnixMillis>,
    reply_to: Option<String>,
    stages: Vec<SavedStage>,
    stages_dropped: u32,
}

/// A stage as saved.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedStage {
    stage: StageKind,
    at: UnixMillis,
    agent: Option<String>,
    attempt: Option<u32>,
    via: Option<String>,
    reason: Option<String>,
    related_message_id: Option<String>,
}

impl From<&Receipt> for SavedReceipt {
    fn from(receipt: &Receipt) -> Self {
        Self {
            sender: receipt.sender.clone(),
            recipient: receipt.recipient.clone(),
            expires_at: receipt.expires_at,
            reply_to: receipt.reply_to.clone(),
            stages: receipt.stages.iter().map(SavedStage::from).collect(),
            stages_dropped: receipt.stages_dropped,
        }
    }
}

impl From<SavedReceipt> for Receipt {
    fn from(saved: SavedReceipt) -> Self {
        Self {
            sender: saved.sender,
            recipient: saved.recipient,
            expires_at: saved.expires_at,
            reply_to: saved.reply_to,
            stages: saved.stages.into_iter().map(Stage::from).collect(),
            stages_dropped: saved.stages_dropped,
        }
    }
}

impl From<&Stage> for SavedStage {
    fn from(stage: &Stage) -> Self {
        Self {
            stage: stage.stage,
            at: stage.at,
            agent: stage.agent.clone(),
            attempt: stage.attempt,
            via: stage.via.map(str::to_string),
            reason: stage.reason.clone(),
            related_message_id: stage.related_message_id.clone(),
        }
    }
}

impl From<SavedStage> for Stage {
    fn from(saved: SavedStage) -> Self {
        let mut stage = Stage::new(saved.stage, saved.at);
        stage.agent = saved.agent;
        stage.attempt = saved.attempt;
        stage.via = saved
            .via
            .as_deref()
            .and_then(super::Via::parse)
            .map(super::Via::as_str);
        stage.reason = saved.reason;
        stage.related_message_id = saved.related_message_id;
        stage
    }
}

impl Journaled for Book {
    type Change = Change;

    fn pending(&mut self) -> &mut Pending<Change> {
        &mut self.pending
    }

    fn snapshot(&self) -> Vec<Change> {
        self.iter()
            .map(|(id, receipt)| Change::receipt(id, receipt))
            .collect()
    }
}

/// Applies one saved change to the book (a stage of a receipt no longer kept is dropped).
fn apply(book: &mut Book, change: Change) {
    match change {
        Change::Receipt { id, receipt } => {
            if let Ok(id) = id.parse() {
                book.open(id, receipt.into());
            }
        }
        Change::Stage { id, stage } => {
            if let Ok(id) = id.parse() {
                book.push(id, stage.into());
            }
        }
    }
}

/// Replays the saved receipts into the state's book, compacts the log, and starts the writer.
pub async fn restore(state: &AppState) -> Result<JoinHandle<()>, EngineError> {
    let log = EngineLog::open(state.engine.clone(), RECEIPTS_QUEUE, 0).await?;
    let (changes, read) = log.replay::<Change>().await?;
    let replayed = changes.len();
    let book = state.receipts.book();
    let snapshot = {
        let mut book = book.lock();
        for change in changes {
            apply(&mut book, change);
        }
        book.snapshot()
    };
    log.compact(read, &snapshot).await?;
    tracing::info!(receipts = snapshot.len(), replayed, "receipts loaded");
    let settings = WriterSettings {
        name: "receipts",
        compact_floor: COMPACT_FLOOR_CHANGES,
        round_interval: SAVE_INTERVAL,
    };
    Ok(journal::spawn(
        log,
        book,
        settings,
        snapshot.len(),
        state.shutdown.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_receipt_reads_back_the_same() {
        let mut delivered = Stage::new(StageKind::Delivered, 2_000);
        delivered.agent = Some("bob".into());
        delivered.attempt = Some(1);
        delivered.via = Some(super::super::Via::WebSocket.as_str());
        let receipt = Receipt {
            sender: "alice".into(),
            recipient: "bob".into(),
            expires_at: Some(9_000),
            reply_to: Some("x".into()),
            stages: vec![Stage::new(StageKind::Queued, 1_000), delivered],
            stages_dropped: 2,
        };
        let text = serde_json::to_string(&Change::receipt(MessageId(5), &receipt)).unwrap();
        let Change::Receipt { receipt: saved, .. } = serde_json::from_str(&text).unwrap() else {
            panic!("not a receipt: {text}");
        };
        let back = Receipt::from(saved);
        assert_eq!(back.stages, receipt.stages);
        assert_eq!(
            (back.sender, back.expires_at, back.stages_dropped),
            ("alice".to_string(), Some(9_000), 2)
        );
    }
}
