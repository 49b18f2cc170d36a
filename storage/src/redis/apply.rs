//! What each WAL record does to the Redis keys (the meaning is `SnapshotFold`'s).
//!
//! A batch is first folded into its net change per message: whether it is created (its three
//! fields written), its final state field, its final index, or its deletion; and the dedup keys
//! and queue configs it leaves. The changes of all messages are then grouped into
//! multi-member commands (one HSET per message hash, one ZREM/SREM/ZADD/SADD per index, one
//! HDEL per hash), so a batch of thousands of records costs the commit script few calls.
//!
//! Every command sets final values (HSET, ZADD, SADD, HDEL, never HINCRBY), planned from the
//! placements of the last successful commit, so a retry after a lost reply plans and does the
//! same again. A message the batch removes gets only its deletions, never a write that a retry
//! could turn into a half-written message. Records about a message that does not exist are
//! skipped (the fold's no-op).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use switchboard_engine::{MessageId, QueueConfig, Record, StorageError, StoredMessage};

use super::encode::{ChunkEncoder, EncodedBatch};
use super::groups::{write_dedup, Groups};
use super::keys::{ready_score, Index, Keys, MessageHash, READY_SEQ_LIMIT};
use super::message_fields::{meta_json, State};
use super::placement::{Placed, Placements, Places};

/// A batch's commands, and the placements they leave once applied (`None`: deleted).
pub(crate) struct Plan {
    pub encoded: EncodedBatch,
    pub changes: HashMap<MessageId, Option<Placed>>,
}

/// The net change a batch makes to one message.
struct MessageChange<'a> {
    queue: Arc<str>,
    /// What Redis held of it before the batch.
    before: Option<Placed>,
    /// Enqueued by this batch: its payload and meta are written.
    created: Option<&'a StoredMessage>,
    /// Its state as the batch leaves it.
    state: State,
    /// The state differs from what Redis holds.
    state_changed: bool,
    /// The index it ends in, with its score for a sorted set; `None`: it does not move.
    target: Option<(Index, Option<u64>)>,
    /// A move whose target reads the clock (a retry may choose differently): leave it in no
    /// index but the target, whatever the placements say.
    clear_other_indexes: bool,
    deleted: bool,
}

impl MessageChange<'_> {
    fn exists(&self) -> bool {
        !self.deleted && (self.created.is_some() || self.before.is_some())
    }

    fn update(&mut self, change: impl FnOnce(&mut State)) {
        change(&mut self.state);
        self.state_changed = true;
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
                change.deleted = false;
                change.state = State::of(message);
                change.state_changed = true;
                change.target = Some(target);
            }
            Record::Delivered {
                queue,
                id,
                attempts,
            } => {
                if let Some(change) = self.existing(queue, *id) {
                    change.update(|state| state.attempts = *attempts);
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
                    change.update(|state| state.not_before = *not_before);
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
                    change.update(|state| state.set_dead(Some((*reason, *at))));
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
                    change.update(|state| {
                        state.attempts = 0;
                        state.seq = *seq;
                        state.not_before = *now;
                        state.expires_at = *expires_at;
                        state.set_dead(None);
                    });
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

    /// The change of a message the batch has seen or the placements know (a placeholder state
    /// for an unknown one, which only an enqueue turns into a message).
    fn change(&mut self, queue: &Arc<str>, id: MessageId) -> &mut MessageChange<'a> {
        let placements = self.placements;
        self.messages.entry(id).or_insert_with(|| {
            self.order.push(id);
            let before = placements.get(id);
            MessageChange {
                queue: queue.clone(),
                before,
                created: None,
                state: before.map_or(
                    State {
                        attempts: 0,
                        seq: 0,
                        not_before: 0,
                        expires_at: None,
                        dead_reason: None,
                        died_at: None,
                    },
                    |placed| placed.state,
                ),
                state_changed: false,
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
            let before_places = change.before.map_or(Places::NONE, |placed| placed.places);
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
            if let Some(message) = change.created {
                groups.set(
                    queue,
                    MessageHash::Payload,
                    &member,
                    message.payload.clone(),
                );
                groups.set(queue, MessageHash::Meta, &member, meta_json(message).into());
            }
            if change.state_changed {
                groups.set(
                    queue,
                    MessageHash::State,
                    &member,
                    change.state.to_json().into(),
                );
            }
            let mut places = before_places;
            if let Some((target, score)) = change.target {
                let from = if change.clear_other_indexes {
                    Index::ALL.into_iter().fold(Places::NONE, Places::with)
                } else {
                    before_places
                };
                for index in from.indexes().filter(|index| *index != target) {
                    groups.remove(queue, index, &member);
                }
                groups.add(queue, target, score, member);
                places = Places::only(target);
            }
            let placed = Placed {
                places,
                state: change.state,
            };
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

    fn placed(id: u128, index: Index) -> (MessageId, Placed) {
        let places = Places::only(index);
        let state = State::of(&message(id));
        (MessageId(id), Placed { places, state })
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
    fn an_ack_of_a_leased_message_is_one_srem_and_an_hdel_per_hash() {
        let (id, leased) = placed(1, Index::Leased);
        let placements = Placements::from_map(HashMap::from([(id, leased)]));
        let q: Arc<str> = Arc::from("q");
        let (commands, plan) = plan(&placements, &[Record::Removed { queue: q, id }]);
        assert_eq!(
            commands,
            [
                format!("SREM p:{{q}}:leased {id}"),
                format!("HDEL p:{{q}}:payload {id}"),
                format!("HDEL p:{{q}}:meta {id}"),
                format!("HDEL p:{{q}}:state {id}"),
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
            4,
            "ZADD ready, HSET payload, meta, state: {commands:?}"
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
        assert!(commands[3].contains(r#"{"attempts":0,"seq":2,"not_before":5}"#));
        assert_eq!(plan.changes.len(), 3);
    }

    #[test]
    fn many_deliveries_share_their_commands() {
        let placements = Placements::from_map((1..=3).map(|id| placed(id, Index::Ready)).collect());
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
        assert_eq!(
            commands.len(),
            3,
            "one ZREM, one SADD, one HSET: {commands:?}"
        );
        assert!(commands.contains(&format!("ZREM p:{{q}}:ready {members}")));
        assert!(commands.contains(&format!("SADD p:{{q}}:leased {members}")));
        let state = plan.changes[&MessageId(2)].unwrap();
        assert_eq!(state.state.attempts, 1);
        assert_eq!(state.state.seq, 2, "the rest of the state is kept");
        assert_eq!(state.places, Places::only(Index::Leased));
    }

    #[test]
    fn a_message_removed_in_its_batch_gets_no_write() {
        let (existing, ready) = placed(1, Index::Ready);
        let placements = Placements::from_map(HashMap::from([(existing, ready)]));
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
                format!("HDEL p:{{q}}:state {existing}"),
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
