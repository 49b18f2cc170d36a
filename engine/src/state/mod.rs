//! Pure queue state: no I/O and no clock reads (`now` is an argument). Every operation changes
//! the in-memory indices and returns the WAL records that describe the change, so the same
//! state can be rebuilt from storage and driven by property tests and simulations.
//!
//! Invariant: every live message id is in exactly one of its queue's `ready`, `delayed`,
//! `leased` or `dead` indices, and `entries` holds exactly those ids.

mod ops;
mod queue;
mod restore;

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::UnixMillis;
use crate::message::{IdMap, LeaseToken, MessageId, MessageState, StoredMessage};
use crate::wal::Record;

pub(crate) use queue::Queue;
pub use queue::{QueueCounters, QueueStats};

/// Where one message is, beside the message itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Ready,
    Delayed,
    Leased {
        token: LeaseToken,
        deadline: UnixMillis,
    },
    Dead,
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub message: StoredMessage,
    pub status: Status,
}

/// Mints strictly increasing, time-ordered message ids, even if the clock steps backwards, and
/// keeps a durable reservation ahead of them ([`Record::IdsMinted`]) so that a server taking
/// over on a machine whose clock is behind never mints an id again.
#[derive(Debug, Default)]
struct IdGenerator {
    last: u128,
    /// The end (in ms, an id's top bits) of the reservation committed or on its way.
    reserved_until: UnixMillis,
}

/// How far ahead of the ids minted a reservation reaches, in ms: one small record per this
/// much time while messages are being sent.
const ID_RESERVATION_MS: UnixMillis = 60_000;

impl IdGenerator {
    /// The next id; when it leaves the reservation, a new one is written to `out` first (in the
    /// same batch as the id's message, so it is durable before the id is acknowledged).
    fn next(&mut self, now: UnixMillis, out: &mut Vec<Record>) -> MessageId {
        let from_clock = (now as u128) << 80;
        self.last = from_clock.max(self.last + 1);
        let minted_in = (self.last >> 80) as UnixMillis;
        if minted_in >= self.reserved_until {
            self.reserved_until = minted_in + ID_RESERVATION_MS;
            out.push(Record::IdsMinted {
                until: self.reserved_until,
            });
        }
        MessageId(self.last)
    }
}

/// Lease tokens: a counter scrambled by splitmix64, so tokens do not reveal delivery order.
#[derive(Debug)]
struct TokenGenerator {
    state: u64,
}

impl TokenGenerator {
    fn next(&mut self) -> LeaseToken {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        LeaseToken(z ^ (z >> 31))
    }
}

/// All queues and messages.
#[derive(Debug)]
pub struct State {
    queues: HashMap<Arc<str>, Queue>,
    entries: IdMap<Entry>,
    next_seq: u64,
    ids: IdGenerator,
    tokens: TokenGenerator,
}

impl State {
    /// An empty state; `token_seed` makes lease tokens reproducible in simulations.
    pub fn new(token_seed: u64) -> Self {
        Self {
            queues: HashMap::new(),
            entries: IdMap::default(),
            next_seq: 1,
            ids: IdGenerator::default(),
            tokens: TokenGenerator { state: token_seed },
        }
    }

    /// Names of all queues, sorted.
    pub fn queue_names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<_> = self.queues.keys().cloned().collect();
        names.sort();
        names
    }

    /// One queue's numbers, or `None` when no such queue exists.
    pub fn stats(&self, queue: &str) -> Option<QueueStats> {
        self.queues.get(queue).map(Queue::stats)
    }

    /// A message and where it is now.
    pub fn message(&self, id: MessageId) -> Option<(StoredMessage, MessageState)> {
        let entry = self.entries.get(&id)?;
        let state = match entry.status {
            Status::Ready => MessageState::Ready,
            Status::Delayed => MessageState::Delayed {
                until: entry.message.not_before,
            },
            Status::Leased { token, deadline } => MessageState::Leased { token, deadline },
            Status::Dead => {
                let (reason, at) = entry.message.dead.expect("dead entry records its reason");
                MessageState::Dead { reason, at }
            }
        };
        Some((entry.message.clone(), state))
    }

    /// The earliest moment anything in any queue falls due.
    pub fn next_due(&self) -> Option<UnixMillis> {
        self.queues.values().filter_map(Queue::next_due).min()
    }

    /// Live messages held, across all queues.
    pub fn message_count(&self) -> usize {
        self.entries.len()
    }

    /// Checks the structural invariants; a failure is a bug in the engine. Used by tests.
    pub fn check_invariants(&self) {
        let mut indexed = 0usize;
        for queue in self.queues.values() {
            for (_, _, id) in &queue.ready {
                assert_eq!(self.entries[id].status, Status::Ready, "ready index");
            }
            for (due, id) in &queue.delayed {
                assert_eq!(self.entries[id].status, Status::Delayed, "delayed index");
                assert_eq!(self.entries[id].message.not_before, *due);
            }
            for (deadline, id) in &queue.leased {
                match self.entries[id].status {
                    Status::Leased { deadline: d, .. } => assert_eq!(d, *deadline),
                    other => panic!("leased index holds a {other:?} message"),
                }
            }
            for (_, id) in &queue.dead {
                assert_eq!(self.entries[id].status, Status::Dead, "dead index");
            }
            indexed += queue.size() as usize;
        }
        assert_eq!(
            indexed,
            self.entries.len(),
            "every entry indexed exactly once"
        );
        for entry in self.entries.values() {
            assert!(entry.message.attempts <= entry.message.max_attempts);
        }
    }
}
