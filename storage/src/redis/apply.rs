//! What each WAL record does to the Redis keys (the meaning is `SnapshotFold`'s).
//!
//! A batch is first folded into its net change per message: whether it is created (its payload
//! written), its final meta field, its final index, or its deletion; and the dedup keys and
//! queue configs it leaves. The changes of all messages are then grouped into multi-member
//! commands (one HSET per message hash, one ZREM/ZADD per index, one HDEL per hash), so a batch
//! of thousands of records costs the commit script few calls.
//!
//! Every command sets final values (HSET, ZADD, HDEL, never HINCRBY), planned from the
//! placements of the last successful commit, so a retry after a lost reply plans and does the
//! same again. A message the batch removes gets only its deletions, never a write that a retry
//! could turn into a half-written message. Records about a message that does not exist are
//! skipped (the fold's no-op).

use std::collections::BTreeMap;
use std::sync::Arc;

use switchboard_engine::{IdMap, MessageId, QueueConfig, Record, StorageError, StoredMessage};

use super::encode::{BatchEncoder, EncodedBatch};
use super::groups::{write_dedup, Groups};
use super::keys::{ready_score, Index, Keys, MessageHash, READY_SEQ_LIMIT};
use super::message_fields::Meta;
use super::placement::{Placed, Placements, Places};

/// A batch's commands, and the placements they leave once applied (`None`: deleted).
pub(crate) struct Plan {
    pub encoded: EncodedBatch,
    pub changes: IdMap<Option<Placed>>,
}

/// The net change a batch makes to one message.
struct MessageChange<'a> {
    queue: Arc<str>,
    /// The indexes listing it before the batch (`None`: Redis did not hold it).
    before: Option<Places>,
    /// Enqueued by this batch: its payload is written.
    created: Option<&'a StoredMessage>,
    /// Its meta as the batch leaves it.
    meta: Option<Meta>,
    /// The meta differs from what Redis holds.
    meta_changed: bool,
    /// Where it ends: in an index (with its score), or (`Some(None)`) in none, leased;
    /// `None`: it does not move.
    target: Option<Option<(Index, u64)>>,
    /// A move whose target reads the clock (a retry may choose differently): leave it in no
    /// index but the target, whatever the placements say.
    clear_other_indexes: bool,
    deleted: bool,
}

impl MessageChange<'_> {
    fn exists(&self) -> bool {
        !self.deleted && (self.created.is_some() || self.before.is_some())
    }

    fn update(&mut self, change: impl FnOnce(&mut Meta)) {
        change(
            self.meta
                .as_mut()
                .expect("an existing message has its meta"),
        );
        self.meta_changed = true;
    }
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
        messages: IdMap::default(),
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
    messages: IdMap<MessageChange<'a>>,
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
                change.deleted = false;
                change.meta = Some(Meta::of(message));
                change.meta_changed = true;
                change.target = Some(Some(target));
            }
            Record::Delivered {
                queue,
                id,
                attempts,
            } => {
                if let Some(change) = self.existing(queue, *id) {
                    change.update(|meta| meta.attempts = *attempts);
                    change.target = Some(None);
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
                    (Index::Delayed, *not_before)
                } else {
                    (Index::Ready, score(*priority, *seq, *id)?)
                };
                if let Some(change) = self.existing(queue, *id) {
                    change.update(|meta| meta.not_before = *not_before);
                    change.target = Some(Some(target));
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
                    change.update(|meta| meta.dead = Some((*reason, *at)));
                    change.target = Some(Some((Index::Dead, *at)));
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
                    change.update(|meta| {
                        meta.attempts = 0;
                        meta.seq = *seq;
                        meta.not_before = *now;
                        meta.expires_at = *expires_at;
                        meta.dead = None;
                    });
                    change.target = Some(Some((Index::Ready, score)));
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
            let before = placements.get(id);
            MessageChange {
                queue: queue.clone(),
                before: before.map(|placed| placed.places),
                created: None,
                meta: before.map(|placed| placed.meta.clone()),
                meta_changed: false,
                target: None,
                clear_other_indexes: false,
                deleted: false,
            }
        })
    }

    /// The change of `id` if the message exists at this point of the batch.
    fn existing(&mut self, queue: &Arc<str>, id: MessageId) -> Option<&mut MessageChange<'a>> {
        let exists = match self.messages.get(&id) {
            Some(change) => change.exists(),
            None => self.placements.get(id).is_some(),
        };
        exists.then(|| self.change(queue, id))
    }

    fn emit(self, keys: &Keys) -> Plan {
        let mut out = BatchEncoder::default();
        let mut groups = Groups::default();
        let mut changes = IdMap::with_capacity_and_hasher(self.order.len(), Default::default());
        for queue in self.configs.keys() {
            groups.registry.push(queue.to_string());
        }
        for (queue, config) in &self.configs {
            let json = serde_json::to_vec(config).expect("a queue config always serializes");
            out.queue(queue)
                .begin("SET")
                .text(&keys.config(queue))
                .word(&json)
                .end();
        }
        for id in &self.order {
            let change = &self.messages[id];
            let queue = &change.queue;
            let member = id.to_text();
            let before_places = change.before.unwrap_or(Places::NONE);
            if change.deleted {
                if change.before.is_some() {
                    for index in before_places.indexes() {
                        groups.remove(queue, index, &member);
                    }
                    groups.forget(queue, member);
                }
                changes.insert(*id, None);
                continue;
            }
            if !change.exists() {
                continue;
            }
            let meta = change
                .meta
                .clone()
                .expect("an existing message has its meta");
            if let Some(message) = change.created {
                let payload = message.payload.clone();
                groups.set(queue, MessageHash::Payload, &member, payload);
            }
            if change.meta_changed {
                groups.set(queue, MessageHash::Meta, &member, meta.to_json().into());
            }
            let mut places = before_places;
            if let Some(target) = change.target {
                let from = if change.clear_other_indexes {
                    Index::ALL.into_iter().fold(Places::NONE, Places::with)
                } else {
                    before_places
                };
                let stays = |index: Index| target.is_some_and(|(to, _)| to == index);
                for index in from.indexes().filter(|index| !stays(*index)) {
                    groups.remove(queue, index, &member);
                }
                places = match target {
                    Some((index, score)) => {
                        groups.add(queue, index, score, member);
                        Places::only(index)
                    }
                    None => Places::NONE,
                };
            }
            let placed = Placed { places, meta };
            changes.insert(*id, Some(placed));
        }
        groups.write(&mut out, keys);
        write_dedup(&mut out, keys, &self.dedup);
        Plan {
            encoded: out.finish(),
            changes,
        }
    }
}

