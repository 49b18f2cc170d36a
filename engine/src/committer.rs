//! Group commit: one thread takes every record written since its last commit, hands them to
//! storage as one batch, and then tells the waiting callers. While a commit runs, new records
//! gather for the next batch, so under load one storage commit serves many operations.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::{Inner, Shared, Status};
use crate::storage::{Storage, StorageError};
use crate::wal::Record;

/// First pause before retrying a commit to unavailable storage.
const RETRY_BACKOFF_MS_MIN: u64 = 10;
/// Longest pause between retries to unavailable storage.
const RETRY_BACKOFF_MS_MAX: u64 = 2_000;
/// Records a batch must have had for the committer to gather the next one (below it the
/// engine is lightly loaded and a commit starts as soon as there is work).
const GATHER_RECORDS_MIN: usize = 8;
/// Longest the committer waits, after a busy commit, for the callers it just released to add
/// their next operations before it starts the next commit, in microseconds. Without it, the
/// next commit starts with the few callers that were quickest, and the rest wait a whole
/// extra commit (most of a commit is the fsync, whatever its size).
const GATHER_WAIT_MICROS: u64 = 100;
/// Shortest commit, in microseconds, after which the committer gathers: a faster commit (memory
/// storage, ~5 µs) costs the callers less than the wait, so the next one starts at once (the
/// wait cut single-call throughput on memory storage from ~620k to ~235k operations/s).
const GATHER_AFTER_COMMIT_MICROS_MIN: u64 = GATHER_WAIT_MICROS;
/// With a batch in flight and nothing pending, how long the committer waits for records
/// before it waits for the oldest reply instead, in microseconds (a reply takes longer).
const PIPELINE_FILL_WAIT_MICROS: u64 = 100;
/// How often the committer looks at what gathered meanwhile, in microseconds.
const GATHER_POLL_MICROS: u64 = 50;

/// A batch handed to storage and not yet durable.
struct InFlight {
    number: u64,
    records: usize,
    submitted: Instant,
}

/// Runs until shutdown is requested and everything pending is committed, or until storage
/// fails for good (the engine is then poisoned).
///
/// With a storage that pipelines (depth above 1), the next batch is submitted while earlier
/// ones are still on their way, so the storage never waits for this thread between batches;
/// batches become durable, and are announced, in order.
pub(crate) fn run(shared: Arc<Shared>, mut storage: Box<dyn Storage>) {
    let depth = storage.pipeline_depth().max(1);
    let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(depth);
    let mut batch: Vec<Record> = Vec::new();
    let mut last_batch_records = 0;
    let mut last_commit = Duration::ZERO;
    loop {
        let next = {
            let mut inner = shared.inner.lock();
            if in_flight.is_empty() {
                while inner.pending.is_empty() && !inner.shutdown {
                    shared.wake_committer.wait(&mut inner);
                }
                if inner.pending.is_empty() {
                    return;
                }
            } else if inner.pending.is_empty() && in_flight.len() < depth && !inner.shutdown {
                // Waiting for the oldest reply would leave records that arrive meanwhile
                // for after it: give them a moment to join the pipeline first.
                let wait = Duration::from_micros(PIPELINE_FILL_WAIT_MICROS);
                shared.wake_committer.wait_for(&mut inner, wait);
            }
            if !inner.pending.is_empty() && in_flight.len() < depth {
                let slow_commit =
                    last_commit >= Duration::from_micros(GATHER_AFTER_COMMIT_MICROS_MIN);
                if last_batch_records >= GATHER_RECORDS_MIN && slow_commit {
                    gather(&mut inner, last_batch_records);
                }
                std::mem::swap(&mut inner.pending, &mut batch);
                last_batch_records = batch.len();
                inner.filling += 1;
                Some(inner.filling - 1)
            } else {
                None
            }
        };
        if let Some(number) = next {
            let submitted = Instant::now();
            if !with_retry(&shared, storage.as_mut(), |storage| storage.submit(&batch)) {
                return;
            }
            in_flight.push_back(InFlight {
                number,
                records: batch.len(),
                submitted,
            });
            batch.clear();
            if batch.capacity() > 4 * crate::config::PENDING_RECORDS_MAX {
                batch.shrink_to(crate::config::PENDING_RECORDS_MAX);
            }
            if depth > 1 && in_flight.len() < depth {
                continue;
            }
        }
        let Some(oldest) = in_flight.pop_front() else {
            continue;
        };
        if depth > 1 && !with_retry(&shared, storage.as_mut(), |storage| storage.finish_oldest()) {
            return;
        }
        last_commit = oldest.submitted.elapsed();
        shared.metrics.record_commit(oldest.records, last_commit);
        shared
            .progress
            .send_modify(|progress| progress.durable = oldest.number);
    }
}

/// Waits (at most [`GATHER_WAIT_MICROS`]) for the callers released by the last commit to add
/// their next operations, so the next batch holds them all.
fn gather(inner: &mut parking_lot::MutexGuard<'_, Inner>, last_batch_records: usize) {
    // Polls rather than waiting on the condition variable: each caller's notification would
    // otherwise wake this thread (a context switch per operation, on a machine whose cores
    // the callers need).
    let deadline = Instant::now() + Duration::from_micros(GATHER_WAIT_MICROS);
    while inner.pending.len() < last_batch_records && !inner.shutdown && Instant::now() < deadline {
        parking_lot::MutexGuard::unlocked(inner, || {
            std::thread::sleep(Duration::from_micros(GATHER_POLL_MICROS));
        });
    }
}

/// Runs `attempt` (a submit or a finish), retrying while storage is unavailable. Returns false
/// when the engine was poisoned instead.
fn with_retry(
    shared: &Shared,
    storage: &mut dyn Storage,
    mut attempt: impl FnMut(&mut dyn Storage) -> Result<(), StorageError>,
) -> bool {
    let mut backoff_ms = RETRY_BACKOFF_MS_MIN;
    loop {
        match attempt(storage) {
            Ok(()) => {
                let mut inner = shared.inner.lock();
                if let Status::Unavailable(_) = inner.status {
                    tracing::info!(storage = %storage.describe(), "storage is back; commits resumed");
                    inner.status = Status::Running;
                }
                return true;
            }
            Err(StorageError::Unavailable(text)) => {
                let shutting_down = {
                    let mut inner = shared.inner.lock();
                    if inner.status == Status::Running {
                        tracing::warn!(storage = %storage.describe(), error = %text,
                            "storage unavailable; retrying the commit with backoff");
                    }
                    inner.status = Status::Unavailable(text.clone());
                    inner.shutdown
                };
                if shutting_down {
                    poison(
                        shared,
                        format!("shut down while storage was unavailable: {text}"),
                    );
                    return false;
                }
                std::thread::sleep(Duration::from_millis(backoff_ms));
                backoff_ms = (backoff_ms * 2).min(RETRY_BACKOFF_MS_MAX);
            }
            Err(error) => {
                tracing::error!(storage = %storage.describe(), %error,
                    "storage commit failed; the engine refuses further writes");
                poison(shared, error.to_string());
                return false;
            }
        }
    }
}

fn poison(shared: &Shared, reason: String) {
    let reason: Arc<str> = reason.into();
    shared.inner.lock().status = Status::Poisoned(reason.clone());
    shared
        .progress
        .send_modify(|progress| progress.poisoned = Some(reason));
}
