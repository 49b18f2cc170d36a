//! Messages, their ids, and what producers and consumers exchange with the engine.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::UnixMillis;

/// A hash map keyed by message id, with a fast hasher: ids are minted by the engine, never
/// chosen by a client, so SipHash's flood resistance buys nothing here, and it was ~3% of the
/// server's CPU under load. Make one with `IdMap::default()`.
pub type IdMap<V> = std::collections::HashMap<MessageId, V, foldhash::fast::RandomState>;

/// A message id: unique and time-ordered (milliseconds since the epoch in the top 48 bits, a
/// counter below), shown in the familiar 8-4-4-4-12 hex form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId(pub u128);

impl MessageId {
    /// The millisecond timestamp this id was minted at.
    pub fn timestamp_ms(self) -> UnixMillis {
        (self.0 >> 80) as UnixMillis
    }
}

impl MessageId {
    /// The 8-4-4-4-12 form as ASCII bytes. Written by hand: ids are formatted several times
    /// per message (Redis keys, JSON frames), and the formatting machinery was a large part of
    /// a commit's CPU time.
    pub fn to_ascii(self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut position = 0;
        for index in 0..32 {
            if matches!(index, 8 | 12 | 16 | 20) {
                position += 1;
            }
            let shift = (31 - index) * 4;
            out[position] = HEX[((self.0 >> shift) & 0xf) as usize];
            position += 1;
        }
        out
    }

    /// The 8-4-4-4-12 form as a `String`, without the formatting machinery `to_string` goes
    /// through (see [`MessageId::to_ascii`]).
    pub fn to_text(self) -> String {
        let ascii = self.to_ascii();
        std::str::from_utf8(&ascii)
            .expect("hex digits and dashes are ASCII")
            .to_owned()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ascii = self.to_ascii();
        f.write_str(std::str::from_utf8(&ascii).expect("hex digits and dashes are ASCII"))
    }
}

/// The text given could not be read as a message id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a message id (expected 32 hex digits, optionally in 8-4-4-4-12 form): {0:?}")]
pub struct ParseMessageIdError(pub String);

impl FromStr for MessageId {
    type Err = ParseMessageIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits: String = text.chars().filter(|c| *c != '-').collect();
        let well_formed = digits.len() == 32
            && digits.chars().all(|c| c.is_ascii_hexdigit())
            && (text.len() == 32 || text.len() == 36);
        if !well_formed {
            return Err(ParseMessageIdError(text.to_string()));
        }
        u128::from_str_radix(&digits, 16)
            .map(MessageId)
            .map_err(|_| ParseMessageIdError(text.to_string()))
    }
}

/// Proof of a current lease: only its holder may ack, nack or extend the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseToken(pub u64);

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for LeaseToken {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(text, 16)
            .map(LeaseToken)
            .map_err(|_| format!("not a lease token (expected 16 hex digits): {text:?}"))
    }
}

/// Small string headers carried beside the payload.
pub type Headers = BTreeMap<String, String>;

/// What a producer hands to `enqueue`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewMessage {
    /// Opaque payload bytes.
    pub payload: Vec<u8>,
    /// Higher is delivered first; FIFO within one priority.
    pub priority: u8,
    /// String headers (metadata) kept with the message.
    pub headers: Headers,
    /// Deliver no sooner than this many milliseconds after enqueue.
    pub delay_ms: u64,
    /// Time to live in milliseconds, overriding the queue's `message_ttl_ms`; `Some(0)` means
    /// never expire.
    pub ttl_ms: Option<u64>,
    /// Attempts allowed, overriding the queue's `max_attempts`.
    pub max_attempts: Option<u32>,
    /// A second enqueue with this key inside the dedup window returns the first message's id.
    pub dedup_key: Option<String>,
}

impl NewMessage {
    /// A message with this payload and every other field at its default.
    pub fn new(payload: impl Into<Vec<u8>>) -> Self {
        Self {
            payload: payload.into(),
            ..Self::default()
        }
    }

