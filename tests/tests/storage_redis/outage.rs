//! Redis going away while the engine is idle or mid-commit: the engine learns it from the
//! owner-lease renewer without a commit, refuses new writes meanwhile, and a write accepted
//! before still completes once Redis is back.

use std::time::{Duration, Instant};

use switchboard_engine::{Engine, EngineError, NewMessage};
use switchboard_tests::redis_server::{RedisMode, RedisServer};

use super::layout::{engine_on, open_storage};

/// Longest wait for the engine to notice Redis went away or came back: the renewer looks
/// every few seconds; this only bounds a failing test.
const NOTICED_WITHIN: Duration = Duration::from_secs(15);

/// Waits until the engine reports a storage problem (`down`) or none; panics after
/// [`NOTICED_WITHIN`].
async fn storage_reported(engine: &Engine, down: bool) {
    let started = Instant::now();
    while engine.engine_stats().storage_problem.is_some() != down {
        assert!(
            started.elapsed() < NOTICED_WITHIN,
            "the engine still reports {:?} {NOTICED_WITHIN:?} later",
            engine.engine_stats().storage_problem
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_engine_learns_redis_is_down_and_back_without_a_commit() {
    let mut server = RedisServer::start(RedisMode::Aof { fsync: "always" });
    let engine = engine_on(open_storage(&server));
    tokio::task::block_in_place(|| server.kill());
    storage_reported(&engine, true).await;
    let refused = engine.enqueue("jobs", NewMessage::new("refused")).await;
    assert!(
        matches!(&refused, Err(EngineError::StorageUnavailable(text)) if text.contains("Redis")),
        "refused at once, naming Redis: {refused:?}"
    );
    tokio::task::block_in_place(|| server.restart());
    storage_reported(&engine, false).await;
    engine
        .enqueue("jobs", NewMessage::new("accepted again"))
        .await
        .expect("writes are accepted once Redis is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_accepted_before_redis_went_down_completes_once_it_is_back() {
    let mut server = RedisServer::start(RedisMode::Aof { fsync: "always" });
    let engine = engine_on(open_storage(&server));
    // Redis holds every write (the commit and the lease renewal alike) without failing it,
    // so the write below is accepted while Redis is still known up.
    server.cli(&["CLIENT", "PAUSE", "60000", "WRITE"]);
    let enqueued = {
        let accepted = engine.enqueue("jobs", NewMessage::new("accepted before"));
        tokio::pin!(accepted);
        assert!(
            futures_util::poll!(&mut accepted).is_pending(),
            "the write waits for its commit"
        );
        tokio::task::block_in_place(|| server.kill());
        storage_reported(&engine, true).await;
        tokio::task::block_in_place(|| server.restart());
        tokio::time::timeout(Duration::from_secs(30), accepted)
            .await
            .expect("the accepted write completes once Redis is back")
            .expect("and succeeds")
    };
    drop(engine);
    let snapshot = switchboard_engine::Storage::recover(&mut open_storage(&server)).unwrap();
    assert!(
        snapshot.messages.iter().any(|m| m.id == enqueued.id),
        "the write is durable in Redis"
    );
}
