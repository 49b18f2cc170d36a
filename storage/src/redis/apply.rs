//! What each WAL record does to the Redis keys (the meaning is `SnapshotFold`'s).
//!
//! A batch is first folded into its net change per key: one HSET (or HDEL) per message it
//! touches, its final index, the dedup keys and queue configs it leaves. Index moves of all
//! messages are then grouped into multi-member ZREM/SREM/ZADD/SADD/DEL commands, so a batch of
//! thousands of records costs the commit script few calls.
//!
//! Every command sets final values (HSET, ZADD, SADD, DEL, never HINCRBY), planned from the
//! placements of the last successful commit, so a retry after a lost reply plans and does the
//! same again. A message the batch removes gets only its DEL and index removals, never an HSET
//! that a retry could turn into a half-written hash. Records about a message that does not
//! exist are skipped (the fold's no-op).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use switchboard_engine::{MessageId, QueueConfig, Record, StorageError, StoredMessage};

use super::encode::{ChunkEncoder, EncodedBatch};
use super::groups::{write_dedup, Groups};
use super::keys::{ready_score, Index, Keys, READY_SEQ_LIMIT};
use super::message_hash::{self, FieldOverrides};
use super::placement::{Placements, Places};

/// A batch's commands, and the placements they leave once applied.
pub(crate) struct Plan {
    pub encoded: EncodedBatch,
    pub changes: HashMap<MessageId, Places>,
}

/// The net change a batch makes to one message.
struct MessageChange<'a> {
    queue: Arc<str>,
    /// Indexes listing it before the batch.
    before: Places,
    /// Enqueued by this batch: its hash is written whole.
    created: Option<&'a StoredMessage>,
    /// Fields set (`Some`) or deleted (`None`) after its enqueue.
    fields: FieldOverrides,
    /// The index it ends in, with its score for a sorted set; `None`: it does not move.
    target: Option<(Index, Option<u64>)>,
    /// A move whose target reads the clock (a retry may choose differently): leave it in no
    /// index but the target, whatever the placements say.
    clear_other_indexes: bool,
    deleted: bool,
}

/// Plans `batch` as the commands the commit script runs. `wall_now_ms` only decides whether a
/// requeued message is listed as ready or delayed (recovery goes by its `not_before` either way).
pub(crate) fn plan_batch(
    keys: &Keys,
    placements: &Placements,
    batch: &[Record],
    wall_now_ms: u64,
) -> Result<Plan, StorageError> {
    let mut fold = Fold {
        placements,
        wall_now_ms,
        order: Vec::new(),
        messages: HashMap::new(),
        configs: BTreeMap::new(),
        dedup: BTreeMap::new(),
    };
    for record in batch {
        fold.record(record)?;
    }
    Ok(fold.emit(keys))
}

struct Fold<'a> {
    placements: &'a Placements,
    wall_now_ms: u64,
    /// Messages in the order the batch first touched them.
    order: Vec<MessageId>,
    messages: HashMap<MessageId, MessageChange<'a>>,
    configs: BTreeMap<Arc<str>, &'a QueueConfig>,
    /// Dedup entries set (`Some(value)`) or forgotten (`None`).
    dedup: BTreeMap<(Arc<str>, &'a str), Option<String>>,
}