    /// Sets the priority.
    pub fn with_priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the delivery delay in milliseconds.
    pub fn with_delay_ms(mut self, delay_ms: u64) -> Self {
        self.delay_ms = delay_ms;
        self
    }

    /// Sets the dedup key.
    pub fn with_dedup_key(mut self, key: impl Into<String>) -> Self {
        self.dedup_key = Some(key.into());
        self
    }
}

/// Why a message stopped being deliverable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeadReason {
    /// It was delivered `max_attempts` times without an ack.
    MaxAttempts,
    /// Its time to live ran out.
    Expired,
}

impl DeadReason {
    /// The reason as shown to people and over the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::MaxAttempts => "max_attempts",
            DeadReason::Expired => "expired",
        }
    }
}

/// A message as the storage keeps it: everything needed to rebuild the engine's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Unique, time-ordered id.
    pub id: MessageId,
    /// The queue holding it.
    pub queue: Arc<str>,
    /// Enqueue order; FIFO within a priority follows it.
    pub seq: u64,
    /// Higher first.
    pub priority: u8,
    /// Opaque payload (encoded as one byte string, not a sequence of numbers).
    #[serde(with = "payload_bytes")]
    pub payload: Arc<[u8]>,
    /// String headers.
    pub headers: Headers,
    /// When it was enqueued.
    pub enqueued_at: UnixMillis,
    /// Not delivered before this time.
    pub not_before: UnixMillis,
    /// Expires at this time (`None`: never).
    pub expires_at: Option<UnixMillis>,
    /// Deliveries allowed.
    pub max_attempts: u32,
    /// Deliveries so far.
    pub attempts: u32,
    /// The dedup key it was enqueued with.
    pub dedup_key: Option<String>,
    /// Set once the message is a dead letter: why, and when.
    pub dead: Option<(DeadReason, UnixMillis)>,
}

/// A message handed to a consumer under a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message, with `attempts` counting this delivery.
    pub message: StoredMessage,
    /// The token that acks, nacks or extends this lease.
    pub token: LeaseToken,
    /// When the lease runs out and the message becomes ready again.
    pub lease_deadline: UnixMillis,
}

/// A dead letter as listed to an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message as it was when it died.
    pub message: StoredMessage,
    /// Why it died.
    pub reason: DeadReason,
    /// When it died.
    pub died_at: UnixMillis,
}

/// Where a message is now, for receipts and status queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageState {
    /// Waiting to be delivered.
    Ready,
    /// Waiting until `not_before`.
    Delayed {
        /// When it becomes ready.
        until: UnixMillis,
    },
    /// Out with a consumer.
    Leased {
        /// The current lease's token.
        token: LeaseToken,
        /// When the lease runs out.
        deadline: UnixMillis,
    },
    /// A dead letter.
    Dead {
        /// Why it died.
        reason: DeadReason,
        /// When.
        at: UnixMillis,
    },
}

/// What `enqueue` did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The message's id (the earlier message's id when deduplicated).
    pub id: MessageId,
    /// True when the dedup key matched an earlier message and nothing new was stored.
    pub deduplicated: bool,
}

/// Serde for payloads as byte strings: one length and the raw bytes, instead of serde's
/// default of a sequence with one element per byte.
mod payload_bytes {
    use std::fmt;
    use std::sync::Arc;

    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(payload: &Arc<[u8]>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(payload)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<[u8]>, D::Error> {
        deserializer.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Arc<[u8]>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a byte string")
        }

        fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
            Ok(Arc::from(bytes))
        }

        fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Self::Value, E> {
            Ok(Arc::from(bytes))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(byte) = seq.next_element::<u8>()? {
                bytes.push(byte);
            }
            Ok(Arc::from(bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_shows_as_dashed_hex_and_parses_back() {
        let id = MessageId(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        assert_eq!(id.to_string(), "01234567-89ab-cdef-fedc-ba9876543210");
        assert_eq!(id.to_string().parse::<MessageId>(), Ok(id));
        assert_eq!(
            MessageId(1).to_string(),
            "00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(
            MessageId(u128::MAX).to_string().parse(),
            Ok(MessageId(u128::MAX))
        );
    }
}
