//! A backend wrapper that fails on command: the Nth commit, or every commit after N, so tests
//! can prove that the engine fails stop and that recovery loses nothing acknowledged.

use std::sync::Arc;

use parking_lot::Mutex;

use super::{Snapshot, Storage, StorageError};
use crate::wal::Record;

/// When and how commits fail. Commits are numbered from 1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Fail this one commit.
    pub fail_commit: Option<u64>,
    /// Fail every commit after this many have succeeded.
    pub fail_after: Option<u64>,
    /// Apply the failing batch to the inner store before reporting failure (a write that
    /// happened but whose acknowledgement was lost), instead of not applying it.
    pub apply_then_fail: bool,
    /// Report failures as `Unavailable` (retryable) instead of `Failed`.
    pub transient: bool,
}

/// Wraps a backend and injects the failures its [`FaultPlan`] names.
#[derive(Debug)]
pub struct FaultyStorage<S> {
    inner: S,
    plan: Arc<Mutex<FaultPlan>>,
    commits: u64,
}

impl<S: Storage> FaultyStorage<S> {
    /// Wraps `inner` with `plan`.
    pub fn new(inner: S, plan: FaultPlan) -> Self {
        Self {
            inner,
            plan: Arc::new(Mutex::new(plan)),
            commits: 0,
        }
    }

    /// A handle to change the plan while the engine runs.
    pub fn plan(&self) -> Arc<Mutex<FaultPlan>> {
        self.plan.clone()
    }
}

impl<S: Storage> Storage for FaultyStorage<S> {
    fn recover(&mut self) -> Result<Snapshot, StorageError> {
        self.inner.recover()
    }

    fn commit(&mut self, batch: &[Record]) -> Result<(), StorageError> {
        self.commits += 1;
        let plan = self.plan.lock().clone();
        let fails = plan.fail_commit == Some(self.commits)
            || plan.fail_after.is_some_and(|after| self.commits > after);
        if !fails {
            return self.inner.commit(batch);
        }
        if plan.apply_then_fail {
            self.inner.commit(batch)?;
        }
        let text = format!("injected fault on commit {}", self.commits);
        Err(if plan.transient {
            StorageError::Unavailable(text)
        } else {
            StorageError::Failed(text)
        })
    }

    fn describe(&self) -> String {
        format!("faulty({})", self.inner.describe())
    }
}
