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

/// The hash tag of the prefix-wide keys (owner lease, fencing counter, queue registry, ...):
/// they share one slot, so the script that checks ownership can reach them all. A queue's keys
/// may share that slot (a queue named `~`) but never a key name: the suffixes of queue keys
/// ([`QUEUE_SUFFIXES`]) and of these differ.
const GLOBAL_TAG: &str = "~";
/// Every suffix a queue's keys use.
#[cfg(test)]
pub(crate) const QUEUE_SUFFIXES: [&str; 8] = [
    "config", "ready", "delayed", "dead", "payload", "meta", "dedup", "applied",
];

/// One atomic unit of a commit: the keys one script call writes, all under one hash tag so that
/// Redis Cluster keeps them in one slot. Each has its own applied-batch number and fencing
/// token (its `applied` key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Unit {
    /// The prefix-wide keys: the queue registry (checked against the owner lease).
    Registry,
    /// One queue's keys.
    Queue(std::sync::Arc<str>),
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

    fn global(&self, suffix: &str) -> String {
        format!("{}{{{GLOBAL_TAG}}}:{suffix}", self.prefix)
    }

    /// The set of every queue name: recovery starts here instead of scanning the keyspace.
    pub(crate) fn queues(&self) -> String {
        self.global("queues")
    }

    /// The owner lease: holds the id of the server that owns the prefix, with a TTL.
    pub(crate) fn owner(&self) -> String {
        self.global("owner")
    }

    /// Where the owner serves: a hash with `owner` (its id) and `url`.
    pub(crate) fn active(&self) -> String {
        self.global("active")
    }

    /// The fencing counter: each new owner takes the next value.
    pub(crate) fn fence(&self) -> String {
        self.global("fence")
    }

    /// A list that holds a batch too large to send in one command until a script applies it
    /// (each owner appends its id).
    pub(crate) fn staging(&self) -> String {
        self.global("staging")
    }

    /// The layout version of the data under the prefix.
    pub(crate) fn layout(&self) -> String {
        self.global("layout")
    }

    /// `<fencing token> <batch number>` of the last batch that wrote `unit` (see the commit
    /// script): a batch at or below it is not applied again, and a token above ours means a
    /// newer owner fenced the unit off.
    pub(crate) fn applied(&self, unit: &Unit) -> String {
        match unit {
            Unit::Registry => self.global("committed"),
            Unit::Queue(queue) => self.queue_key(queue, "applied"),
        }
    }

    /// A key of layout 2, which kept the prefix-wide keys without a hash tag (read only to
    /// move such data to this layout).
    pub(crate) fn layout_2(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
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
}

/// The Redis Cluster slot of `key`: CRC16 (XMODEM) of its hash tag (or of the whole key when it
/// has none) modulo 16384, as Redis computes it. Used only to send `WAIT` to the master that
/// holds a unit; commands themselves are routed by redis-rs.
pub(crate) fn cluster_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|b| *b == b'{').and_then(|open| {
        let close = bytes[open + 1..].iter().position(|b| *b == b'}')?;
        (close > 0).then(|| &bytes[open + 1..open + 1 + close])
    });
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(bytes)) % 16384
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
        assert_eq!(keys.queues(), "switchboard:{~}:queues");
        assert_eq!(
            keys.applied(&Unit::Queue("jobs".into())),
            "switchboard:{jobs}:applied"
        );
        assert_eq!(keys.applied(&Unit::Registry), "switchboard:{~}:committed");
    }

    #[test]
    fn global_suffixes_never_name_a_queue_key() {
        let keys = Keys::new(PREFIX_DEFAULT);
        let queue_named_tag = Keys::new(PREFIX_DEFAULT);
        for global in [
            keys.queues(),
            keys.owner(),
            keys.active(),
            keys.fence(),
            keys.staging(),
            keys.layout(),
            keys.applied(&Unit::Registry),
        ] {
            for suffix in QUEUE_SUFFIXES {
                assert_ne!(global, queue_named_tag.queue_key(GLOBAL_TAG, suffix));
            }
        }
    }

    #[test]
    fn slots_follow_the_hash_tag_as_redis_computes_them() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.
        assert_eq!(cluster_slot("foo"), 12182);
        assert_eq!(
            cluster_slot("{user1000}.following"),
            cluster_slot("user1000")
        );
        assert_eq!(
            cluster_slot("switchboard:{jobs}:ready"),
            cluster_slot("jobs")
        );
        assert_eq!(cluster_slot("a{}b"), cluster_slot("a{}b"));
        assert_ne!(cluster_slot("a{}b"), cluster_slot(""));
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
