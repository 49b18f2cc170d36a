//! Folding WAL records into keyed state: the reference meaning of every record, used by the
//! in-memory backend and by tests that check a backend's recovery.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{DedupEntry, Snapshot};
use crate::config::QueueConfig;
use crate::message::{IdMap, StoredMessage};
use crate::wal::Record;

/// Keyed state built by applying records in commit order.
#[derive(Debug, Clone, Default)]
pub struct SnapshotFold {
    queues: BTreeMap<Arc<str>, QueueConfig>,
    messages: IdMap<StoredMessage>,
    dedup: HashMap<(Arc<str>, String), DedupEntry>,
    ids_minted_until: crate::clock::UnixMillis,
}

impl SnapshotFold {
    /// Applies one record. Every record is idempotent: applying it twice changes nothing more.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::QueueConfigured { queue, config } => {
                self.queues.insert(queue.clone(), config.clone());
            }
            Record::Enqueued {
                message,
                dedup_until,
            } => {
                if let (Some(key), Some(until)) = (&message.dedup_key, dedup_until) {
                    self.dedup.insert(
                        (message.queue.clone(), key.clone()),
                        DedupEntry {
                            queue: message.queue.clone(),
                            key: key.clone(),
                            id: message.id,
                            until: *until,
                        },
                    );
                }
                self.messages.insert(message.id, message.clone());
            }
            Record::Delivered { id, attempts, .. } => {
                if let Some(message) = self.messages.get_mut(id) {
                    message.attempts = *attempts;
                }
            }
            Record::Requeued { id, not_before, .. } => {
                if let Some(message) = self.messages.get_mut(id) {
                    message.not_before = *not_before;
                }
            }
            Record::DeadLettered { id, reason, at, .. } => {
                if let Some(message) = self.messages.get_mut(id) {
                    message.dead = Some((*reason, *at));
                }
            }
            Record::Redriven {
                id,
                seq,
                now,
                expires_at,
                ..
            } => {
                if let Some(message) = self.messages.get_mut(id) {
                    message.dead = None;
                    message.attempts = 0;
                    message.seq = *seq;
                    message.not_before = *now;
                    message.expires_at = *expires_at;
                }
            }
            Record::Removed { id, .. } => {
                self.messages.remove(id);
            }
            Record::IdsMinted { until } => {
                self.ids_minted_until = self.ids_minted_until.max(*until);
            }
            Record::DedupForgotten { queue, key } => {
                self.dedup.remove(&(queue.clone(), key.clone()));
            }
        }
    }

    /// Applies a batch in order.
    pub fn apply_all(&mut self, batch: &[Record]) {
        batch.iter().for_each(|record| self.apply(record));
    }

    /// The snapshot this fold describes, messages in id order.
    pub fn snapshot(&self) -> Snapshot {
        let mut messages: Vec<_> = self.messages.values().cloned().collect();
        messages.sort_by_key(|m| m.id);
        let mut dedup: Vec<_> = self.dedup.values().cloned().collect();
        dedup.sort_by(|a, b| (&a.queue, &a.key).cmp(&(&b.queue, &b.key)));
        Snapshot {
            queues: self
                .queues
                .iter()
                .map(|(name, config)| (name.clone(), config.clone()))
                .collect(),
            messages,
            dedup,
            ids_minted_until: self.ids_minted_until,
        }
    }

    /// Live messages held.
    pub fn message_count(&self) -> usize {
        self.messages.len()
    }
}
