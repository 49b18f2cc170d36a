//! Storage backends for the switchboard engine, chosen by URL with [`open`]:
//!
//! | URL | backend | keeps |
//! | --- | --- | --- |
//! | `redb:PATH` | [`RedbStorage`] (feature `redb`) | one redb file |
//! | `sled:PATH` | [`SledStorage`] (feature `sled`) | one sled directory |
//! | `memory:` | the engine's [`MemoryStorage`](switchboard_engine::MemoryStorage) | nothing past the process |
//! | `redis://...`, `rediss://...` | the Redis backend (feature `redis`) | a Redis server |
//! | `redis+cluster://...`, `redis+sentinel://.../SERVICE` | the Redis backend | a Redis Cluster, or the master Sentinel names |
//!
//! The embedded backends (redb, sled) keep keyed state, not an ever-growing log: queues,
//! messages and dedup keys, each under its own key (redb keeps a message's small mutable fields
//! apart from its body, so a delivery does not rewrite the payload; see each backend's doc).
//! Each commit batch is folded into the net change per key (reading the batch's own earlier
//! writes) and applied in one atomic transaction, so recovery reads back exactly the committed
//! state and an acked message leaves nothing behind. Every stored value is framed by the
//! engine's WAL codec (version + crc32), so damage is reported as
//! [`StorageError::Corrupt`](switchboard_engine::StorageError::Corrupt), never misread.
//!
//! ## Durability
//! Both embedded backends sync every commit before the engine acknowledges it
//! ([`Durability::Immediate`], the default). `?durability=none` ([`Durability::NoSync`]) skips
//! the sync: acknowledged writes since the last sync are lost on power loss or an
//! operating-system crash (redb and sled), and on `kill -9` too for sled, which buffers them
//! in the process for up to [`NO_SYNC_FLUSH_EVERY_MS`] ms.
//!
//! ## Errors
//! Backend errors never leave this crate as their own types: damaged data maps to
//! `StorageError::Corrupt`, and every other failure (I/O, disk full) to
//! `StorageError::Failed`, which stops the engine's writes (a write may have been lost).

mod durability;
mod error;
#[cfg(any(feature = "redb", feature = "sled"))]
mod keyed;
#[cfg(feature = "redb")]
mod redb_backend;
#[cfg(feature = "sled")]
mod sled_backend;
mod url;

pub use durability::{Durability, NO_SYNC_FLUSH_EVERY_MS};
pub use error::{OpenError, SUPPORTED_URLS};
#[cfg(feature = "redb")]
pub use redb_backend::RedbStorage;
#[cfg(feature = "sled")]
pub use sled_backend::SledStorage;
pub use url::{open, open_with, OpenOptions, StorageUrl};
#[cfg(feature = "redis")]
pub mod redis;