/// Where an enqueued message is listed: dead, delayed until its `not_before`, or ready.
fn enqueued_target(message: &StoredMessage) -> Result<(Index, u64), StorageError> {
    Ok(if let Some((_, died_at)) = message.dead {
        (Index::Dead, died_at)
    } else if message.not_before > message.enqueued_at {
        (Index::Delayed, message.not_before)
    } else {
        (
            Index::Ready,
            score(message.priority, message.seq, message.id)?,
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

    fn placed(id: u128, places: Places) -> (MessageId, Placed) {
        let meta = Meta::of(&message(id));
        (MessageId(id), Placed { places, meta })
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
    fn an_ack_of_a_leased_message_is_an_hdel_per_hash() {
        let (id, leased) = placed(1, Places::NONE);
        let placements = Placements::from_map(IdMap::from_iter([(id, leased)]));
        let q: Arc<str> = Arc::from("q");
        let (commands, plan) = plan(&placements, &[Record::Removed { queue: q, id }]);
        assert_eq!(
            commands,
            [
                format!("HDEL p:{{q}}:payload {id}"),
                format!("HDEL p:{{q}}:meta {id}"),
            ]
        );
        assert_eq!(plan.changes[&id], None);
    }

    #[test]
    fn a_batch_of_enqueues_writes_each_hash_once() {
        let batch: Vec<Record> = (1..=3)
            .map(|id| Record::Enqueued {
                message: message(id),
                dedup_until: None,
            })
            .collect();
        let (commands, plan) = plan(&Placements::default(), &batch);
        assert_eq!(
            commands.len(),
            3,
            "ZADD ready, HSET payload, HSET meta: {commands:?}"
        );
        let ids: Vec<String> = (1..=3).map(|id| MessageId(id).to_string()).collect();
        assert_eq!(
            commands[1],
            format!(
                "HSET p:{{q}}:payload {} body {} body {} body",
                ids[0], ids[1], ids[2]
            )
        );
        assert!(commands[2].starts_with("HSET p:{q}:meta "));
        assert!(commands[2].contains(r#""attempts":0,"seq":2,"not_before":5}"#));
        assert_eq!(plan.changes.len(), 3);
    }

    #[test]
    fn many_deliveries_share_their_commands() {
        let placements = Placements::from_map(
            (1..=3)
                .map(|id| placed(id, Places::only(Index::Ready)))
                .collect(),
        );
        let q: Arc<str> = Arc::from("q");
        let batch: Vec<Record> = (1..=3)
            .map(|id| Record::Delivered {
                queue: q.clone(),
                id: MessageId(id),
                attempts: 1,
            })
            .collect();
        let (commands, plan) = plan(&placements, &batch);
        let members = (1..=3)
            .map(|id| MessageId(id).to_string())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(commands.len(), 2, "one ZREM, one HSET: {commands:?}");
        assert!(commands.contains(&format!("ZREM p:{{q}}:ready {members}")));
        let leased = plan.changes[&MessageId(2)].clone().unwrap();
        assert_eq!(leased.meta.attempts, 1);
        assert_eq!(leased.meta.seq, 2, "the rest of the meta is kept");
        assert_eq!(
            leased.places,
            Places::NONE,
            "a leased message is in no index"
        );
    }

    #[test]
    fn a_message_removed_in_its_batch_gets_no_write() {
        let (existing, ready) = placed(1, Places::only(Index::Ready));
        let placements = Placements::from_map(IdMap::from_iter([(existing, ready)]));
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
                format!("HDEL p:{{q}}:payload {existing}"),
                format!("HDEL p:{{q}}:meta {existing}"),
            ],
            "no write for the message enqueued and removed, none for the unknown one"
        );
        assert_eq!(plan.changes.len(), 2);
    }

    #[test]
    fn large_payloads_split_the_hset() {
        let batch: Vec<Record> = (1..=5)
            .map(|id| Record::Enqueued {
                message: StoredMessage {
                    payload: vec![b'x'; 400 * 1024].into(),
                    ..message(id)
                },
                dedup_until: None,
            })
            .collect();
        let (commands, _) = plan(&Placements::default(), &batch);
        let payload_commands = commands
            .iter()
            .filter(|command| command.starts_with("HSET p:{q}:payload"))
            .count();
        assert_eq!(
            payload_commands, 2,
            "1 MiB per HSET: three, then two payloads"
        );
    }
}