impl<'a> Fold<'a> {
    fn record(&mut self, record: &'a Record) -> Result<(), StorageError> {
        match record {
            Record::QueueConfigured { queue, config } => {
                self.configs.insert(queue.clone(), config);
            }
            Record::Enqueued {
                message,
                dedup_until,
            } => {
                if let (Some(key), Some(until)) = (&message.dedup_key, dedup_until) {
                    let value = format!("{} {until}", message.id);
                    self.dedup.insert((message.queue.clone(), key), Some(value));
                }
                let target = enqueued_target(message)?;
                let change = self.change(&message.queue, message.id);
                change.created = Some(message);
                change.target = Some(target);
            }
            Record::Delivered {
                queue,
                id,
                attempts,
            } => {
                if let Some(change) = self.existing(queue, *id) {
                    set_number(change, message_hash::ATTEMPTS, u64::from(*attempts));
                    change.target = Some((Index::Leased, None));
                }
            }
            Record::Requeued {
                queue,
                id,
                priority,
                seq,
                not_before,
            } => {
                let target = if *not_before > self.wall_now_ms {
                    (Index::Delayed, Some(*not_before))
                } else {
                    (Index::Ready, Some(score(*priority, *seq, *id)?))
                };
                if let Some(change) = self.existing(queue, *id) {
                    set_number(change, message_hash::NOT_BEFORE, *not_before);
                    change.target = Some(target);
                    change.clear_other_indexes = true;
                }
            }
            Record::DeadLettered {
                queue,
                id,
                reason,
                at,
            } => {
                if let Some(change) = self.existing(queue, *id) {
                    let reason = reason.as_str().as_bytes().to_vec();
                    change
                        .fields
                        .insert(message_hash::DEAD_REASON, Some(reason));
                    set_number(change, message_hash::DIED_AT, *at);
                    change.target = Some((Index::Dead, Some(*at)));
                }
            }
            Record::Redriven {
                queue,
                id,
                priority,
                seq,
                now,
                expires_at,
            } => {
                let score = score(*priority, *seq, *id)?;
                if let Some(change) = self.existing(queue, *id) {
                    set_number(change, message_hash::ATTEMPTS, 0);
                    set_number(change, message_hash::SEQ, *seq);
                    set_number(change, message_hash::NOT_BEFORE, *now);
                    let expiry = expires_at.map(|at| at.to_string().into_bytes());
                    change.fields.insert(message_hash::EXPIRES_AT, expiry);
                    change.fields.insert(message_hash::DEAD_REASON, None);
                    change.fields.insert(message_hash::DIED_AT, None);
                    change.target = Some((Index::Ready, Some(score)));
                }
            }
            Record::Removed { queue, id } => {
                if let Some(change) = self.existing(queue, *id) {
                    change.deleted = true;
                }
            }
            Record::DedupForgotten { queue, key } => {
                self.dedup.insert((queue.clone(), key), None);
            }
        }
        Ok(())
    }

    /// The change of a message the batch has seen or the placements know.
    fn change(&mut self, queue: &Arc<str>, id: MessageId) -> &mut MessageChange<'a> {
        let placements = self.placements;
        self.messages.entry(id).or_insert_with(|| {
            self.order.push(id);
            MessageChange {
                queue: queue.clone(),
                before: placements.get(id),
                created: None,
                fields: FieldOverrides::new(),
                target: None,
                clear_other_indexes: false,
                deleted: false,
            }
        })
    }

    /// The change of `id` if the message exists at this point of the batch.
    fn existing(&mut self, queue: &Arc<str>, id: MessageId) -> Option<&mut MessageChange<'a>> {
        let exists = match self.messages.get(&id) {
            Some(change) => {
                !change.deleted && (change.created.is_some() || !change.before.is_none())
            }
            None => !self.placements.get(id).is_none(),
        };
        exists.then(|| self.change(queue, id))
    }

    fn emit(self, keys: &Keys) -> Plan {
        let mut out = ChunkEncoder::new();
        let mut groups = Groups::default();
        let mut changes = HashMap::with_capacity(self.order.len());
        for queue in self.configs.keys() {
            groups.registry.push(queue.to_string());
        }
        for (queue, config) in &self.configs {
            let json = serde_json::to_vec(config).expect("a queue config always serializes");
            out.begin("SET").text(&keys.config(queue)).word(&json).end();
        }
        for id in &self.order {
            let change = &self.messages[id];
            let queue = &change.queue;
            let member = id.to_string();
            let key = keys.message(queue, *id);
            if change.deleted {
                if change.created.is_none() {
                    for index in change.before.indexes() {
                        groups.remove(queue, index, &member);
                    }
                    groups.deletes.entry(queue.clone()).or_default().push(key);
                }
                changes.insert(*id, Places::NONE);
                continue;
            }
            match change.created {
                Some(message) => message_hash::write_hset(&mut out, &key, message, &change.fields),
                None => message_hash::write_updates(&mut out, &key, &change.fields),
            }
            if let Some((target, score)) = change.target {
                let from = if change.clear_other_indexes {
                    Index::ALL.into_iter().fold(Places::NONE, Places::with)
                } else {
                    change.before
                };
                for index in from.indexes().filter(|index| *index != target) {
                    groups.remove(queue, index, &member);
                }
                let additions = groups.additions.entry((queue.clone(), target)).or_default();
                additions.push((score, member));
                changes.insert(*id, Places::only(target));
            }
        }
        groups.write(&mut out, keys);
        write_dedup(&mut out, keys, &self.dedup);
        Plan {
            encoded: out.finish(),
            changes,
        }
    }
}

