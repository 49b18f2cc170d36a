//! What a backend's own background work learned about reaching its store, shared with the
//! engine. A Redis backend renews its owner lease every few seconds whether or not anything is
//! written; when that fails, the store is known unreachable before any commit finds out, so
//! the engine can report it and refuse new writes at once instead of accepting them into a
//! batch that cannot commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// A shared flag, set by the backend and read by the engine: `Some(reason)` while the store is
/// known unreachable. Cheap to clone; all clones share one state.
#[derive(Debug, Clone, Default)]
pub struct Reachability {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Read on every write, so the common case (reachable) takes no lock.
    unreachable: AtomicBool,
    reason: Mutex<String>,
}

impl Reachability {
    /// A store not known unreachable.
    pub fn new() -> Self {
        Self::default()
    }

    /// The backend failed to reach its store, for `reason` (a sentence naming the store).
    pub fn mark_unreachable(&self, reason: String) {
        *self.shared.reason.lock() = reason;
        self.shared.unreachable.store(true, Ordering::SeqCst);
    }

    /// The backend reached its store again.
    pub fn mark_reachable(&self) {
        self.shared.unreachable.store(false, Ordering::SeqCst);
    }

    /// Why the store is known unreachable, or `None` while it is not.
    pub fn problem(&self) -> Option<String> {
        if !self.shared.unreachable.load(Ordering::SeqCst) {
            return None;
        }
        Some(self.shared.reason.lock().clone())
    }
}
