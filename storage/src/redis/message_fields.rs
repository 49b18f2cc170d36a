//! One message as two fields under its id, one in each of its queue's message hashes:
//! `payload` (the raw bytes, written once) and `meta` (JSON of everything else: what it was
//! enqueued with and what deliveries, nacks, dead-lettering and redrives change).
//!
//! Keeping a queue's messages in two hashes rather than one hash per message lets a commit
//! write the messages of a whole batch with one HSET per hash (and delete them with one HDEL):
//! Redis spends most of a commit on per-command work, so fewer, larger commands cost it less.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use switchboard_engine::{DeadReason, Headers, MessageId, StorageError, StoredMessage};

/// Everything Redis keeps of a message but its payload: `HGET switchboard:{queue}:meta <id>`.
/// Cheap to clone (the headers and dedup key are shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    pub priority: u8,
    pub max_attempts: u32,
    pub enqueued_at: u64,
    pub headers: Arc<Headers>,
    pub dedup_key: Option<Arc<str>>,
    pub attempts: u32,
    pub seq: u64,
    pub not_before: u64,
    pub expires_at: Option<u64>,
    pub dead: Option<(DeadReason, u64)>,
}

/// [`Meta`] as JSON (absent options are left out).
#[derive(Serialize, Deserialize)]
struct MetaJson<'a> {
    priority: u8,
    max_attempts: u32,
    enqueued_at: u64,
    attempts: u32,
    seq: u64,
    not_before: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dead_reason: Option<DeadReasonText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    died_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dedup_key: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers: Option<std::borrow::Cow<'a, Headers>>,
}

/// A dead reason as [`DeadReason::as_str`] spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DeadReasonText {
    MaxAttempts,
    Expired,
}

impl From<DeadReason> for DeadReasonText {
    fn from(reason: DeadReason) -> Self {
        match reason {
            DeadReason::MaxAttempts => DeadReasonText::MaxAttempts,
            DeadReason::Expired => DeadReasonText::Expired,
        }
    }
}

impl From<DeadReasonText> for DeadReason {
    fn from(reason: DeadReasonText) -> Self {
        match reason {
            DeadReasonText::MaxAttempts => DeadReason::MaxAttempts,
            DeadReasonText::Expired => DeadReason::Expired,
        }
    }
}

impl Meta {
    /// What Redis keeps of `message` besides its payload.
    pub(crate) fn of(message: &StoredMessage) -> Meta {
        Meta {
            priority: message.priority,
            max_attempts: message.max_attempts,
            enqueued_at: message.enqueued_at,
            headers: Arc::new(message.headers.clone()),
            dedup_key: message.dedup_key.as_deref().map(Arc::from),
            attempts: message.attempts,
            seq: message.seq,
            not_before: message.not_before,
            expires_at: message.expires_at,
            dead: message.dead,
        }
    }

    /// The meta field's value.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let json = MetaJson {
            priority: self.priority,
            max_attempts: self.max_attempts,
            enqueued_at: self.enqueued_at,
            attempts: self.attempts,
            seq: self.seq,
            not_before: self.not_before,
            expires_at: self.expires_at,
            dead_reason: self.dead.map(|(reason, _)| reason.into()),
            died_at: self.dead.map(|(_, at)| at),
            dedup_key: self.dedup_key.as_deref().map(std::borrow::Cow::Borrowed),
            headers: (!self.headers.is_empty())
                .then_some(std::borrow::Cow::Borrowed(&*self.headers)),
        };
        serde_json::to_vec(&json).expect("a message's meta always serializes")
    }

    /// Parses a meta field, naming the hash and id when it is malformed.
    pub(crate) fn parse(key: &str, id: MessageId, bytes: &[u8]) -> Result<Meta, StorageError> {
        let json: MetaJson<'_> = serde_json::from_slice(bytes)
            .map_err(|error| corrupt(key, id, &format!("not a message's meta ({error})")))?;
        let dead = match (json.dead_reason, json.died_at) {
            (None, None) => None,
            (Some(reason), Some(at)) => Some((reason.into(), at)),
            _ => {
                return Err(corrupt(
                    key,
                    id,
                    "dead_reason and died_at must come together",
                ))
            }
        };
        Ok(Meta {
            priority: json.priority,
            max_attempts: json.max_attempts,
            enqueued_at: json.enqueued_at,
            headers: Arc::new(json.headers.map(|h| h.into_owned()).unwrap_or_default()),
            dedup_key: json.dedup_key.map(|key| Arc::from(&*key)),
            attempts: json.attempts,
            seq: json.seq,
            not_before: json.not_before,
            expires_at: json.expires_at,
            dead,
        })
    }

    /// The message with this meta and `payload`.
    pub(crate) fn message(
        &self,
        queue: &Arc<str>,
        id: MessageId,
        payload: Vec<u8>,
    ) -> StoredMessage {
        StoredMessage {
            id,
            queue: queue.clone(),
            seq: self.seq,
            priority: self.priority,
            payload: payload.into(),
            headers: (*self.headers).clone(),
            enqueued_at: self.enqueued_at,
            not_before: self.not_before,
            expires_at: self.expires_at,
            max_attempts: self.max_attempts,
            attempts: self.attempts,
            dedup_key: self.dedup_key.as_deref().map(str::to_string),
            dead: self.dead,
        }
    }
}

/// The error for a message field that is missing or malformed.
pub(crate) fn corrupt(key: &str, id: MessageId, problem: &str) -> StorageError {
    StorageError::Corrupt(format!("hash {key}, field {id}: {problem}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredMessage {
        StoredMessage {
            id: MessageId(42),
            queue: Arc::from("jobs"),
            seq: 7,
            priority: 3,
            payload: Arc::from(&b"hello"[..]),
            headers: [("k".to_string(), "v".to_string())].into(),
            enqueued_at: 1_000,
            not_before: 2_000,
            expires_at: Some(9_000),
            max_attempts: 5,
            attempts: 1,
            dedup_key: Some("d".into()),
            dead: Some((DeadReason::Expired, 9_000)),
        }
    }

    fn round_trip(message: &StoredMessage) -> StoredMessage {
        let json = Meta::of(message).to_json();
        let meta = Meta::parse("k", message.id, &json).unwrap();
        meta.message(&message.queue, message.id, message.payload.to_vec())
    }

    #[test]
    fn decodes_what_it_writes() {
        let message = sample();
        assert_eq!(round_trip(&message), message);
        let plain = StoredMessage {
            headers: Headers::new(),
            dedup_key: None,
            dead: None,
            expires_at: None,
            ..sample()
        };
        assert_eq!(
            String::from_utf8(Meta::of(&plain).to_json()).unwrap(),
            r#"{"priority":3,"max_attempts":5,"enqueued_at":1000,"attempts":1,"seq":7,"not_before":2000}"#
        );
        assert_eq!(round_trip(&plain), plain);
    }

    #[test]
    fn malformed_meta_names_the_hash_and_id() {
        let id = MessageId(42);
        let error = Meta::parse("switchboard:{jobs}:meta", id, br#"{"priority":300}"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("switchboard:{jobs}:meta") && error.contains(&id.to_string()),
            "{error}"
        );
        let half_dead = br#"{"priority":3,"max_attempts":5,"enqueued_at":1,"attempts":1,"seq":7,"not_before":2,"died_at":5}"#;
        assert!(Meta::parse("k", id, half_dead).is_err());
    }
}
