//! Why a store named by a URL could not be opened.

use std::path::PathBuf;

/// The storage URLs [`open`](crate::open) understands, as shown in error messages.
pub const SUPPORTED_URLS: &str = "redb:PATH, sled:PATH (both take ?durability=immediate|none), \
     memory:, redis://HOST[:PORT][/DB], rediss://HOST[:PORT][/DB], \
     redis+cluster://HOST:PORT[,HOST:PORT...], redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE \
     (the Redis ones take ?replicas=N&replica_timeout_ms=T)";

/// A store could not be opened. Every variant names the URL and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL's scheme names no backend.
    #[error("storage URL {url:?} has an unknown scheme; use one of: {SUPPORTED_URLS}")]
    UnknownScheme {
        /// The URL given.
        url: String,
    },
    /// A file-backed scheme without a path.
    #[error("storage URL {url:?} names no file; write it as {example}")]
    MissingPath {
        /// The URL given.
        url: String,
        /// A well-formed URL of the same scheme.
        example: &'static str,
    },
    /// A query option that is unknown or has a bad value.
    #[error(
        "storage URL {url:?}: {problem}; the only option is durability=immediate (the default) \
         or durability=none"
    )]
    BadOption {
        /// The URL given.
        url: String,
        /// What is wrong with the option.
        problem: String,
    },
    /// The directory the store should live in is missing and could not be created.
    #[error(
        "storage URL {url:?}: directory {directory:?} does not exist and cannot be created \
         ({reason}); create it or choose another path"
    )]
    NoDirectory {
        /// The URL given.
        url: String,
        /// The missing directory.
        directory: PathBuf,
        /// Why it could not be created.
        reason: String,
    },
    /// Another process (or another open store in this one) holds the file.
    #[error(
        "storage URL {url:?}: the store is already open in another process or handle; stop \
         that one or choose another path"
    )]
    Locked {
        /// The URL given.
        url: String,
    },
    /// The store exists but cannot be read by this build.
    #[error(
        "storage URL {url:?}: stored data is unreadable ({detail}); restore a backup, or move \
         the file away to start empty"
    )]
    Corrupt {
        /// The URL given.
        url: String,
        /// What was found.
        detail: String,
    },
    /// The backend this URL needs was left out of this build.
    #[error(
        "storage URL {url:?}: the {backend} backend is not built into this binary; rebuild \
         switchboard-storage with its {backend:?} feature"
    )]
    NotBuilt {
        /// The URL given.
        url: String,
        /// The missing backend (also the name of its cargo feature).
        backend: &'static str,
    },
    /// Another live switchboard server owns the storage (its owner lease is current): this one
    /// may wait as a hot standby and try again once the lease lapses or is released.
    #[error(
        "storage URL {url:?}: the prefix {prefix:?} is owned by another switchboard server \
         (owner {holder}{}, its lease ends in {lease_remaining_ms} ms unless renewed); stop it, \
         wait for it as a standby, or give this server its own prefix",
        active_url.as_deref().map(|url| format!(", serving at {url}")).unwrap_or_default()
    )]
    Owned {
        /// The URL given (password hidden).
        url: String,
        /// The key prefix that is owned.
        prefix: String,
        /// The owner's id (`host:...`).
        holder: String,
        /// Where the owner serves its API, when it said so.
        active_url: Option<String>,
        /// How long its lease lasts unless it is renewed, in milliseconds.
        lease_remaining_ms: u64,
    },
    /// The backend refused to open for another reason (I/O error, permissions, network).
    #[error("storage URL {url:?}: cannot open the store: {detail}")]
    Backend {
        /// The URL given.
        url: String,
        /// The backend's explanation.
        detail: String,
    },
}

/// Creates the directory the store at `path` lives in when it is missing (as sled does for
/// its own directory), so `redb:./data/queue.redb` works on a fresh machine; says which
/// directory when that fails.
#[cfg(any(feature = "redb", feature = "sled"))]
pub(crate) fn ensure_parent_directory(url: &str, path: &std::path::Path) -> Result<(), OpenError> {
    let Some(directory) = path.parent() else {
        return Ok(());
    };
    if directory.as_os_str().is_empty() || directory.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(directory).map_err(|error| OpenError::NoDirectory {
        url: url.to_string(),
        directory: directory.to_path_buf(),
        reason: error.to_string(),
    })
}

/// An open that failed inside the backend: damaged data is [`OpenError::Corrupt`], anything
/// else [`OpenError::Backend`].
#[cfg(any(feature = "redb", feature = "sled"))]
pub(crate) fn open_failure(url: &str, error: switchboard_engine::StorageError) -> OpenError {
    match error {
        switchboard_engine::StorageError::Corrupt(detail) => OpenError::Corrupt {
            url: url.to_string(),
            detail,
        },
        other => OpenError::Backend {
            url: url.to_string(),
            detail: other.to_string(),
        },
    }
}
