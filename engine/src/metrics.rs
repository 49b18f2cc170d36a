//! Counters of the committer's work, readable without taking the engine lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub(crate) struct CommitMetrics {
    commits: AtomicU64,
    records: AtomicU64,
    commit_micros_total: AtomicU64,
    last_commit_micros: AtomicU64,
    last_batch_records: AtomicU64,
}

impl CommitMetrics {
    pub fn record_commit(&self, records: usize, took: Duration) {
        let micros = took.as_micros() as u64;
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records as u64, Ordering::Relaxed);
        self.commit_micros_total
            .fetch_add(micros, Ordering::Relaxed);
        self.last_commit_micros.store(micros, Ordering::Relaxed);
        self.last_batch_records
            .store(records as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CommitStats {
        CommitStats {
            commits: self.commits.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            commit_micros_total: self.commit_micros_total.load(Ordering::Relaxed),
            last_commit_micros: self.last_commit_micros.load(Ordering::Relaxed),
            last_batch_records: self.last_batch_records.load(Ordering::Relaxed),
        }
    }
}

/// What the committer has done since the engine started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Storage commits (batches).
    pub commits: u64,
    /// Records committed across all batches.
    pub records: u64,
    /// Time spent in storage commits, in microseconds.
    pub commit_micros_total: u64,
    /// Duration of the latest commit, in microseconds.
    pub last_commit_micros: u64,
    /// Records in the latest batch.
    pub last_batch_records: u64,
}
