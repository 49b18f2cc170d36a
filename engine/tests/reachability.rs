//! A backend that knows its store is unreachable while nothing is committed (Redis: its
//! owner-lease renewer failed) makes the engine report it and refuse new writes at once; once
//! the backend reaches its store again, writes are accepted and the report clears.

use std::sync::Arc;

use switchboard_engine::{
    Engine, EngineError, EngineOptions, MemoryStorage, NewMessage, Reachability, Record, Snapshot,
    Storage, StorageError, SystemClock,
};

/// Memory storage with a reachability flag the test sets, as a backend's background work
/// would.
struct Watched {
    inner: MemoryStorage,
    reachability: Reachability,
}

impl Storage for Watched {
    fn recover(&mut self) -> Result<Snapshot, StorageError> {
        self.inner.recover()
    }
    fn commit(&mut self, batch: &[Record]) -> Result<(), StorageError> {
        self.inner.commit(batch)
    }
    fn reachability(&self) -> Option<Reachability> {
        Some(self.reachability.clone())
    }
    fn describe(&self) -> String {
        "watched memory".into()
    }
}

fn engine_with(reachability: &Reachability) -> Engine {
    let storage = Watched {
        inner: MemoryStorage::new(),
        reachability: reachability.clone(),
    };
    Engine::open(
        Box::new(storage),
        Arc::new(SystemClock),
        EngineOptions::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_store_known_unreachable_refuses_writes_and_is_reported() {
    let reachability = Reachability::new();
    let engine = engine_with(&reachability);
    reachability.mark_unreachable("cannot reach the test store".into());
    // The memory store would commit this at once: only the flag can refuse it.
    let refused = engine.enqueue("jobs", NewMessage::new("hello")).await;
    match refused {
        Err(EngineError::StorageUnavailable(reason)) => {
            assert!(reason.contains("cannot reach the test store"), "{reason}")
        }
        other => panic!("expected StorageUnavailable, got {other:?}"),
    }
    let problem = engine.engine_stats().storage_problem;
    assert_eq!(problem.as_deref(), Some("cannot reach the test store"));
}

#[tokio::test]
async fn a_store_reachable_again_accepts_writes_and_clears_the_report() {
    let reachability = Reachability::new();
    let engine = engine_with(&reachability);
    reachability.mark_unreachable("cannot reach the test store".into());
    reachability.mark_reachable();
    engine
        .enqueue("jobs", NewMessage::new("hello"))
        .await
        .expect("accepted once the store is reachable");
    assert_eq!(engine.engine_stats().storage_problem, None);
}
