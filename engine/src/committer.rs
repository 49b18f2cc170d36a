//! Group commit: one thread takes every record written since its last commit, hands them to
//! storage as one batch, and then tells the waiting callers. While a commit runs, new records
//! gather for the next batch, so under load one storage commit serves many operations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::{Shared, Status};
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
/// How often the committer looks at what gathered meanwhile, in microseconds.
const GATHER_POLL_MICROS: u64 = 50;

/// Runs until shutdown is requested and everything pending is committed, or until storage
/// fails for good (the engine is then poisoned).
pub(crate) fn run(shared: Arc<Shared>, mut storage: Box<dyn Storage>) {
    let mut batch: Vec<Record> = Vec::new();
    let mut last_batch_records = 0;
    loop {
        let number = {
            let mut inner = shared.inner.lock();
            while inner.pending.is_empty() && !inner.shutdown {
                shared.wake_committer.wait(&mut inner);
            }
            if inner.pending.is_empty() {
                return;
            }
            if last_batch_records >= GATHER_RECORDS_MIN {
                // Polls rather than waiting on the condition variable: each caller's
                // notification would otherwise wake this thread (a context switch per
                // operation, on a machine whose cores the callers need).
                let deadline = Instant::now() + Duration::from_micros(GATHER_WAIT_MICROS);
                while inner.pending.len() < last_batch_records
                    && !inner.shutdown
                    && Instant::now() < deadline
                {
                    parking_lot::MutexGuard::unlocked(&mut inner, || {
                        std::thread::sleep(Duration::from_micros(GATHER_POLL_MICROS));
                    });
                }
            }
            std::mem::swap(&mut inner.pending, &mut batch);
            last_batch_records = batch.len();
            inner.filling += 1;
            inner.filling - 1
        };
        if !commit_with_retry(&shared, storage.as_mut(), &batch) {
            return;
        }
        batch.clear();
        if batch.capacity() > 4 * crate::config::PENDING_RECORDS_MAX {
            batch.shrink_to(crate::config::PENDING_RECORDS_MAX);
        }
        shared
            .progress
            .send_modify(|progress| progress.durable = number);
    }
}

/// Commits `batch`, retrying while storage is unavailable. Returns false when the engine was
/// poisoned instead.
fn commit_with_retry(shared: &Shared, storage: &mut dyn Storage, batch: &[Record]) -> bool {
    let mut backoff_ms = RETRY_BACKOFF_MS_MIN;
    loop {
        let started = Instant::now();
        match storage.commit(batch) {
            Ok(()) => {
                shared.metrics.record_commit(batch.len(), started.elapsed());
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
