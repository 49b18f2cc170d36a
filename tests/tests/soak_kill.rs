//! Soak and fault tests of the real binary under a mixed load (producers sending to two
//! agents, consumers leasing and acking, one message in ten left to lapse):
//! - the server killed with SIGKILL every few seconds, on redb and on Redis (AOF
//!   `appendfsync always`, a private redis-server): nothing answered is lost, nothing
//!   unexpected or acked comes back; duplicates (lapsed leases) are counted;
//! - Redis killed and restarted under load: clients get 503s (never a 500) during the outage,
//!   the server recovers by itself, nothing acknowledged is lost.
//!
//! Short by default (CI); longer runs: `SOAK_CYCLES=50 SOAK_KILL_EVERY_MS=3000
//! cargo test -p switchboard-tests --test soak_kill -- --nocapture`. Storage write errors and
//! a full disk are covered at the engine level by the fault-injecting backend of
//! `engine/tests/durability.rs` (fail-stop, then a clean restart).

mod soak_support;

use std::time::{Duration, Instant};

use soak_support::{env_or, Load};
use switchboard_tests::redis_server::{RedisMode, RedisServer};
use switchboard_tests::server_harness::ServerProcess;

/// Producers of the load.
const PRODUCERS: usize = 4;
/// Longest wait for the server to answer sends again after a Redis restart: a liveness
/// bound (the server must recover by itself), far above the engine's retry backoff.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Kills and restarts `server` `cycles` times, `every` apart, under load; then checks the book.
async fn kill_cycles(mut server: ServerProcess, cycles: u64, every: Duration) {
    let mut load = Load::start(server.base(), PRODUCERS).await;
    for cycle in 1..=cycles {
        tokio::time::sleep(every).await;
        server.kill9();
        // Restart on a blocking thread: start-up may wait for a dead owner's Redis lease.
        server = tokio::task::spawn_blocking(move || {
            server.restart();
            server
        })
        .await
        .unwrap();
        *load.base.write().unwrap() = server.base();
        eprintln!(
            "cycle {cycle}/{cycles}: {}",
            load.book.lock().unwrap().summary()
        );
    }
    tokio::time::sleep(every).await;
    load.stop().await;
    load.drain().await;
    let book = load.book.lock().unwrap();
    eprintln!("after {cycles} kill -9 cycles: {}", book.summary());
    assert!(!book.sent.is_empty(), "the load sent nothing");
    assert_eq!(book.lost(), Vec::<&String>::new(), "answered sends lost");
    assert_eq!(book.unexpected, Vec::<String>::new(), "content nobody sent");
    assert_eq!(
        book.resurrected,
        Vec::<String>::new(),
        "acked messages came back"
    );
    assert!(
        !book.statuses.contains_key(&500),
        "500 answers: {:?}",
        book.statuses
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_survives_repeated_kill_9_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("redb:{}", dir.path().join("soak.redb").display());
    let server = ServerProcess::start(&storage, &[]);
    let every = Duration::from_millis(env_or("SOAK_KILL_EVERY_MS", 2_000));
    kill_cycles(server, env_or("SOAK_CYCLES", 4), every).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_survives_repeated_kill_9_under_load() {
    let redis = RedisServer::start(RedisMode::Aof { fsync: "always" });
    let server = ServerProcess::start(&format!("{}/0", redis.url()), &[]);
    let every = Duration::from_millis(env_or("SOAK_KILL_EVERY_MS", 2_000));
    // Each restart waits for the dead owner's Redis lease (~10 s): fewer cycles by default.
    kill_cycles(server, env_or("SOAK_REDIS_CYCLES", 2), every).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_outage_is_503s_then_recovery_and_nothing_acked_is_lost() {
    let mut redis = RedisServer::start(RedisMode::Aof { fsync: "always" });
    let server = ServerProcess::start(&format!("{}/0", redis.url()), &[]);
    let mut load = Load::start(server.base(), PRODUCERS).await;
    let outage = Duration::from_millis(env_or("SOAK_OUTAGE_MS", 3_000));
    for round in 1..=env_or("SOAK_OUTAGES", 1) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        redis.kill();
        // The producers' closed loop has one request each waiting through the outage; new
        // requests, as other clients would make them, must be refused at once with a 503.
        let mut refused = 0;
        let outage_started = Instant::now();
        let mut probe = 0;
        while outage_started.elapsed() < outage {
            probe += 1;
            let content = format!("probe-{round}-{probe}");
            if load.send_once(content, Duration::from_secs(1)).await == Some(503) {
                refused += 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        redis.restart();
        let restarted = Instant::now();
        let sent_at_restart = load.book.lock().unwrap().sent.len();
        while load.book.lock().unwrap().sent.len() < sent_at_restart + 100 {
            assert!(
                restarted.elapsed() < RECOVERY_TIMEOUT,
                "the server did not recover by itself after Redis came back: {}\n{}",
                load.book.lock().unwrap().summary(),
                server.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "outage {round}: {refused} of {probe} new sends answered 503, recovered in {:?}: {}",
            restarted.elapsed(),
            load.book.lock().unwrap().summary()
        );
        assert!(
            refused > 0,
            "no new send was refused with a 503 during the outage"
        );
    }
    load.stop().await;
    load.drain().await;
    let book = load.book.lock().unwrap();
    eprintln!("after the outages: {}", book.summary());
    assert_eq!(book.lost(), Vec::<&String>::new(), "answered sends lost");
    assert_eq!(book.unexpected, Vec::<String>::new(), "content nobody sent");
    assert_eq!(
        book.resurrected,
        Vec::<String>::new(),
        "acked messages came back"
    );
    assert!(
        !book.statuses.contains_key(&500),
        "500 answers: {:?}",
        book.statuses
    );
}
