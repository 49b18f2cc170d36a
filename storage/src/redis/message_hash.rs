//! One message as a Redis hash: every field readable with `HGETALL`, numbers as decimal text,
//! headers as JSON, the payload as raw bytes. A field that is absent means `None`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use switchboard_engine::{DeadReason, Headers, MessageId, StorageError, StoredMessage};

use super::encode::ChunkEncoder;

pub(crate) const PAYLOAD: &str = "payload";
pub(crate) const HEADERS: &str = "headers";
pub(crate) const PRIORITY: &str = "priority";
pub(crate) const SEQ: &str = "seq";
pub(crate) const ATTEMPTS: &str = "attempts";
pub(crate) const MAX_ATTEMPTS: &str = "max_attempts";
pub(crate) const ENQUEUED_AT: &str = "enqueued_at";
pub(crate) const NOT_BEFORE: &str = "not_before";
pub(crate) const EXPIRES_AT: &str = "expires_at";
pub(crate) const DEDUP_KEY: &str = "dedup_key";
pub(crate) const DEAD_REASON: &str = "dead_reason";
pub(crate) const DIED_AT: &str = "died_at";

/// Field values that replace (`Some`) or delete (`None`) a message's stored ones.
pub(crate) type FieldOverrides = BTreeMap<&'static str, Option<Vec<u8>>>;

/// Writes `HSET key` with every field of `message` as changed by `overrides` (absent options
/// and deleted fields are left out: the hash is new).
pub(crate) fn write_hset(
    out: &mut ChunkEncoder,
    key: &str,
    message: &StoredMessage,
    overrides: &FieldOverrides,
) {
    let headers = serde_json::to_vec(&message.headers).expect("string maps always serialize");
    let numbers = [
        (PRIORITY, Some(u64::from(message.priority))),
        (SEQ, Some(message.seq)),
        (ATTEMPTS, Some(u64::from(message.attempts))),
        (MAX_ATTEMPTS, Some(u64::from(message.max_attempts))),
        (ENQUEUED_AT, Some(message.enqueued_at)),
        (NOT_BEFORE, Some(message.not_before)),
        (EXPIRES_AT, message.expires_at),
        (DIED_AT, message.dead.map(|(_, at)| at)),
    ];
    let texts = [
        (DEDUP_KEY, message.dedup_key.as_deref()),
        (DEAD_REASON, message.dead.map(|(reason, _)| reason.as_str())),
    ];
    out.begin("HSET").text(key);
    out.text(PAYLOAD).word(&message.payload);
    out.text(HEADERS).word(&headers);
    for (field, value) in numbers {
        if let (Some(value), false) = (value, overrides.contains_key(field)) {
            out.text(field).number(value);
        }
    }
    for (field, value) in texts {
        if let (Some(value), false) = (value, overrides.contains_key(field)) {
            out.text(field).text(value);
        }
    }
    for (field, value) in overrides {
        if let Some(value) = value {
            out.text(field).word(value);
        }
    }
    out.end();
}

/// Writes the overrides of an existing message: one HSET of the fields set, one HDEL of the
/// fields deleted.
pub(crate) fn write_updates(out: &mut ChunkEncoder, key: &str, overrides: &FieldOverrides) {
    if overrides.values().any(Option::is_some) {
        out.begin("HSET").text(key);
        for (field, value) in overrides {
            if let Some(value) = value {
                out.text(field).word(value);
            }
        }
        out.end();
    }
    if overrides.values().any(Option::is_none) {
        out.begin("HDEL").text(key);
        for (field, value) in overrides {
            if value.is_none() {
                out.text(field);
            }
        }
        out.end();
    }
}

/// Reads a dead reason as [`DeadReason::as_str`] writes it.
pub(crate) fn parse_dead_reason(text: &str) -> Option<DeadReason> {
    [DeadReason::MaxAttempts, DeadReason::Expired]
        .into_iter()
        .find(|reason| reason.as_str() == text)
}

