//! Key names and sorted-set scores: the layout a person sees with `redis-cli`.
//!
//! Every key of one queue carries the queue name as a `{hash tag}`, so a queue's keys share one
//! Redis Cluster slot. Suffixes never contain `}`, so the queue name of any key is everything
//! between the first `{` after the prefix and the last `}`: two queues can never share a key,
//! whatever characters their names hold.

/// Prefix used when none is configured.
pub const PREFIX_DEFAULT: &str = "switchboard:";

/// Bits of the ready score that hold the sequence number; the priority sits above them.
const READY_SEQ_BITS: u32 = 44;
/// Sequence numbers at or beyond this no longer fit below the priority in a ready score.
pub(crate) const READY_SEQ_LIMIT: u64 = 1 << READY_SEQ_BITS;

/// Key names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

/// The per-queue index a message sits in. A message out with a consumer (leased) sits in
/// none: leases are not durable, and after a restart it is ready again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Index {
    /// `{queue}:ready`, a sorted set in delivery order.
    Ready,
    /// `{queue}:delayed`, a sorted set by due time.
    Delayed,
    /// `{queue}:dead`, a sorted set by death time.
    Dead,
}

impl Index {
    /// Every index, in the order recovery reads them.
    pub(crate) const ALL: [Index; 3] = [Index::Ready, Index::Delayed, Index::Dead];

    fn suffix(self) -> &'static str {
        match self {
            Index::Ready => "ready",
            Index::Delayed => "delayed",
            Index::Dead => "dead",
        }
    }
}

/// The per-queue hashes that hold messages, each mapping a message id to one field of it (see
/// `message_fields.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MessageHash {
    /// `{queue}:payload`: the payload bytes.
    Payload,
    /// `{queue}:meta`: JSON of everything else (priority, attempts, due time, dead letter...).
    Meta,
}

impl MessageHash {
    /// Every message hash.
    pub(crate) const ALL: [MessageHash; 2] = [MessageHash::Payload, MessageHash::Meta];

    fn suffix(self) -> &'static str {
        match self {
            MessageHash::Payload => "payload",
            MessageHash::Meta => "meta",
        }
    }
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The set of every queue name: recovery starts here instead of scanning the keyspace.
    pub(crate) fn queues(&self) -> String {
        format!("{}queues", self.prefix)
    }

    /// The owner lease: holds the id of the server that owns the prefix, with a TTL.
    pub(crate) fn owner(&self) -> String {
        format!("{}owner", self.prefix)
    }

    /// Where the owner serves: a hash with `owner` (its id) and `url`.
    pub(crate) fn active(&self) -> String {
        format!("{}active", self.prefix)
    }

    /// The fencing counter: each new owner takes the next value.
    pub(crate) fn fence(&self) -> String {
        format!("{}fence", self.prefix)
    }

    /// `<fencing token> <batch number>` of the last batch applied (see the commit script).
    pub(crate) fn applied(&self) -> String {
        format!("{}applied", self.prefix)
    }

    /// A list that holds a batch too large to send in one command until a script applies it.
    pub(crate) fn staging(&self) -> String {
        format!("{}staging", self.prefix)
    }

    fn queue_key(&self, queue: &str, suffix: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + queue.len() + 3 + suffix.len());
        key.push_str(&self.prefix);
        key.push('{');
        key.push_str(queue);
        key.push_str("}:");
        key.push_str(suffix);
        key
    }

    pub(crate) fn index(&self, queue: &str, index: Index) -> String {
        self.queue_key(queue, index.suffix())
    }

    /// The queue's configuration, a JSON string.
    pub(crate) fn config(&self, queue: &str) -> String {
        self.queue_key(queue, "config")
    }

    /// The queue's remembered dedup keys: a hash from key to `<message id> <until ms>`.
    pub(crate) fn dedup(&self, queue: &str) -> String {
        self.queue_key(queue, "dedup")
    }

    /// One of the queue's three message hashes (id → field).
    pub(crate) fn messages(&self, queue: &str, hash: MessageHash) -> String {
        self.queue_key(queue, hash.suffix())
    }

    /// The layout version of the data under the prefix.
    pub(crate) fn layout(&self) -> String {
        format!("{}layout", self.prefix)
    }
}

/// The ready score: higher priority first, then enqueue order. It stays an exact integer in a
/// double because 255 * 2^44 + 2^44 < 2^53. `None` when `seq` does not fit below the priority.
pub(crate) fn ready_score(priority: u8, seq: u64) -> Option<u64> {
    (seq < READY_SEQ_LIMIT).then(|| (u64::from(u8::MAX - priority) << READY_SEQ_BITS) + seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_queue_hash_tag() {
        let keys = Keys::new(PREFIX_DEFAULT);
        assert_eq!(keys.index("jobs", Index::Ready), "switchboard:{jobs}:ready");
        assert_eq!(
            keys.messages("jobs", MessageHash::Payload),
            "switchboard:{jobs}:payload"
        );
        assert_eq!(keys.queues(), "switchboard:queues");
    }

    #[test]
    fn ready_score_orders_priority_then_sequence() {
        let high_late = ready_score(9, 1000).unwrap();
        let low_early = ready_score(1, 1).unwrap();
        assert!(high_late < low_early, "higher priority must score lower");
        assert!(ready_score(5, 1).unwrap() < ready_score(5, 2).unwrap());
        let max = ready_score(0, READY_SEQ_LIMIT - 1).unwrap();
        assert!(max < (1 << 53), "scores must stay exact in a double");
        assert_eq!(max as f64 as u64, max);
        assert_eq!(ready_score(0, READY_SEQ_LIMIT), None);
    }
}
