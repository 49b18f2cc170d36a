//! Reading every queue and message back into a `Snapshot`: the queue registry first, then each
//! queue (fenced off for this owner first), its indexes and its meta hash page by page, then the
//! payloads in chunks. Nothing else writes under the prefix meanwhile: we own it, and a deposed
//! owner's writes to a fenced queue are refused.

use std::collections::HashMap;
use std::sync::Arc;

use redis::RedisError;
use switchboard_engine::{DedupEntry, IdMap, MessageId, QueueConfig, Snapshot, StorageError};

use super::keys::{Index, Keys, MessageHash, Unit};
use super::link::Conn;
use super::message_fields::{self, Meta};
use super::placement::{Placed, Places};
use super::scripts;

/// Ids read per `ZRANGE` / `SSCAN` page.
const PAGE_IDS: usize = 10_000;
/// Payloads fetched per HMGET.
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

/// Reads the whole state under `keys`' prefix, and where each message is listed. Each queue
/// is fenced with `fencing_token` before it is read, so that a deposed owner still running
/// can change nothing read here (see `scripts::FENCE`).
pub(crate) fn read_snapshot(
    connection: &mut Conn,
    keys: &Keys,
    fencing_token: &str,
) -> Result<(Snapshot, IdMap<Placed>), RecoverFailure> {
    let mut snapshot = Snapshot::default();
    let mut placements = IdMap::default();
    for name in queue_names(connection, keys)? {
        let queue: Arc<str> = Arc::from(name.as_str());
        scripts::FENCE
            .key(keys.applied(&Unit::Queue(queue.clone())))
            .arg(fencing_token)
            .invoke::<i64>(connection)?;
        snapshot
            .queues
            .push((queue.clone(), read_config(connection, keys, &queue)?));
        snapshot.dedup.extend(read_dedup(connection, keys, &queue)?);
        let meta_key = keys.messages(&queue, MessageHash::Meta);
        let payload_key = keys.messages(&queue, MessageHash::Payload);
        let mut places = read_places(connection, keys, &queue)?;
        let metas = read_metas(connection, &meta_key)?;
        for chunk in metas.chunks(MESSAGES_PER_ROUND_TRIP) {
            let mut hmget = redis::cmd("HMGET");
            hmget.arg(&payload_key);
            for (id, _) in chunk {
                hmget.arg(id.to_string());
            }
            let payloads: Vec<Option<Vec<u8>>> = hmget.query(connection)?;
            for ((id, meta), payload) in chunk.iter().zip(payloads) {
                let payload = payload.ok_or_else(|| {
                    RecoverFailure::Corrupt(message_fields::corrupt(
                        &payload_key,
                        *id,
                        &format!("the payload is missing although {meta_key} holds the message"),
                    ))
                })?;
                snapshot.messages.push(meta.message(&queue, *id, payload));
                let placed = Placed {
                    places: places.remove(id).unwrap_or(Places::NONE),
                    meta: meta.clone(),
                };
                placements.insert(*id, placed);
            }
        }
        if let Some(id) = places.keys().min() {
            return Err(RecoverFailure::Corrupt(message_fields::corrupt(
                &meta_key,
                *id,
                "the meta is missing although the queue's indexes list the message",
            )));
        }
    }
    snapshot.messages.sort_by_key(|message| message.id);
    Ok((snapshot, placements))
}

/// Every message's meta, from the queue's meta hash, page by page.
fn read_metas(connection: &mut Conn, key: &str) -> Result<Vec<(MessageId, Meta)>, RecoverFailure> {
    let mut metas = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, page): (u64, Vec<(String, Vec<u8>)>) = redis::cmd("HSCAN")
            .arg(key)
            .arg(cursor)
            .arg("COUNT")
            .arg(PAGE_IDS)
            .query(connection)?;
        for (field, json) in page {
            let id = field.parse::<MessageId>().map_err(|_| {
                corrupt(format!(
                    "hash {key} has the field {field:?}, which is not a message id"
                ))
            })?;
            let meta = Meta::parse(key, id, &json).map_err(RecoverFailure::Corrupt)?;
            metas.push((id, meta));
        }
        if next == 0 {
            // HSCAN may return a field twice (when the hash is resized between pages).
            metas.sort_by_key(|(id, _)| *id);
            metas.dedup_by_key(|(id, _)| *id);
            return Ok(metas);
        }
        cursor = next;
    }
}

fn queue_names(connection: &mut Conn, keys: &Keys) -> Result<Vec<String>, RecoverFailure> {
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
    connection: &mut Conn,
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
    connection: &mut Conn,
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

/// The indexes listing each id in the queue's indexes (a leased message is in none).
fn read_places(
    connection: &mut Conn,
    keys: &Keys,
    queue: &str,
) -> Result<HashMap<MessageId, Places>, RecoverFailure> {
    let mut places: HashMap<MessageId, Places> = HashMap::new();
    for index in Index::ALL {
        let key = keys.index(queue, index);
        for member in read_sorted_set(connection, &key)? {
            let id = member.parse::<MessageId>().map_err(|_| {
                corrupt(format!(
                    "index {key} holds {member:?}, which is not a message id"
                ))
            })?;
            let entry = places.entry(id).or_insert(Places::NONE);
            *entry = entry.with(index);
        }
    }
    Ok(places)
}

fn read_sorted_set(connection: &mut Conn, key: &str) -> Result<Vec<String>, RedisError> {
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