/// Rebuilds a message from its hash, naming the key and field of anything malformed.
pub(crate) fn decode(
    key: &str,
    queue: &Arc<str>,
    id: MessageId,
    mut fields: HashMap<String, Vec<u8>>,
) -> Result<StoredMessage, StorageError> {
    if fields.is_empty() {
        return Err(StorageError::Corrupt(format!(
            "message hash {key} is missing although the queue's index lists message {id}"
        )));
    }
    let reader = FieldReader {
        key,
        fields: &fields,
    };
    let headers: Headers = match fields.get(HEADERS) {
        None => Headers::new(),
        Some(json) => serde_json::from_slice(json).map_err(|error| {
            reader.corrupt(HEADERS, &format!("not a JSON map of strings ({error})"))
        })?,
    };
    let dead = match (
        reader.optional_text(DEAD_REASON)?,
        reader.optional_number(DIED_AT)?,
    ) {
        (None, None) => None,
        (Some(reason), Some(at)) => {
            let reason = parse_dead_reason(reason)
                .ok_or_else(|| reader.corrupt(DEAD_REASON, "not max_attempts or expired"))?;
            Some((reason, at))
        }
        _ => return Err(reader.corrupt(DEAD_REASON, "dead_reason and died_at must come together")),
    };
    let message = StoredMessage {
        id,
        queue: queue.clone(),
        seq: reader.number(SEQ)?,
        priority: reader.small(PRIORITY)?,
        payload: Arc::from(&[][..]),
        headers,
        enqueued_at: reader.number(ENQUEUED_AT)?,
        not_before: reader.number(NOT_BEFORE)?,
        expires_at: reader.optional_number(EXPIRES_AT)?,
        max_attempts: reader.small(MAX_ATTEMPTS)?,
        attempts: reader.small(ATTEMPTS)?,
        dedup_key: reader.optional_text(DEDUP_KEY)?.map(str::to_string),
        dead,
    };
    let payload = fields
        .remove(PAYLOAD)
        .ok_or_else(|| corrupt(key, PAYLOAD, "field is missing"))?;
    Ok(StoredMessage {
        payload: payload.into(),
        ..message
    })
}

fn corrupt(key: &str, field: &str, problem: &str) -> StorageError {
    StorageError::Corrupt(format!("message hash {key}, field {field}: {problem}"))
}

struct FieldReader<'a> {
    key: &'a str,
    fields: &'a HashMap<String, Vec<u8>>,
}

impl FieldReader<'_> {
    fn corrupt(&self, field: &str, problem: &str) -> StorageError {
        corrupt(self.key, field, problem)
    }

    fn optional_text(&self, field: &str) -> Result<Option<&str>, StorageError> {
        self.fields
            .get(field)
            .map(|bytes| {
                std::str::from_utf8(bytes).map_err(|_| self.corrupt(field, "not UTF-8 text"))
            })
            .transpose()
    }

    fn optional_number(&self, field: &str) -> Result<Option<u64>, StorageError> {
        self.optional_text(field)?
            .map(|text| {
                text.parse::<u64>().map_err(|_| {
                    self.corrupt(field, &format!("{text:?} is not a non-negative integer"))
                })
            })
            .transpose()
    }

    fn number(&self, field: &str) -> Result<u64, StorageError> {
        self.optional_number(field)?
            .ok_or_else(|| self.corrupt(field, "field is missing"))
    }

    fn small<T: TryFrom<u64>>(&self, field: &str) -> Result<T, StorageError> {
        let value = self.number(field)?;
        T::try_from(value).map_err(|_| self.corrupt(field, &format!("{value} is out of range")))
    }
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

    fn fields_of(message: &StoredMessage) -> HashMap<String, Vec<u8>> {
        let mut fields = HashMap::new();
        fields.insert(PAYLOAD.into(), message.payload.to_vec());
        fields.insert(
            HEADERS.into(),
            serde_json::to_vec(&message.headers).unwrap(),
        );
        for (name, value) in [
            (PRIORITY, u64::from(message.priority)),
            (SEQ, message.seq),
            (ATTEMPTS, u64::from(message.attempts)),
            (MAX_ATTEMPTS, u64::from(message.max_attempts)),
            (ENQUEUED_AT, message.enqueued_at),
            (NOT_BEFORE, message.not_before),
            (EXPIRES_AT, 9_000),
            (DIED_AT, 9_000),
        ] {
            fields.insert(name.into(), value.to_string().into_bytes());
        }
        fields.insert(DEDUP_KEY.into(), b"d".to_vec());
        fields.insert(DEAD_REASON.into(), b"expired".to_vec());
        fields
    }

    #[test]
    fn decodes_what_it_writes() {
        let message = sample();
        let decoded = decode("k", &message.queue, message.id, fields_of(&message)).unwrap();
        assert_eq!(decoded, message);
    }

    #[test]
    fn malformed_fields_name_the_key_and_field() {
        let message = sample();
        let mut fields = fields_of(&message);
        fields.insert(PRIORITY.into(), b"300".to_vec());
        let error = decode(
            "switchboard:{jobs}:msg:x",
            &message.queue,
            message.id,
            fields,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("switchboard:{jobs}:msg:x") && error.contains("priority"));
        let missing = decode("key", &message.queue, message.id, HashMap::new()).unwrap_err();
        assert!(matches!(missing, StorageError::Corrupt(text) if text.contains("missing")));
    }
}
