//! Opening the storage backend a URL names (`redis://…`, `redb:PATH`, `sled:PATH`, `memory:`):
//! the one place that calls `switchboard_storage::open_with`, so the rest of the server sees
//! either a store, a prefix another server owns (this one is then a hot standby, see
//! [`crate::standby`]), or a sentence saying why it cannot open.

use switchboard_engine::Storage;
use switchboard_storage::{OpenError, OpenOptions};

/// Another live server owns the storage: who, where it is reached, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerSeen {
    /// The owner id holding the lease.
    pub holder: String,
    /// The URL the owner advertised, if any.
    pub active_url: Option<String>,
    /// How long its lease has left unless renewed, in milliseconds.
    pub lease_remaining_ms: u64,
}

/// Why the storage did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenFailure {
    /// Another server owns it (only Redis has owners); trying again later may succeed.
    Owned(OwnerSeen),
    /// Anything else, in one sentence.
    Failed(String),
}

/// Opens the backend `url` names, off the async threads (opening Redis talks to it; opening
/// redb may read a large file).
pub async fn open_backend(
    url: &str,
    options: &OpenOptions,
) -> Result<Box<dyn Storage>, OpenFailure> {
    let (url, options) = (url.to_string(), options.clone());
    let opened =
        tokio::task::spawn_blocking(move || switchboard_storage::open_with(&url, &options))
            .await
            .map_err(|error| {
                OpenFailure::Failed(format!("opening the storage panicked: {error}"))
            })?;
    opened.map_err(|error| match error {
        OpenError::Owned {
            holder,
            active_url,
            lease_remaining_ms,
            ..
        } => OpenFailure::Owned(OwnerSeen {
            holder,
            active_url,
            lease_remaining_ms,
        }),
        other => OpenFailure::Failed(other.to_string()),
    })
}
