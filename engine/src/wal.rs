//! The write-ahead log: every state change is one [`Record`], and records are framed with a
//! format version and a checksum so that a torn or corrupted write is detected, never trusted.
//!
//! Frame layout (little endian): `version: u8 | body_len: u32 | crc32(body): u32 | body`, where
//! the body is the record encoded with bincode 2's standard configuration.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::clock::UnixMillis;
use crate::config::QueueConfig;
use crate::message::{DeadReason, MessageId, StoredMessage};

/// The frame format this build writes and reads.
pub const WAL_FORMAT_VERSION: u8 = 1;
/// Bytes of frame header before the body.
pub const FRAME_HEADER_BYTES: usize = 9;
/// Largest body a frame may declare, in bytes: a corrupted length can never make the decoder
/// allocate more than this.
pub const FRAME_BODY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// One state change. Each carries the queue (and the ordering key where it matters) so that a
/// backend keeping keyed state (Redis sorted sets, redb tables) can apply it without reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// A queue was created or reconfigured.
    QueueConfigured {
        /// Queue name.
        queue: Arc<str>,
        /// Its configuration from now on.
        config: QueueConfig,
    },
    /// A message was accepted (attempts 0, not dead).
    Enqueued {
        /// The message as stored.
        message: StoredMessage,
        /// Its dedup key is remembered until this time (`None`: no key, or dedup off).
        dedup_until: Option<UnixMillis>,
    },
    /// A message was handed out under a lease; `attempts` counts this delivery. Leases
    /// themselves are not durable: after a crash the message is ready again.
    Delivered {
        /// Queue name.
        queue: Arc<str>,
        /// The message.
        id: MessageId,
        /// Deliveries so far, including this one.
        attempts: u32,
    },
    /// A leased message went back to the queue (nack or lease timeout), ready at `not_before`.
    Requeued {
        /// Queue name.
        queue: Arc<str>,
        /// The message.
        id: MessageId,
        /// Its priority (part of the ready ordering key).
        priority: u8,
        /// Its enqueue sequence (the rest of the ordering key).
        seq: u64,
        /// Ready from this time.
        not_before: UnixMillis,
    },
    /// A message became a dead letter.
    DeadLettered {
        /// Queue name.
        queue: Arc<str>,
        /// The message.
        id: MessageId,
        /// Why.
        reason: DeadReason,
        /// When.
        at: UnixMillis,
    },
    /// A dead letter went back to ready with its attempts reset and a new sequence number.
    Redriven {
        /// Queue name.
        queue: Arc<str>,
        /// The message.
        id: MessageId,
        /// Its priority.
        priority: u8,
        /// Its new enqueue sequence.
        seq: u64,
        /// When it was redriven (its new `not_before`).
        now: UnixMillis,
        /// Its new expiry.
        expires_at: Option<UnixMillis>,
    },
    /// A message is gone for good: acked, expired without dead-lettering, or purged.
    Removed {
        /// Queue name.
        queue: Arc<str>,
        /// The message.
        id: MessageId,
    },
    /// A dedup key's window ended; the key may be used again.
    DedupForgotten {
        /// Queue name.
        queue: Arc<str>,
        /// The key.
        key: String,
    },
    /// Message ids may have been minted up to the end of this millisecond (an id's top bits are
    /// the millisecond it was minted in), so recovery mints above it even when acked messages
    /// left no id behind and the new owner's clock is behind the old one's.
    IdsMinted {
        /// The reservation's end, in ms since the epoch.
        until: UnixMillis,
    },
}

/// A frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// Fewer bytes than the header, or than the length the header declares.
    #[error("WAL frame truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// A format version this build does not read.
    #[error("WAL frame has format version {0}, this build reads version {WAL_FORMAT_VERSION}")]
    UnknownVersion(u8),
    /// The declared body length is beyond [`FRAME_BODY_BYTES_MAX`].
    #[error("WAL frame declares a {0}-byte body, beyond the {FRAME_BODY_BYTES_MAX}-byte limit")]
    TooLarge(usize),
    /// The body does not match its checksum.
    #[error("WAL frame checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    ChecksumMismatch {
        /// Checksum in the header.
        stored: u32,
        /// Checksum of the body read.
        computed: u32,
    },
    /// The body passed its checksum but is not a valid encoding.
    #[error("WAL frame body does not decode: {0}")]
    Malformed(String),
    /// The frame decoded but bytes follow it.
    #[error("{0} unexpected bytes after the WAL frame")]
    TrailingBytes(usize),
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<FRAME_BODY_BYTES_MAX>()
}

/// Encodes any serializable value as one frame.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let body = bincode::serde::encode_to_vec(value, bincode_config())
        .expect("encoding into a Vec cannot fail for the engine's own types");
    assert!(
        body.len() <= FRAME_BODY_BYTES_MAX,
        "frame body beyond its limit"
    );
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + body.len());
    frame.push(WAL_FORMAT_VERSION);
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Decodes the frame at the start of `bytes`, returning the value and the bytes it used.
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), WalError> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err(WalError::Truncated {
            needed: FRAME_HEADER_BYTES,
            available: bytes.len(),
        });
    }
    if bytes[0] != WAL_FORMAT_VERSION {
        return Err(WalError::UnknownVersion(bytes[0]));
    }
    let body_len = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
    if body_len > FRAME_BODY_BYTES_MAX {
        return Err(WalError::TooLarge(body_len));
    }
    let frame_len = FRAME_HEADER_BYTES + body_len;
    if bytes.len() < frame_len {
        return Err(WalError::Truncated {
            needed: frame_len,
            available: bytes.len(),
        });
    }
    let stored = u32::from_le_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
    let body = &bytes[FRAME_HEADER_BYTES..frame_len];
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(WalError::ChecksumMismatch { stored, computed });
    }
    let (value, used) = bincode::serde::decode_from_slice(body, bincode_config())
        .map_err(|error| WalError::Malformed(error.to_string()))?;
    if used != body.len() {
        return Err(WalError::Malformed(format!(
            "body is {} bytes but its value used {used}",
            body.len()
        )));
    }
    Ok((value, frame_len))
}

/// Decodes exactly one frame.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WalError> {
    let (value, used) = decode_prefix(bytes)?;
    if used != bytes.len() {
        return Err(WalError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

/// Encodes one record as a frame.
pub fn encode_record(record: &Record) -> Vec<u8> {
    encode(record)
}

/// Decodes one record frame.
pub fn decode_record(bytes: &[u8]) -> Result<Record, WalError> {
    decode(bytes)
}

/// Encodes a commit batch as one frame (a batch is atomic, so it is checksummed as a whole).
pub fn encode_batch(records: &[Record]) -> Vec<u8> {
    encode(&records)
}

/// Decodes a batch frame.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Record>, WalError> {
    decode(bytes)
}
