//! Keyed state shared by the embedded backends: what each stored value holds, and how a commit
//! batch of records becomes the net set of key writes, applied with the exact meaning
//! [`SnapshotFold`](switchboard_engine::SnapshotFold) gives every record.
//!
//! A batch's messages come out as two parts, so a backend may store them apart: the body (the
//! [`StoredMessage`] as enqueued) and its [`MutableFields`] (a few integers that change on every
//! delivery or requeue). redb keeps them in two tables, so a delivery rewrites about 30 bytes;
//! sled joins them into one value, since its per-key cost outweighs re-encoding small payloads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_engine::wal::{self, WalError};
use switchboard_engine::{
    DeadReason, DedupEntry, MessageId, QueueConfig, Record, StorageError, StoredMessage, UnixMillis,
};

/// Version of the key and value layout these backends write; a store with another version is
/// refused rather than misread.
pub(crate) const LAYOUT_VERSION: u64 = 1;

/// The fields of a stored message that change after its enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MutableFields {
    pub seq: u64,
    pub not_before: UnixMillis,
    pub expires_at: Option<UnixMillis>,
    pub attempts: u32,
    pub dead: Option<(DeadReason, UnixMillis)>,
}

impl MutableFields {
    /// The mutable fields of `message` as it is now.
    pub fn of(message: &StoredMessage) -> Self {
        Self {
            seq: message.seq,
            not_before: message.not_before,
            expires_at: message.expires_at,
            attempts: message.attempts,
            dead: message.dead,
        }
    }

    /// `body` with these fields laid over it: the message as recovery must return it.
    pub fn apply_to(self, mut body: StoredMessage) -> StoredMessage {
        body.seq = self.seq;
        body.not_before = self.not_before;
        body.expires_at = self.expires_at;
        body.attempts = self.attempts;
        body.dead = self.dead;
        body
    }
}

/// The net effect of one commit batch, one entry per key: `Some` writes the value, `None`
/// deletes the key. Maps are ordered so writes reach the B-trees in key order.
#[derive(Debug, Default)]
pub(crate) struct BatchChanges<'a> {
    pub queues: BTreeMap<&'a str, &'a QueueConfig>,
    pub bodies: BTreeMap<MessageId, Option<&'a StoredMessage>>,
    pub fields: BTreeMap<MessageId, Option<MutableFields>>,
    pub dedup: BTreeMap<(&'a str, &'a str), Option<DedupEntry>>,
    /// The highest id reservation of the batch (see `Record::IdsMinted`), if any.
    pub ids_minted_until: Option<UnixMillis>,
}

impl<'a> BatchChanges<'a> {
    /// Folds `batch` into net key changes. `stored_fields` reads a message's fields as
    /// committed before this batch; it is asked only about messages the batch has not
    /// written yet, so every record sees the writes of the records before it.
    pub fn plan(
        batch: &'a [Record],
        mut stored_fields: impl FnMut(MessageId) -> Result<Option<MutableFields>, StorageError>,
    ) -> Result<Self, StorageError> {
        let mut changes = Self::default();
        for record in batch {
            changes.apply(record, &mut stored_fields)?;
        }
        // A message enqueued and removed within the batch was never stored: deleting its
        // keys would only cost B-tree lookups.
        for record in batch {
            if let Record::Enqueued { message, .. } = record {
                if changes.fields.get(&message.id) == Some(&None) {
                    changes.fields.remove(&message.id);
                    changes.bodies.remove(&message.id);
                }
            }
        }
        Ok(changes)
    }

    fn apply(
        &mut self,
        record: &'a Record,
        stored_fields: &mut impl FnMut(MessageId) -> Result<Option<MutableFields>, StorageError>,
    ) -> Result<(), StorageError> {
        match record {
            Record::IdsMinted { until } => {
                let highest = self.ids_minted_until.unwrap_or(0).max(*until);
                self.ids_minted_until = Some(highest);
            }
            Record::QueueConfigured { queue, config } => {
                self.queues.insert(queue, config);
            }
            Record::Enqueued {
                message,
                dedup_until,
            } => {
                if let (Some(key), Some(until)) = (&message.dedup_key, dedup_until) {
                    let entry = DedupEntry {
                        queue: message.queue.clone(),
                        key: key.clone(),
                        id: message.id,
                        until: *until,
                    };
                    self.dedup.insert((&message.queue, key), Some(entry));
                }
                self.bodies.insert(message.id, Some(message));
                self.fields
                    .insert(message.id, Some(MutableFields::of(message)));
            }
            Record::Delivered { id, attempts, .. } => {
                self.update(*id, stored_fields, |f| f.attempts = *attempts)?;
            }
            Record::Requeued { id, not_before, .. } => {
                self.update(*id, stored_fields, |f| f.not_before = *not_before)?;
            }
            Record::DeadLettered { id, reason, at, .. } => {
                self.update(*id, stored_fields, |f| f.dead = Some((*reason, *at)))?;
            }
            Record::Redriven {
                id,
                seq,
                now,
                expires_at,
                ..
            } => {
                self.update(*id, stored_fields, |f| {
                    f.dead = None;
                    f.attempts = 0;
                    f.seq = *seq;
                    f.not_before = *now;
                    f.expires_at = *expires_at;
                })?;
            }
            Record::Removed { id, .. } => {
                self.bodies.insert(*id, None);
                self.fields.insert(*id, None);
            }
            Record::DedupForgotten { queue, key } => {
                self.dedup.insert((queue, key), None);
            }
        }
        Ok(())
    }

