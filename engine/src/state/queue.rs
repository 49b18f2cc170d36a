//! One queue's indices: which of its messages are ready, delayed, leased, dead, expiring, and
//! which dedup keys it remembers.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::clock::UnixMillis;
use crate::config::QueueConfig;
use crate::message::MessageId;

/// The ready ordering: priority descending, then enqueue sequence ascending (FIFO).
pub(crate) type ReadyKey = (Reverse<u8>, u64, MessageId);

/// Counters since the engine started (not persisted: they describe this process's work).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Messages accepted (deduplicated repeats not counted).
    pub enqueued: u64,
    /// Enqueues answered with an earlier message's id.
    pub deduplicated: u64,
    /// Deliveries made (every lease of every message).
    pub delivered: u64,
    /// Messages acknowledged.
    pub acked: u64,
    /// Messages put back for another attempt (nack or lease timeout).
    pub retried: u64,
    /// Messages that became dead letters (attempts used up, or expired with dead letters on).
    pub dead_lettered: u64,
    /// Messages whose time to live ran out.
    pub expired: u64,
    /// Messages dropped without a dead letter (dead letters off).
    pub dropped: u64,
}

/// A queue's numbers at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    /// Queue name.
    pub name: Arc<str>,
    /// Its configuration.
    pub config: QueueConfig,
    /// Messages ready for delivery now.
    pub ready: u64,
    /// Messages waiting for their delay or retry backoff.
    pub delayed: u64,
    /// Messages out with consumers.
    pub leased: u64,
    /// Dead letters.
    pub dead: u64,
    /// Counters since start.
    pub counters: QueueCounters,
}

#[derive(Debug)]
pub(crate) struct Queue {
    pub name: Arc<str>,
    pub config: QueueConfig,
    pub ready: BTreeSet<ReadyKey>,
    pub delayed: BTreeSet<(UnixMillis, MessageId)>,
    pub leased: BTreeSet<(UnixMillis, MessageId)>,
    /// Ready and delayed messages that have an expiry (leased ones are checked on return).
    pub expiring: BTreeSet<(UnixMillis, MessageId)>,
    /// Dead letters in the order they died.
    pub dead: BTreeSet<(UnixMillis, MessageId)>,
    pub dedup: HashMap<String, (MessageId, UnixMillis)>,
    pub dedup_expiry: BTreeSet<(UnixMillis, String)>,
    pub counters: QueueCounters,
}

impl Queue {
    pub fn new(name: Arc<str>, config: QueueConfig) -> Self {
        Self {
            name,
            config,
            ready: BTreeSet::new(),
            delayed: BTreeSet::new(),
            leased: BTreeSet::new(),
            expiring: BTreeSet::new(),
            dead: BTreeSet::new(),
            dedup: HashMap::new(),
            dedup_expiry: BTreeSet::new(),
            counters: QueueCounters::default(),
        }
    }

    /// Messages held in any state: what `max_size` limits.
    pub fn size(&self) -> u64 {
        (self.ready.len() + self.delayed.len() + self.leased.len() + self.dead.len()) as u64
    }

    /// The earliest moment at which something in this queue falls due, if any.
    pub fn next_due(&self) -> Option<UnixMillis> {
        [
            self.delayed.first().map(|(at, _)| *at),
            self.leased.first().map(|(at, _)| *at),
            self.expiring.first().map(|(at, _)| *at),
            self.dedup_expiry.first().map(|(at, _)| *at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn stats(&self) -> QueueStats {
        QueueStats {
            name: self.name.clone(),
            config: self.config.clone(),
            ready: self.ready.len() as u64,
            delayed: self.delayed.len() as u64,
            leased: self.leased.len() as u64,
            dead: self.dead.len() as u64,
            counters: self.counters,
        }
    }
}
