//! Commit batches handed to a backend directly: a record must see the writes of the records
//! before it in the same batch, and a batch committed twice (the retry after `Unavailable`)
//! must change nothing more. The reference is the engine's own `SnapshotFold`.

use std::sync::Arc;

use switchboard_engine::{
    DeadReason, MessageId, QueueConfig, Record, SnapshotFold, Storage, StoredMessage,
};

use super::harness::START_MS;

fn message(id: u128, queue: &Arc<str>, dedup_key: Option<&str>) -> StoredMessage {
    StoredMessage {
        id: MessageId(id),
        queue: queue.clone(),
        seq: id as u64,
        priority: (id % 3) as u8,
        payload: Arc::from(format!("payload {id}").into_bytes()),
        headers: [("origin".to_string(), format!("test-{id}"))].into(),
        enqueued_at: START_MS,
        not_before: START_MS,
        expires_at: Some(START_MS + 60_000),
        max_attempts: 3,
        attempts: 0,
        dedup_key: dedup_key.map(str::to_string),
        dead: None,
    }
}

fn enqueued(message: StoredMessage) -> Record {
    let dedup_until = message.dedup_key.as_ref().map(|_| START_MS + 5_000);
    Record::Enqueued {
        message,
        dedup_until,
    }
}

/// Two batches where records act on messages enqueued earlier in the same batch, and on
/// messages of the batch before.
fn interleaved_batches() -> (Vec<Record>, Vec<Record>) {
    let q: Arc<str> = Arc::from("batch-q");
    let first = vec![
        Record::QueueConfigured {
            queue: q.clone(),
            config: QueueConfig::default(),
        },
        enqueued(message(1, &q, Some("k1"))),
        Record::Delivered {
            queue: q.clone(),
            id: MessageId(1),
            attempts: 1,
        },
        Record::Requeued {
            queue: q.clone(),
            id: MessageId(1),
            priority: 1,
            seq: 1,
            not_before: START_MS + 700,
        },
        enqueued(message(2, &q, None)),
        Record::Delivered {
            queue: q.clone(),
            id: MessageId(2),
            attempts: 1,
        },
        Record::Removed {
            queue: q.clone(),
            id: MessageId(2),
        },
        // About a message already removed in this batch: changes nothing.
        Record::Delivered {
            queue: q.clone(),
            id: MessageId(2),
            attempts: 2,
        },
        enqueued(message(3, &q, Some("k3"))),
        Record::DeadLettered {
            queue: q.clone(),
            id: MessageId(3),
            reason: DeadReason::Expired,
            at: START_MS + 10,
        },
        Record::Redriven {
            queue: q.clone(),
            id: MessageId(3),
            priority: 0,
            seq: 40,
            now: START_MS + 20,
            expires_at: None,
        },
        Record::DedupForgotten {
            queue: q.clone(),
            key: "k3".to_string(),
        },
        // About a message that never existed: changes nothing.
        Record::Requeued {
            queue: q.clone(),
            id: MessageId(99),
            priority: 0,
            seq: 99,
            not_before: START_MS,
        },
    ];
    let second = vec![
        Record::Delivered {
            queue: q.clone(),
            id: MessageId(1),
            attempts: 2,
        },
        Record::DeadLettered {
            queue: q.clone(),
            id: MessageId(1),
            reason: DeadReason::MaxAttempts,
            at: START_MS + 900,
        },
        Record::Removed {
            queue: q.clone(),
            id: MessageId(3),
        },
        enqueued(message(4, &q, Some("k1"))),
        Record::QueueConfigured {
            queue: q.clone(),
            config: QueueConfig {
                max_attempts: 7,
                ..QueueConfig::default()
            },
        },
    ];
    (first, second)
}

fn commit(storage: &mut dyn Storage, batch: &[Record]) {
    storage
        .commit(batch)
        .unwrap_or_else(|error| panic!("commit failed: {error}"));
}

fn recover(open: &impl Fn() -> Box<dyn Storage>) -> switchboard_engine::Snapshot {
    open()
        .recover()
        .unwrap_or_else(|error| panic!("recovery failed: {error}"))
}

/// Records act on the writes of earlier records in their own batch and the batches before,
/// exactly as the fold applies them.
pub async fn a_batch_reads_its_own_writes(open: impl Fn() -> Box<dyn Storage>) {
    let (first, second) = interleaved_batches();
    let mut fold = SnapshotFold::default();
    let mut storage = open();
    commit(storage.as_mut(), &first);
    fold.apply_all(&first);
    drop(storage);
    assert_eq!(recover(&open), fold.snapshot(), "after the first batch");

    let mut storage = open();
    commit(storage.as_mut(), &second);
    fold.apply_all(&second);
    drop(storage);
    assert_eq!(recover(&open), fold.snapshot(), "after the second batch");
}

/// Committing a batch again (as the engine does after `Unavailable`) changes nothing more.
pub async fn recommitting_a_batch_changes_nothing(open: impl Fn() -> Box<dyn Storage>) {
    let (first, second) = interleaved_batches();
    let mut fold = SnapshotFold::default();
    fold.apply_all(&first);
    fold.apply_all(&second);
    let mut storage = open();
    for batch in [&first, &first, &second, &second] {
        commit(storage.as_mut(), batch);
    }
    drop(storage);
    assert_eq!(recover(&open), fold.snapshot());
}
