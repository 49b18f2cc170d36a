//! # switchboard-engine
//!
//! The queue engine switchboard stands on: named queues with priorities, leases (visibility
//! timeouts), acks, retries with backoff, dead letters, TTL, delayed delivery and dedup, all in
//! memory, with every change written as a WAL record and made durable by a pluggable
//! [`Storage`] through group commit. No network code, usable as a library (embedded mode).
//!
//! ## Layout
//! - [`clock`]: time as a dependency ([`SystemClock`], [`ManualClock`]).
//! - `config`: [`QueueConfig`] and the named limits.
//! - `message`: ids, messages, deliveries, dead letters.
//! - `state`: the pure state machine (no I/O, `now` passed in); each operation returns its
//!   WAL records. Property tests drive it against a reference model.
//! - [`wal`]: the [`Record`] enum and its framed, checksummed codec.
//! - [`storage`]: the [`Storage`] trait, [`MemoryStorage`], [`FaultyStorage`], [`SnapshotFold`],
//!   [`Reachability`].
//! - `committer`: the group-commit thread.
//! - `engine`: the async [`Engine`] API, long-poll waiters and the timer.
//!
//! ## Example
//! ```
//! use std::sync::Arc;
//! use switchboard_engine::{Engine, EngineOptions, MemoryStorage, NewMessage, SystemClock};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let engine = Engine::open(
//!     Box::new(MemoryStorage::new()),
//!     Arc::new(SystemClock),
//!     EngineOptions::default(),
//! )
//! .unwrap();
//! engine.enqueue("jobs", NewMessage::new("hello").with_priority(5)).await.unwrap();
//! let deliveries = engine.lease("jobs", 10, Some(30_000)).await.unwrap();
//! assert_eq!(&*deliveries[0].message.payload, b"hello");
//! engine.ack(deliveries[0].message.id, deliveries[0].token).await.unwrap();
//! # });
//! ```

#![deny(missing_docs)]

pub mod clock;
mod committer;
mod config;
mod engine;
mod error;
mod message;
mod metrics;
mod state;
pub mod storage;
pub mod wal;

pub use clock::{Clock, ManualClock, SystemClock, UnixMillis};
pub use config::*;
pub use engine::{Engine, EngineOptions, EngineStats, TICK_MS_DEFAULT};
pub use error::{EngineError, Result};
pub use message::{
    DeadLetter, DeadReason, Delivery, Enqueued, Headers, IdMap, LeaseToken, MessageId,
    MessageState, NewMessage, ParseMessageIdError, StoredMessage,
};
pub use metrics::CommitStats;
pub use state::{QueueCounters, QueueStats, State};
pub use storage::{
    DedupEntry, FaultPlan, FaultyStorage, MemoryStorage, Reachability, Snapshot, SnapshotFold,
    Storage, StorageError,
};
pub use wal::{Record, WalError};