fn set_number(change: &mut MessageChange<'_>, field: &'static str, value: u64) {
    change
        .fields
        .insert(field, Some(value.to_string().into_bytes()));
}

/// Where an enqueued message is listed: dead, delayed until its `not_before`, or ready.
fn enqueued_target(message: &StoredMessage) -> Result<(Index, Option<u64>), StorageError> {
    Ok(if let Some((_, died_at)) = message.dead {
        (Index::Dead, Some(died_at))
    } else if message.not_before > message.enqueued_at {
        (Index::Delayed, Some(message.not_before))
    } else {
        (
            Index::Ready,
            Some(score(message.priority, message.seq, message.id)?),
        )
    })
}

fn score(priority: u8, seq: u64, id: MessageId) -> Result<u64, StorageError> {
    ready_score(priority, seq).ok_or_else(|| {
        StorageError::Failed(format!(
            "message {id} has sequence number {seq}, beyond the {READY_SEQ_LIMIT} the Redis \
             ready score can order exactly"
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use switchboard_engine::{MessageId, Record, StoredMessage};

    use super::*;
    use crate::redis::encode::decode_commands;

    fn message(id: u128) -> StoredMessage {
        StoredMessage {
            id: MessageId(id),
            queue: Arc::from("q"),
            seq: id as u64,
            priority: 0,
            payload: Arc::from(&b"body"[..]),
            headers: Default::default(),
            enqueued_at: 5,
            not_before: 5,
            expires_at: None,
            max_attempts: 3,
            attempts: 0,
            dedup_key: None,
            dead: None,
        }
    }

    fn plan(placements: &Placements, batch: &[Record]) -> (Vec<String>, Plan) {
        let plan = plan_batch(&Keys::new("p:"), placements, batch, 0).unwrap();
        let commands = decode_commands(&plan.encoded)
            .into_iter()
            .map(|words| words.join(" "))
            .collect();
        (commands, plan)
    }

    #[test]
    fn an_ack_of_a_leased_message_is_one_srem_and_one_del() {
        let id = MessageId(1);
        let placements = Placements::from_map(HashMap::from([(id, Places::only(Index::Leased))]));
        let q: Arc<str> = Arc::from("q");
        let (commands, plan) = plan(&placements, &[Record::Removed { queue: q, id }]);
        assert_eq!(
            commands,
            [
                format!("SREM p:{{q}}:leased {id}"),
                format!("DEL p:{{q}}:msg:{id}")
            ]
        );
        assert_eq!(plan.changes[&id], Places::NONE);
    }

    #[test]
    fn many_deliveries_share_their_index_commands() {
        let ids: Vec<MessageId> = (1..=3).map(MessageId).collect();
        let ready = ids
            .iter()
            .map(|id| (*id, Places::only(Index::Ready)))
            .collect();
        let q: Arc<str> = Arc::from("q");
        let batch: Vec<Record> = ids
            .iter()
            .map(|id| Record::Delivered {
                queue: q.clone(),
                id: *id,
                attempts: 1,
            })
            .collect();
        let (commands, _) = plan(&Placements::from_map(ready), &batch);
        let members = ids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(commands.len(), 3 + 2, "one HSET each, one ZREM, one SADD");
        assert!(commands.contains(&format!("ZREM p:{{q}}:ready {members}")));
        assert!(commands.contains(&format!("SADD p:{{q}}:leased {members}")));
    }

    #[test]
    fn a_message_removed_in_its_batch_gets_no_hset() {
        let existing = MessageId(1);
        let placements =
            Placements::from_map(HashMap::from([(existing, Places::only(Index::Ready))]));
        let q: Arc<str> = Arc::from("q");
        let batch = [
            Record::Delivered {
                queue: q.clone(),
                id: existing,
                attempts: 1,
            },
            Record::Removed {
                queue: q.clone(),
                id: existing,
            },
            Record::Enqueued {
                message: message(2),
                dedup_until: None,
            },
            Record::Removed {
                queue: q.clone(),
                id: MessageId(2),
            },
            Record::Requeued {
                queue: q,
                id: MessageId(99),
                priority: 0,
                seq: 99,
                not_before: 0,
            },
        ];
        let (commands, plan) = plan(&placements, &batch);
        assert_eq!(
            commands,
            [
                format!("ZREM p:{{q}}:ready {existing}"),
                format!("DEL p:{{q}}:msg:{existing}")
            ],
            "no write for the message enqueued and removed, none for the unknown one"
        );
        assert_eq!(plan.changes.len(), 2);
    }
}
