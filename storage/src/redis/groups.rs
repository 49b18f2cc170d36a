//! Index, key and dedup changes of many messages written as few multi-member commands
//! (ZREM, SREM, DEL, ZADD, SADD, HSET, HDEL), each within the commit script's word limit.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::encode::ChunkEncoder;
use super::keys::{Index, Keys};

/// Members (or keys) per grouped command: well inside the script's word limit.
const MEMBERS_PER_COMMAND: usize = 1_000;

/// One index of one queue.
pub(crate) type IndexOf = (Arc<str>, Index);
/// A member joining a sorted set (with its score) or a set (score `None`).
pub(crate) type Addition = (Option<u64>, String);

/// Index and key changes of many messages, written as few multi-member commands.
#[derive(Default)]
pub(crate) struct Groups {
    /// Queue names to add to the registry.
    pub registry: Vec<String>,
    /// Members leaving an index.
    pub removals: BTreeMap<IndexOf, Vec<String>>,
    /// Message hashes to delete, per queue.
    pub deletes: BTreeMap<Arc<str>, Vec<String>>,
    /// Members joining an index.
    pub additions: BTreeMap<IndexOf, Vec<Addition>>,
}

impl Groups {
    pub(crate) fn remove(&mut self, queue: &Arc<str>, index: Index, member: &str) {
        let members = self.removals.entry((queue.clone(), index)).or_default();
        members.push(member.to_string());
    }

    /// Removals come before additions: a message never leaves and joins the same index.
    pub(crate) fn write(&self, out: &mut ChunkEncoder, keys: &Keys) {
        let registry = keys.queues();
        for names in self.registry.chunks(MEMBERS_PER_COMMAND) {
            out.begin("SADD")
                .text(&registry)
                .texts(names.iter().map(String::as_str))
                .end();
        }
        for ((queue, index), members) in &self.removals {
            let key = keys.index(queue, *index);
            let command = if index.is_sorted() { "ZREM" } else { "SREM" };
            for part in members.chunks(MEMBERS_PER_COMMAND) {
                out.begin(command)
                    .text(&key)
                    .texts(part.iter().map(String::as_str))
                    .end();
            }
        }
        for message_keys in self.deletes.values() {
            for part in message_keys.chunks(MEMBERS_PER_COMMAND) {
                out.begin("DEL")
                    .texts(part.iter().map(String::as_str))
                    .end();
            }
        }
        for ((queue, index), members) in &self.additions {
            let key = keys.index(queue, *index);
            for part in members.chunks(MEMBERS_PER_COMMAND) {
                if index.is_sorted() {
                    out.begin("ZADD").text(&key);
                    for (score, member) in part {
                        out.number(score.unwrap_or(0)).text(member);
                    }
                } else {
                    let members = part.iter().map(|(_, member)| member.as_str());
                    out.begin("SADD").text(&key).texts(members);
                }
                out.end();
            }
        }
    }
}

/// Writes dedup entries set (`Some(value)`) or forgotten (`None`), grouped per queue.
pub(crate) fn write_dedup(
    out: &mut ChunkEncoder,
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
        for part in forgets.chunks(MEMBERS_PER_COMMAND) {
            out.begin("HDEL")
                .text(&hash)
                .texts(part.iter().copied())
                .end();
        }
    }
    for (queue, sets) in sets {
        let hash = keys.dedup(queue);
        for part in sets.chunks(MEMBERS_PER_COMMAND) {
            out.begin("HSET").text(&hash);
            for (key, value) in part {
                out.text(key).text(value);
            }
            out.end();
        }
    }
}
