//! Index, message and dedup changes of many messages written as few multi-member commands
//! (ZREM, ZADD, HSET, HDEL), each within the commit script's word limit.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::encode::BatchEncoder;
use super::keys::{Index, Keys, MessageHash};

/// Members (or fields) per grouped command: well inside the script's word limit.
const MEMBERS_PER_COMMAND: usize = 1_000;
/// A grouped HSET is closed once its values hold this many bytes, so that large payloads do
/// not make one command (and the script's copy of it) as large as the whole batch.
const HSET_BYTES_TARGET: usize = 1024 * 1024;

/// One index of one queue.
pub(crate) type IndexOf = (Arc<str>, Index);
/// One message hash of one queue.
pub(crate) type HashOf = (Arc<str>, MessageHash);
/// A message's field in a message hash: its id and the value.
pub(crate) type Field = (String, Arc<[u8]>);
/// A member joining an index, with its score.
pub(crate) type Addition = (u64, String);

/// Index and key changes of many messages, written as few multi-member commands.
#[derive(Default)]
pub(crate) struct Groups {
    /// Queue names to add to the registry.
    pub registry: Vec<String>,
    /// Members leaving an index.
    pub removals: BTreeMap<IndexOf, Vec<String>>,
    /// Messages whose fields to delete from every message hash, per queue.
    pub forgets: BTreeMap<Arc<str>, Vec<String>>,
    /// Members joining an index.
    pub additions: BTreeMap<IndexOf, Vec<Addition>>,
    /// Message fields to write: id and value, per queue and hash.
    pub fields: BTreeMap<HashOf, Vec<Field>>,
}

impl Groups {
    pub(crate) fn remove(&mut self, queue: &Arc<str>, index: Index, member: &str) {
        let members = self.removals.entry((queue.clone(), index)).or_default();
        members.push(member.to_string());
    }

    pub(crate) fn add(&mut self, queue: &Arc<str>, index: Index, score: u64, member: String) {
        let members = self.additions.entry((queue.clone(), index)).or_default();
        members.push((score, member));
    }

    /// Deletes the message's fields from every message hash.
    pub(crate) fn forget(&mut self, queue: &Arc<str>, member: String) {
        self.forgets.entry(queue.clone()).or_default().push(member);
    }

    pub(crate) fn set(
        &mut self,
        queue: &Arc<str>,
        hash: MessageHash,
        member: &str,
        value: Arc<[u8]>,
    ) {
        let fields = self.fields.entry((queue.clone(), hash)).or_default();
        fields.push((member.to_string(), value));
    }

    /// Removals come before additions: a message never leaves and joins the same index. A
    /// message's fields are either deleted or written, never both.
    pub(crate) fn write(&self, units: &mut BatchEncoder, keys: &Keys) {
        let registry = keys.queues();
        for names in self.registry.chunks(MEMBERS_PER_COMMAND) {
            units
                .registry()
                .begin("SADD")
                .text(&registry)
                .texts(names.iter().map(String::as_str))
                .end();
        }
        for ((queue, index), members) in &self.removals {
            let key = keys.index(queue, *index);
            let out = units.queue(queue);
            for part in members.chunks(MEMBERS_PER_COMMAND) {
                out.begin("ZREM")
                    .text(&key)
                    .texts(part.iter().map(String::as_str))
                    .end();
            }
        }
        for (queue, members) in &self.forgets {
            let out = units.queue(queue);
            for hash in MessageHash::ALL {
                let key = keys.messages(queue, hash);
                for part in members.chunks(MEMBERS_PER_COMMAND) {
                    out.begin("HDEL")
                        .text(&key)
                        .texts(part.iter().map(String::as_str))
                        .end();
                }
            }
        }
        for ((queue, index), members) in &self.additions {
            let key = keys.index(queue, *index);
            let out = units.queue(queue);
            for part in members.chunks(MEMBERS_PER_COMMAND) {
                out.begin("ZADD").text(&key);
                for (score, member) in part {
                    out.number(*score).text(member);
                }
                out.end();
            }
        }
        for ((queue, hash), fields) in &self.fields {
            let key = keys.messages(queue, *hash);
            let out = units.queue(queue);
            let mut open = None::<(usize, usize)>;
            for (member, value) in fields {
                if let Some((pairs, bytes)) = open {
                    if pairs >= MEMBERS_PER_COMMAND || bytes >= HSET_BYTES_TARGET {
                        out.end();
                        open = None;
                    }
                }
                let (pairs, bytes) = open.get_or_insert_with(|| {
                    out.begin("HSET").text(&key);
                    (0, 0)
                });
                out.text(member).word(value);
                *pairs += 1;
                *bytes += value.len();
            }
            if open.is_some() {
                out.end();
            }
        }
    }
}

/// Writes dedup entries set (`Some(value)`) or forgotten (`None`), grouped per queue.
pub(crate) fn write_dedup(
    units: &mut BatchEncoder,
    keys: &Keys,
    dedup: &BTreeMap<(Arc<str>, &str), Option<String>>,
) {
    let mut sets: BTreeMap<&Arc<str>, Vec<(&str, &str)>> = BTreeMap::new();
    let mut forgets: BTreeMap<&Arc<str>, Vec<&str>> = BTreeMap::new();
    for ((queue, key), value) in dedup {
        match value {
            Some(value) => sets.entry(queue).or_default().push((key, value)),
            None => forgets.entry(queue).or_default().push(key),
        }
    }
    for (queue, forgets) in forgets {
        let hash = keys.dedup(queue);
        let out = units.queue(queue);
        for part in forgets.chunks(MEMBERS_PER_COMMAND) {
            out.begin("HDEL")
                .text(&hash)
                .texts(part.iter().copied())
                .end();
        }
    }
    for (queue, sets) in sets {
        let hash = keys.dedup(queue);
        let out = units.queue(queue);
        for part in sets.chunks(MEMBERS_PER_COMMAND) {
            out.begin("HSET").text(&hash);
            for (key, value) in part {
                out.text(key).text(value);
            }
            out.end();
        }
    }
}
