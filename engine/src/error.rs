//! The engine's errors: one enum, each variant a condition a caller can act on.

use crate::message::MessageId;

/// An operation the engine refused or could not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The queue already holds `max_size` messages.
    #[error(
        "queue {queue:?} is full ({max_size} messages); consume or purge some, or raise max_size"
    )]
    QueueFull {
        /// The full queue.
        queue: String,
        /// Its configured limit.
        max_size: u64,
    },
    /// No queue has this name.
    #[error("no queue named {0:?}")]
    UnknownQueue(String),
    /// No live message has this id (it was never enqueued, or it was acked, expired or purged).
    #[error("no message {0} (never enqueued, or already acknowledged, expired or purged)")]
    UnknownMessage(MessageId),
    /// The message exists but the token is not its current lease (the lease ran out and the
    /// message was delivered again, or it was never leased with this token).
    #[error("lease token for message {0} is not current: the lease ran out or belongs to another delivery")]
    LeaseLost(MessageId),
    /// An argument was out of range; the text names it and its limit.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A storage commit failed and may have lost a write, so the engine refuses all further
    /// writes (fail-stop). Restart to recover from the last durable state.
    #[error("engine stopped after a storage failure ({0}); restart it to recover from the last durable state")]
    Poisoned(String),
    /// Storage cannot be reached; the committer retries with backoff. Operations already
    /// accepted complete when it returns; new writes are refused until then.
    #[error("storage unavailable ({0}); retrying in the background, try again shortly")]
    StorageUnavailable(String),
    /// The engine was shut down.
    #[error("engine is shut down")]
    ShutDown,
}

/// Shorthand for engine results.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
