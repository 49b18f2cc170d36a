//! [`EngineLog`]: a reserved engine queue used as an append-only log of records.
//!
//! Records are messages that are never leased while the server runs, so they stay ready in
//! the order they were written. Reading the log back ([`EngineLog::replay`]) leases all of
//! them at once; [`EngineLog::compact`] then writes the folded state and acks what was read.
//! A crash between the two leaves both, which the owner's fold settles the same way (later
//! records win), so compaction never loses a record that was durable.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use switchboard_engine::{
    Engine, EngineError, LeaseToken, MessageId, NewMessage, QueueConfig, BATCH_MESSAGES_MAX,
};

/// How long a replay holds the records it read, in milliseconds (released by its acks; a
/// crash before them makes the records ready again).
const REPLAY_LEASE_MS: u64 = 60_000;
/// Largest payload of one log message, in bytes: several records share a message up to it,
/// so a snapshot of 100 000 receipts is a few hundred messages, not 100 000.
pub const LOG_MESSAGE_BYTES_MAX: usize = 1024 * 1024;

/// A log kept in the reserved engine queue `queue` (names starting with `_` are refused by
/// the queue API, so no client can write or read it).
#[derive(Clone)]
pub struct EngineLog {
    engine: Engine,
    queue: &'static str,
}

/// The messages a replay read: [`EngineLog::compact`] acks them.
#[derive(Debug, Default)]
pub struct Read {
    leases: Vec<(MessageId, LeaseToken)>,
}

impl EngineLog {
    /// Opens the log, creating its queue if needed. `ttl_ms` is how long a record lives
    /// (0: until compaction drops it).
    pub async fn open(
        engine: Engine,
        queue: &'static str,
        ttl_ms: u64,
    ) -> Result<Self, EngineError> {
        let config = QueueConfig {
            max_size: switchboard_engine::QUEUE_SIZE_MAX,
            message_ttl_ms: ttl_ms,
            default_lease_ms: REPLAY_LEASE_MS,
            max_attempts: u32::MAX,
            // An expired record is dropped, not kept as a dead letter nobody reads.
            dead_letters: false,
            dedup_window_ms: 0,
            ..QueueConfig::default()
        };
        engine.configure_queue(queue, config).await?;
        Ok(Self { engine, queue })
    }

    /// The log in `queue`, opened (configured) before, by this server's start-up.
    pub fn opened(engine: Engine, queue: &'static str) -> Self {
        Self { engine, queue }
    }

    /// Appends `records` in order, durably (the engine's commit), packed several to a message.
    pub async fn append<R: Serialize>(&self, records: &[R]) -> Result<(), EngineError> {
        let messages = pack(records);
        for chunk in messages.chunks(BATCH_MESSAGES_MAX) {
            self.engine
                .enqueue_batch(self.queue, chunk.to_vec())
                .await?;
        }
        Ok(())
    }

    /// Reads every record, oldest first, holding them for [`EngineLog::compact`]. A message
    /// that does not read as records is logged and left in the log (skipped on each start)
    /// rather than thrown away.
    pub async fn replay<R: DeserializeOwned>(&self) -> Result<(Vec<R>, Read), EngineError> {
        let mut records = Vec::new();
        let mut read = Read::default();
        loop {
            let deliveries = self
                .engine
                .lease(self.queue, BATCH_MESSAGES_MAX, Some(REPLAY_LEASE_MS))
                .await?;
            if deliveries.is_empty() {
                break;
            }
            for delivery in deliveries {
                match serde_json::from_slice::<OneOrMany<R>>(&delivery.message.payload) {
                    Ok(OneOrMany::Many(mut some)) => {
                        records.append(&mut some);
                        read.leases.push((delivery.message.id, delivery.token));
                    }
                    Ok(OneOrMany::One(record)) => {
                        records.push(record);
                        read.leases.push((delivery.message.id, delivery.token));
                    }
                    Err(error) => tracing::error!(
                        queue = self.queue, id = %delivery.message.id, %error,
                        "unreadable log record skipped"
                    ),
                }
            }
        }
        Ok((records, read))
    }

