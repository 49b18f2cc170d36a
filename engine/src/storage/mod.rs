//! The `Storage` trait the engine hands its WAL records to, and the backends that live beside
//! the engine: [`MemoryStorage`] (tests, throwaway runs) and [`FaultyStorage`] (fault injection).
//! Durable backends (Redis, redb, sled) live in the `switchboard-storage` crate.

mod faulty;
mod fold;
mod memory;
mod reachability;

use std::sync::Arc;

use crate::clock::UnixMillis;
use crate::config::QueueConfig;
use crate::message::{MessageId, StoredMessage};
use crate::wal::Record;

pub use faulty::{FaultPlan, FaultyStorage};
pub use fold::SnapshotFold;
pub use memory::MemoryStorage;
pub use reachability::Reachability;

/// A remembered dedup key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DedupEntry {
    /// The queue it belongs to.
    pub queue: Arc<str>,
    /// The key.
    pub key: String,
    /// The message first enqueued with it.
    pub id: MessageId,
    /// Remembered until this time.
    pub until: UnixMillis,
}

/// What replaying every committed batch produces: the engine rebuilds its state from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Every queue with its latest configuration.
    pub queues: Vec<(Arc<str>, QueueConfig)>,
    /// Every live message (ready, delayed, leased at the crash, or dead), attempts kept.
    pub messages: Vec<StoredMessage>,
    /// Dedup keys still remembered.
    pub dedup: Vec<DedupEntry>,
    /// The highest [`Record::IdsMinted`] reservation committed (0: none): no id was minted
    /// beyond the end of this millisecond.
    pub ids_minted_until: UnixMillis,
}

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The backend cannot be reached and nothing of the batch was applied, or what was applied
    /// is safe to apply again (every record is idempotent). The engine retries with backoff.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The backend failed in a way that may have lost or corrupted a write (disk full, I/O
    /// error, corruption). The engine stops accepting writes.
    #[error("storage failed: {0}")]
    Failed(String),
    /// Stored data could not be read back (bad checksum, unknown format).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Makes batches of WAL records durable. Called from the engine's committer thread only, one
/// call at a time, so implementations may block.
pub trait Storage: Send + 'static {
    /// The state that replaying every committed batch produces.
    fn recover(&mut self) -> Result<Snapshot, StorageError>;

    /// Makes `batch` durable, atomically: after a crash either all of it or none of it is
    /// recovered. Every record is idempotent, so a batch may be committed again after an
    /// `Unavailable` error.
    fn commit(&mut self, batch: &[Record]) -> Result<(), StorageError>;

    /// How many batches may be in flight at once: handed over with [`Storage::submit`] and not
    /// yet finished. With 1 (the default) `submit` commits the batch itself. A backend behind
    /// a network round trip (Redis) keeps more in flight, so that the next batch is on its way
    /// while the last one is applied.
    fn pipeline_depth(&self) -> usize {
        1
    }

    /// Hands `batch` over to be made durable, atomically, after every batch submitted before
    /// it. With a depth of 1 this is [`Storage::commit`]; otherwise the batch is durable once
    /// the matching [`Storage::finish_oldest`] returns. An error means the batch was not taken:
    /// after `Unavailable`, submit it again.
    fn submit(&mut self, batch: &[Record]) -> Result<(), StorageError> {
        self.commit(batch)
    }

    /// Waits until the oldest batch in flight is durable. After `Unavailable` it is not yet:
    /// the storage keeps it and the later ones (sending them again as needed), and the caller
    /// calls again after a pause. Called only while a batch is in flight.
    fn finish_oldest(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Checks that the backend is reachable now (for health reports).
    fn ping(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    /// The flag the backend's own background work keeps (Redis: its owner-lease renewer), if
    /// it has any: the engine reads it to report an unreachable store, and refuse new writes,
    /// while nothing is being committed. Taken once, when the engine opens.
    fn reachability(&self) -> Option<Reachability> {
        None
    }

    /// A short description for logs, such as `redb:/var/lib/switchboard.redb`.
    fn describe(&self) -> String;
}

impl<S: Storage + ?Sized> Storage for Box<S> {
    fn recover(&mut self) -> Result<Snapshot, StorageError> {
        (**self).recover()
    }
    fn commit(&mut self, batch: &[Record]) -> Result<(), StorageError> {
        (**self).commit(batch)
    }
    fn pipeline_depth(&self) -> usize {
        (**self).pipeline_depth()
    }
    fn submit(&mut self, batch: &[Record]) -> Result<(), StorageError> {
        (**self).submit(batch)
    }
    fn finish_oldest(&mut self) -> Result<(), StorageError> {
        (**self).finish_oldest()
    }
    fn ping(&mut self) -> Result<(), StorageError> {
        (**self).ping()
    }
    fn reachability(&self) -> Option<Reachability> {
        (**self).reachability()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}
