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
    /// Set for good once the backend must never write again (e.g. it lost ownership of its
    /// store): the engine then reports itself stopped until a restart, like a poisoning.
    stopped: Mutex<Option<String>>,
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
        if self.shared.stopped.lock().is_some() {
            return;
        }
        self.shared.unreachable.store(false, Ordering::SeqCst);
    }

    /// The backend must never write again, for `reason` (a sentence saying what to do):
    /// final, a later [`Reachability::mark_reachable`] does not undo it.
    pub fn mark_stopped(&self, reason: String) {
        *self.shared.stopped.lock() = Some(reason);
        self.shared.unreachable.store(true, Ordering::SeqCst);
    }

    /// Why the backend stopped writing for good, or `None` while it did not.
    pub fn stopped(&self) -> Option<String> {
        if !self.shared.unreachable.load(Ordering::SeqCst) {
            return None;
        }
        self.shared.stopped.lock().clone()
    }

    /// Why the store is known unreachable, or `None` while it is not.
    pub fn problem(&self) -> Option<String> {
        if !self.shared.unreachable.load(Ordering::SeqCst) {
            return None;
        }
        if let Some(reason) = self.shared.stopped.lock().clone() {
            return Some(reason);
        }
        Some(self.shared.reason.lock().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_is_final_and_named_as_the_problem() {
        let reachability = Reachability::new();
        reachability.mark_unreachable("connection refused".into());
        reachability.mark_stopped("lost ownership; restart".into());
        reachability.mark_reachable();
        assert_eq!(
            reachability.stopped().as_deref(),
            Some("lost ownership; restart")
        );
        assert_eq!(
            reachability.problem().as_deref(),
            Some("lost ownership; restart")
        );
    }
}