    /// Replaces what `read` read by `snapshot`: writes the snapshot, then acks the old
    /// messages.
    pub async fn compact<R: Serialize>(
        &self,
        read: Read,
        snapshot: &[R],
    ) -> Result<(), EngineError> {
        self.append(snapshot).await?;
        for chunk in read.leases.chunks(BATCH_MESSAGES_MAX) {
            // A lease that ran out (a very slow compaction) fails its ack: that record comes
            // back and is folded again at the next start, harmlessly.
            self.engine.ack_batch(chunk).await?;
        }
        Ok(())
    }
}

/// A log message's payload: an array of records, or (written before records were packed,
/// by the registry and the routing rules) one record alone.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<R> {
    Many(Vec<R>),
    One(R),
}

/// Packs records into messages of at most [`LOG_MESSAGE_BYTES_MAX`] bytes each (a record
/// larger than that gets a message of its own), each message a JSON array.
fn pack<R: Serialize>(records: &[R]) -> Vec<NewMessage> {
    let mut messages = Vec::new();
    let mut payload: Vec<u8> = Vec::new();
    for record in records {
        let encoded = serde_json::to_vec(record).expect("a log record always serializes");
        if !payload.is_empty() && payload.len() + encoded.len() + 2 > LOG_MESSAGE_BYTES_MAX {
            messages.push(finish(std::mem::take(&mut payload)));
        }
        payload.push(if payload.is_empty() { b'[' } else { b',' });
        payload.extend_from_slice(&encoded);
    }
    if !payload.is_empty() {
        messages.push(finish(payload));
    }
    messages
}

fn finish(mut payload: Vec<u8>) -> NewMessage {
    payload.push(b']');
    NewMessage {
        payload,
        // The queue's ttl applies (0 for logs compacted by their owner).
        ttl_ms: None,
        max_attempts: Some(u32::MAX),
        ..NewMessage::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_engine::{EngineOptions, MemoryStorage, SystemClock};

    use super::*;

    fn engine() -> Engine {
        Engine::open(
            Box::new(MemoryStorage::new()),
            Arc::new(SystemClock),
            EngineOptions::default(),
        )
        .expect("a memory engine opens")
    }

    #[tokio::test]
    async fn records_read_back_in_order_and_compaction_replaces_them() {
        let log = EngineLog::open(engine(), "_test_log", 0).await.unwrap();
        log.append(&[1u32, 2]).await.unwrap();
        log.append(&[3u32]).await.unwrap();
        let (records, read) = log.replay::<u32>().await.unwrap();
        assert_eq!(records, [1, 2, 3]);
        log.compact(read, &[6u32]).await.unwrap();
        let (records, _) = log.replay::<u32>().await.unwrap();
        assert_eq!(records, [6], "the old records are gone");
    }

    #[tokio::test]
    async fn a_record_written_alone_before_packing_reads_back() {
        let engine = engine();
        let log = EngineLog::open(engine.clone(), "_test_log", 0)
            .await
            .unwrap();
        let alone = NewMessage {
            payload: b"7".to_vec(),
            ..NewMessage::default()
        };
        engine.enqueue("_test_log", alone).await.unwrap();
        log.append(&[8u32]).await.unwrap();
        let (records, _) = log.replay::<u32>().await.unwrap();
        assert_eq!(records, [7, 8]);
    }

    #[test]
    fn records_are_packed_into_messages_under_the_byte_limit() {
        let record = "x".repeat(LOG_MESSAGE_BYTES_MAX / 3);
        let messages = pack(&[record.clone(), record.clone(), record.clone()]);
        assert_eq!(messages.len(), 2);
        for message in &messages {
            assert!(message.payload.len() <= LOG_MESSAGE_BYTES_MAX);
            let back: Vec<String> = serde_json::from_slice(&message.payload).unwrap();
            assert!(back.iter().all(|r| *r == record));
        }
    }
}
