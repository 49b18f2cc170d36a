//! The bounded record of what happened to each message: one [`Receipt`] per message, oldest
//! forgotten first once [`RECEIPTS_MAX`] are kept, each with at most
//! [`STAGES_PER_RECEIPT_MAX`] stages (the first ones and the latest are kept, the middle is
//! counted).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use switchboard_engine::{IdMap, MessageId, UnixMillis};

use super::persist::Change;
use super::{RECEIPTS_MAX, STAGES_PER_RECEIPT_MAX};
use crate::durable::journal::Pending;
use crate::time::iso8601;

/// A step in a message's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// Stored in the recipient's inbox.
    Queued,
    /// Leased to the recipient (over REST or pushed over its WebSocket).
    Delivered,
    /// Given back by the recipient for a retry.
    Nacked,
    /// Acknowledged: done, deleted.
    Acked,
    /// Delivered `max_attempts` times without an ack: kept as a dead letter.
    DeadLettered,
    /// Its time to live ran out before it was acked.
    Expired,
    /// Someone answered it (`related_message_id` names the reply).
    Replied,
    /// Moved from the sender's reply queue into its inbox (the asker stopped waiting);
    /// `related_message_id` names the copy.
    Rerouted,
    /// During a tmux migration, its copy into the recipient's pane was refused (the pane runs
    /// a shell, or a program that is not an agent): nothing was typed; the message is still
    /// in the queue. `reason` says why.
    PaneRefused,
}

impl StageKind {
    /// True for the stages after which nothing else happens to the message.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StageKind::Acked | StageKind::DeadLettered | StageKind::Expired | StageKind::Rerouted
        )
    }
}

/// One stage, with when it happened and the details that matter for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// What happened.
    pub stage: StageKind,
    /// When (ISO-8601 UTC on the wire).
    #[serde(serialize_with = "serialize_iso8601")]
    pub at: UnixMillis,
    /// Delivered to, acked by or nacked by this agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Delivered: which attempt this was (1 for the first delivery).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Delivered: `rest` (leased by a request) or `websocket` (pushed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<&'static str>,
    /// Dead-lettered or expired: why, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Replied: the reply's id; rerouted: the copy's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related_message_id: Option<String>,
}

impl Stage {
    /// A stage with no details yet.
    pub fn new(stage: StageKind, at: UnixMillis) -> Self {
        Self {
            stage,
            at,
            agent: None,
            attempt: None,
            via: None,
            reason: None,
            related_message_id: None,
        }
    }
}

fn serialize_iso8601<S: serde::Serializer>(
    at: &UnixMillis,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&iso8601(*at))
}

/// What is known of one message from the moment it was sent.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// Who sent it.
    pub sender: String,
    /// Whose inbox it went to.
    pub recipient: String,
    /// When it expires, if it does.
    pub expires_at: Option<UnixMillis>,
    /// The message it answers, if any.
    pub reply_to: Option<String>,
    /// The stages so far, oldest first.
    pub stages: Vec<Stage>,
    /// Stages left out because the receipt reached [`STAGES_PER_RECEIPT_MAX`].
    pub stages_dropped: u32,
}

impl Receipt {
    /// True once the message was acked, died, expired or moved.
    pub fn is_final(&self) -> bool {
        self.stages.iter().any(|stage| stage.stage.is_final())
    }

    /// True when the message was for `agent`: its recipient (for a capability-routed message,
    /// the agent it was routed to), or an agent a delivery stage names. Only such an agent may
    /// answer it (see `crate::reply` and [`super::asks`]).
    pub fn delivered_to(&self, agent: &str) -> bool {
        self.recipient == agent
            || self.stages.iter().any(|stage| {
                stage.stage == StageKind::Delivered && stage.agent.as_deref() == Some(agent)
            })
    }

    /// True when a stage of this kind was recorded.
    pub fn has(&self, kind: StageKind) -> bool {
        self.stages.iter().any(|stage| stage.stage == kind)
    }

    /// Adds a stage; past the limit the stage before the last is dropped, so the first
    /// stages (queued, first delivery) and the latest one are always there.
    pub fn push(&mut self, stage: Stage) {
        if self.stages.len() >= STAGES_PER_RECEIPT_MAX {
            self.stages.remove(self.stages.len() - 1);
            self.stages_dropped += 1;
        }
        self.stages.push(stage);
    }
}

