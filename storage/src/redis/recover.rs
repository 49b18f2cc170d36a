//! Reading every queue and message back into a `Snapshot`: the queue registry first, then each
//! queue's indexes page by page, then the listed messages' fields from the message hashes in
//! pipelined chunks. Nothing else writes under the prefix meanwhile: we own it.

use std::collections::HashMap;
use std::sync::Arc;

use redis::{Connection, RedisError};
use switchboard_engine::{DedupEntry, MessageId, QueueConfig, Snapshot, StorageError};

use super::keys::{Index, Keys, MessageHash};
use super::message_fields::{self, Fields, State};
use super::placement::{Placed, Places};

/// Ids read per `ZRANGE` / `SSCAN` page.
const PAGE_IDS: usize = 10_000;
/// Messages whose fields are fetched per pipelined round trip (one HMGET per message hash).
const MESSAGES_PER_ROUND_TRIP: usize = 1_000;

/// Why recovery stopped: Redis failed (maybe transiently), or the data is malformed.
pub(crate) enum RecoverFailure {
    Redis(RedisError),
    Corrupt(StorageError),
}

impl From<RedisError> for RecoverFailure {
    fn from(error: RedisError) -> Self {
        RecoverFailure::Redis(error)
    }
}

fn corrupt(text: String) -> RecoverFailure {
    RecoverFailure::Corrupt(StorageError::Corrupt(text))
}

/// Reads the whole state under `keys`' prefix, and where each message is listed.
pub(crate) fn read_snapshot(
    connection: &mut Connection,
    keys: &Keys,
) -> Result<(Snapshot, HashMap<MessageId, Placed>), RecoverFailure> {
    let mut snapshot = Snapshot::default();
    let mut placements = HashMap::new();
    for name in queue_names(connection, keys)? {
        let queue: Arc<str> = Arc::from(name.as_str());
        snapshot
            .queues
            .push((queue.clone(), read_config(connection, keys, &queue)?));
        snapshot.dedup.extend(read_dedup(connection, keys, &queue)?);
        let hashes = MessageHash::ALL.map(|hash| keys.messages(&queue, hash));
        let ids = read_ids(connection, keys, &queue)?;
        for chunk in ids.chunks(MESSAGES_PER_ROUND_TRIP) {
            let mut pipeline = redis::pipe();
            for hash in &hashes {
                pipeline.cmd("HMGET").arg(hash);
                for (id, _) in chunk {
                    pipeline.arg(id.to_string());
                }
            }
            let [payloads, metas, states]: [Vec<Option<Vec<u8>>>; 3] = pipeline
                .query::<Vec<Vec<Option<Vec<u8>>>>>(connection)?
                .try_into()
                .map_err(|_| {
                    corrupt("HMGET of three hashes gave other than three replies".into())
                })?;
            let fields = payloads.into_iter().zip(metas).zip(states);
            for ((id, places), ((payload, meta), state)) in chunk.iter().zip(fields) {
                let message = message_fields::decode(
                    &queue,
                    *id,
                    Fields {
                        payload: (&hashes[0], payload),
                        meta: (&hashes[1], meta),
                        state: (&hashes[2], state),
                    },
                )
                .map_err(RecoverFailure::Corrupt)?;
                let placed = Placed {
                    places: *places,
                    state: State::of(&message),
                };
                placements.insert(*id, placed);
                snapshot.messages.push(message);
            }
        }
    }
    snapshot.messages.sort_by_key(|message| message.id);
    Ok((snapshot, placements))
}

fn queue_names(connection: &mut Connection, keys: &Keys) -> Result<Vec<String>, RecoverFailure> {
    let registry = keys.queues();
    let raw_names: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(&registry).query(connection)?;
    let mut names = raw_names
        .into_iter()
        .map(|raw| {
            String::from_utf8(raw).map_err(|error| {
                corrupt(format!(
                    "queue registry {registry} holds a name that is not UTF-8: {:?}",
                    error.as_bytes()
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    names.sort();
    Ok(names)
}

fn read_config(
    connection: &mut Connection,
    keys: &Keys,
    queue: &str,
) -> Result<QueueConfig, RecoverFailure> {
    let key = keys.config(queue);
    let json: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(connection)?;
    let json = json.ok_or_else(|| {
        corrupt(format!(
            "queue {queue:?} is listed in {} but its configuration {key} is missing",
            keys.queues()
        ))
    })?;
    serde_json::from_slice(&json).map_err(|error| {
        corrupt(format!(
            "queue configuration {key} is not a valid configuration: {error}"
        ))
    })
}

fn read_dedup(
    connection: &mut Connection,
    keys: &Keys,
    queue: &Arc<str>,
) -> Result<Vec<DedupEntry>, RecoverFailure> {
    let key = keys.dedup(queue);
    let entries: HashMap<String, String> = redis::cmd("HGETALL").arg(&key).query(connection)?;
    let mut dedup = entries
        .into_iter()
        .map(|(dedup_key, value)| {
            let parsed = value.split_once(' ').and_then(|(id, until)| {
                Some((id.parse::<MessageId>().ok()?, until.parse::<u64>().ok()?))
            });
            let (id, until) = parsed.ok_or_else(|| {
                corrupt(format!(
                    "dedup hash {key}, field {dedup_key:?}: {value:?} is not \
                     \"<message id> <until ms>\""
                ))
            })?;
            Ok(DedupEntry {
                queue: queue.clone(),
                key: dedup_key,
                id,
                until,
            })
        })
        .collect::<Result<Vec<_>, RecoverFailure>>()?;
    dedup.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(dedup)
}

/// Every id in the queue's indexes, each once, with the indexes that list it.
fn read_ids(
    connection: &mut Connection,
    keys: &Keys,
    queue: &str,
) -> Result<Vec<(MessageId, Places)>, RecoverFailure> {
    let mut position: HashMap<MessageId, usize> = HashMap::new();
    let mut ids: Vec<(MessageId, Places)> = Vec::new();
    for index in Index::ALL {
        let key = keys.index(queue, index);
        let members = if index.is_sorted() {
            read_sorted_set(connection, &key)?
        } else {
            read_set(connection, &key)?
        };
        for member in members {
            let id = member.parse::<MessageId>().map_err(|_| {
                corrupt(format!(
                    "index {key} holds {member:?}, which is not a message id"
                ))
            })?;
            match position.get(&id) {
                Some(&at) => ids[at].1 = ids[at].1.with(index),
                None => {
                    position.insert(id, ids.len());
                    ids.push((id, Places::only(index)));
                }
            }
        }
    }
    Ok(ids)
}

fn read_sorted_set(connection: &mut Connection, key: &str) -> Result<Vec<String>, RedisError> {
    let mut members = Vec::new();
    loop {
        let start = members.len();
        let page: Vec<String> = redis::cmd("ZRANGE")
            .arg(key)
            .arg(start)
            .arg(start + PAGE_IDS - 1)
            .query(connection)?;
        let done = page.len() < PAGE_IDS;
        members.extend(page);
        if done {
            return Ok(members);
        }
    }
}

fn read_set(connection: &mut Connection, key: &str) -> Result<Vec<String>, RedisError> {
    let mut members = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg(key)
            .arg(cursor)
            .arg("COUNT")
            .arg(PAGE_IDS)
            .query(connection)?;
        members.extend(page);
        if next == 0 {
            return Ok(members);
        }
        cursor = next;
    }
}