    /// Changes the fields of message `id` if it exists (in this batch or before it); a record
    /// about a message that is gone changes nothing, as in the fold.
    fn update(
        &mut self,
        id: MessageId,
        stored_fields: &mut impl FnMut(MessageId) -> Result<Option<MutableFields>, StorageError>,
        change: impl FnOnce(&mut MutableFields),
    ) -> Result<(), StorageError> {
        let current = match self.fields.get(&id) {
            Some(in_batch) => *in_batch,
            None => stored_fields(id)?,
        };
        if let Some(mut fields) = current {
            change(&mut fields);
            self.fields.insert(id, Some(fields));
        }
        Ok(())
    }
}

/// Decodes a stored value, naming what it was when it does not decode.
pub(crate) fn decode_value<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, StorageError> {
    wal::decode(bytes).map_err(|error: WalError| {
        StorageError::Corrupt(format!("stored {what} does not decode: {error}"))
    })
}

/// Puts recovered bodies and fields together, failing on a body without fields or the
/// reverse (commits are atomic, so either means the store was damaged).
#[cfg(feature = "redb")]
pub(crate) fn join_messages(
    bodies: BTreeMap<MessageId, StoredMessage>,
    mut fields: BTreeMap<MessageId, MutableFields>,
) -> Result<Vec<StoredMessage>, StorageError> {
    let mut messages = Vec::with_capacity(bodies.len());
    for (id, body) in bodies {
        let Some(current) = fields.remove(&id) else {
            return Err(StorageError::Corrupt(format!(
                "message {id} has a body but no state entry"
            )));
        };
        messages.push(current.apply_to(body));
    }
    if let Some(id) = fields.keys().next() {
        return Err(StorageError::Corrupt(format!(
            "message {id} has a state entry but no body ({} such entries)",
            fields.len()
        )));
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_engine::SnapshotFold;

    use super::*;

    fn message(id: u128) -> StoredMessage {
        StoredMessage {
            id: MessageId(id),
            queue: Arc::from("q"),
            seq: id as u64,
            priority: 1,
            payload: Arc::from(&b"body"[..]),
            headers: Default::default(),
            enqueued_at: 10,
            not_before: 10,
            expires_at: Some(1_000),
            max_attempts: 3,
            attempts: 0,
            dedup_key: Some(format!("key-{id}")),
            dead: None,
        }
    }

    /// Applies the planned changes to maps, as a backend would to its tables.
    fn apply_plan(
        store: &mut BTreeMap<MessageId, (StoredMessage, MutableFields)>,
        batch: &[Record],
    ) {
        let snapshot = store.clone();
        let changes = BatchChanges::plan(batch, |id| Ok(snapshot.get(&id).map(|(_, f)| *f)))
            .expect("planning reads from memory");
        for (id, fields) in changes.fields {
            match (fields, changes.bodies.get(&id)) {
                (None, _) => {
                    store.remove(&id);
                }
                (Some(fields), Some(Some(body))) => {
                    store.insert(id, ((*body).clone(), fields));
                }
                (Some(fields), _) => {
                    store.get_mut(&id).expect("updated message exists").1 = fields;
                }
            }
        }
    }

    #[test]
    fn a_batch_reads_its_own_writes_like_the_fold() {
        let q: Arc<str> = Arc::from("q");
        let batch = vec![
            Record::Enqueued {
                message: message(1),
                dedup_until: Some(500),
            },
            Record::Delivered {
                queue: q.clone(),
                id: MessageId(1),
                attempts: 1,
            },
            Record::Requeued {
                queue: q.clone(),
                id: MessageId(1),
                priority: 1,
                seq: 1,
                not_before: 99,
            },
            Record::Enqueued {
                message: message(2),
                dedup_until: None,
            },
            Record::Removed {
                queue: q.clone(),
                id: MessageId(2),
            },
            Record::Delivered {
                queue: q.clone(),
                id: MessageId(2),
                attempts: 1,
            },
            Record::DeadLettered {
                queue: q.clone(),
                id: MessageId(1),
                reason: DeadReason::MaxAttempts,
                at: 120,
            },
        ];
        let mut fold = SnapshotFold::default();
        fold.apply_all(&batch);
        let mut store = BTreeMap::new();
        apply_plan(&mut store, &batch);
        let expected = fold.snapshot().messages;
        let got: Vec<_> = store
            .into_values()
            .map(|(body, fields)| fields.apply_to(body))
            .collect();
        assert_eq!(got, expected);
    }

    #[cfg(feature = "redb")]
    #[test]
    fn fields_without_a_body_are_reported_as_corrupt() {
        let mut fields = BTreeMap::new();
        fields.insert(MessageId(7), MutableFields::of(&message(7)));
        let error = join_messages(BTreeMap::new(), fields).expect_err("orphan fields");
        assert!(matches!(error, StorageError::Corrupt(_)), "{error:?}");
    }
}
