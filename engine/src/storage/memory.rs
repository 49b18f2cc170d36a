//! An in-memory backend: "durable" for the life of the process. Clones share one store, so a
//! test can drop an engine (a crash) and open a new one on the same data.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Snapshot, SnapshotFold, Storage, StorageError};
use crate::wal::Record;

/// Keeps committed batches folded in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    fold: Arc<Mutex<SnapshotFold>>,
    commits: Arc<AtomicU64>,
    records: Arc<AtomicU64>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Batches committed so far (group commit makes this far smaller than operations).
    pub fn commit_count(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Records committed so far.
    pub fn record_count(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// What a recovery would see now.
    pub fn durable_snapshot(&self) -> Snapshot {
        self.fold.lock().snapshot()
    }
}

impl Storage for MemoryStorage {
    fn recover(&mut self) -> Result<Snapshot, StorageError> {
        Ok(self.fold.lock().snapshot())
    }

    fn commit(&mut self, batch: &[Record]) -> Result<(), StorageError> {
        self.fold.lock().apply_all(batch);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.records
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn describe(&self) -> String {
        "memory:".to_string()
    }
}