/// Receipts by message id, forgetting the oldest beyond [`RECEIPTS_MAX`].
#[derive(Default)]
pub struct Book {
    by_id: IdMap<Receipt>,
    /// Insertion order, for eviction.
    order: VecDeque<MessageId>,
    /// Changes not saved yet (see `super::persist`).
    pub(super) pending: Pending<Change>,
}

impl Book {
    /// Starts the receipt of a message just stored (or replaces it, replaying the log).
    pub fn open(&mut self, id: MessageId, receipt: Receipt) {
        self.pending.push(|| Change::receipt(id, &receipt));
        if self.by_id.insert(id, receipt).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > RECEIPTS_MAX {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
            }
        }
        debug_assert_eq!(self.order.len(), self.by_id.len());
    }

    /// Adds `stage` to the receipt of `id`, if it is kept; returns the receipt.
    pub fn push(&mut self, id: MessageId, stage: Stage) -> Option<&Receipt> {
        let receipt = self.by_id.get_mut(&id)?;
        self.pending.push(|| Change::stage(id, &stage));
        receipt.push(stage);
        Some(receipt)
    }

    /// The receipts, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (MessageId, &Receipt)> {
        self.order
            .iter()
            .filter_map(|id| self.by_id.get(id).map(|receipt| (*id, receipt)))
    }

    /// A copy of a message's receipt.
    pub fn get(&self, id: MessageId) -> Option<Receipt> {
        self.by_id.get(&id).cloned()
    }

    /// A known message's receipt, to read without copying it.
    pub fn get_ref(&self, id: MessageId) -> Option<&Receipt> {
        self.by_id.get(&id)
    }

    /// Ids of receipts that are not final yet among the `limit` receipts from position `from`
    /// (oldest first), and the position to go on from (0 once the end was reached): the
    /// watcher walks the book a slice at a time.
    pub fn open_ids(&self, from: usize, limit: usize) -> (Vec<MessageId>, usize) {
        let from = if from >= self.order.len() { 0 } else { from };
        let ids = self
            .order
            .range(from..)
            .take(limit)
            .filter(|id| self.by_id.get(id).is_some_and(|r| !r.is_final()))
            .copied()
            .collect();
        let next = from + limit;
        (ids, if next >= self.order.len() { 0 } else { next })
    }

    /// Receipts held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt() -> Receipt {
        Receipt {
            sender: "alice".into(),
            recipient: "bob".into(),
            expires_at: None,
            reply_to: None,
            stages: vec![Stage::new(StageKind::Queued, 1)],
            stages_dropped: 0,
        }
    }

    #[test]
    fn oldest_receipt_is_forgotten_beyond_the_limit() {
        let mut book = Book::default();
        for n in 0..=RECEIPTS_MAX as u128 {
            book.open(MessageId(n), receipt());
        }
        assert_eq!(book.len(), RECEIPTS_MAX);
        assert!(book.get(MessageId(0)).is_none());
        assert!(book.get(MessageId(1)).is_some());
    }

    #[test]
    fn stages_beyond_the_limit_keep_the_first_and_the_latest() {
        let mut book = Book::default();
        book.open(MessageId(7), receipt());
        for attempt in 1..=(STAGES_PER_RECEIPT_MAX as u32 + 10) {
            let mut stage = Stage::new(StageKind::Delivered, 2);
            stage.attempt = Some(attempt);
            book.push(MessageId(7), stage).unwrap();
        }
        let kept = book.get(MessageId(7)).unwrap();
        assert_eq!(kept.stages.len(), STAGES_PER_RECEIPT_MAX);
        assert_eq!(kept.stages[0].stage, StageKind::Queued);
        assert_eq!(
            kept.stages.last().unwrap().attempt,
            Some(STAGES_PER_RECEIPT_MAX as u32 + 10)
        );
        assert_eq!(kept.stages_dropped, 11);
    }

    #[test]
    fn open_ids_skip_final_receipts_and_walk_in_slices() {
        let mut book = Book::default();
        for n in 1..=4 {
            book.open(MessageId(n), receipt());
        }
        book.push(MessageId(2), Stage::new(StageKind::Acked, 3));
        assert_eq!(
            book.open_ids(0, 10),
            (vec![MessageId(1), MessageId(3), MessageId(4)], 0)
        );
        assert_eq!(book.open_ids(0, 2), (vec![MessageId(1)], 2));
        assert_eq!(book.open_ids(2, 2), (vec![MessageId(3), MessageId(4)], 0));
    }
}
