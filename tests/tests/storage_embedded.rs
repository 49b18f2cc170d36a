//! The storage conformance suite against the memory, redb and sled backends (the latter two
//! also with `?durability=none`), on real files in temporary directories opened through
//! `switchboard_storage::open` by URL; the kill -9 crash test for redb and sled; and an opt-in
//! throughput measurement.
//!
//! Knobs (environment variables):
//! - `SWITCHBOARD_RANDOM_SEEDS`: random-operation runs per backend (default 2)
//! - `SWITCHBOARD_RANDOM_STEPS`: operations per run (default 250)
//! - `SWITCHBOARD_CRASH_CYCLES`: kill -9 cycles per backend (default 20)
//! - `SWITCHBOARD_CRASH_SEED`: seed of the kill timings (default: from the clock, printed)
//! - `SWITCHBOARD_THROUGHPUT_BACKENDS`: backends of the throughput runs (default `redb,sled`)
//! - `SWITCHBOARD_THROUGHPUT_PAYLOAD_BYTES`: payload size of the throughput runs (default 100)
//! - `SWITCHBOARD_THROUGHPUT_BATCHES`: messages per call of the throughput runs (default
//!   `1,16,100`)

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_engine::{
    CommitStats, Engine, EngineOptions, MemoryStorage, NewMessage, QueueConfig, Storage,
    SystemClock,
};
use switchboard_storage::{Durability, RedbStorage, SledStorage};
use switchboard_tests::{conformance, crash_check};
use tempfile::TempDir;

/// A store a suite can open again and again: how to open it, how to count what it holds,
/// and the temporary directory it lives in (removed on drop).
struct Store {
    open: Box<dyn Fn() -> Box<dyn Storage>>,
    entries: Box<dyn Fn() -> u64>,
    _dir: Option<TempDir>,
}

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number")),
        Err(_) => default,
    }
}

fn memory() -> Store {
    let shared = MemoryStorage::new();
    let counted = shared.clone();
    Store {
        open: Box::new(move || Box::new(shared.clone())),
        entries: Box::new(move || {
            let snapshot = counted.durable_snapshot();
            (snapshot.queues.len() + snapshot.messages.len() + snapshot.dedup.len()) as u64
        }),
        _dir: None,
    }
}

fn temp_dir() -> TempDir {
    tempfile::tempdir().unwrap_or_else(|error| panic!("cannot make a temporary directory: {error}"))
}

fn open_url(url: &str) -> Box<dyn Storage> {
    switchboard_storage::open(url).unwrap_or_else(|error| panic!("{error}"))
}

fn redb() -> Store {
    redb_with("")
}

/// redb with `?durability=none`: what survives a clean stop must be the same.
fn redb_no_sync() -> Store {
    redb_with("?durability=none")
}

fn redb_with(query: &str) -> Store {
    let dir = temp_dir();
    let path = dir.path().join("store.redb");
    let url = format!("redb:{}{query}", path.display());
    Store {
        open: Box::new(move || open_url(&url)),
        entries: Box::new(move || {
            let store = RedbStorage::open(&path, Durability::Immediate)
                .unwrap_or_else(|error| panic!("{error}"));
            store
                .entry_count()
                .unwrap_or_else(|error| panic!("cannot count rows: {error}"))
        }),
        _dir: Some(dir),
    }
}

fn sled() -> Store {
    sled_with("")
}

/// sled with `?durability=none`: what survives a clean stop must be the same.
fn sled_no_sync() -> Store {
    sled_with("?durability=none")
}

fn sled_with(query: &str) -> Store {
    let dir = temp_dir();
    let path = dir.path().join("store.sled");
    let url = format!("sled:{}{query}", path.display());
    Store {
        open: Box::new(move || open_url(&url)),
        entries: Box::new(move || {
            let store = SledStorage::open(&path, Durability::Immediate)
                .unwrap_or_else(|error| panic!("{error}"));
            store
                .entry_count()
                .unwrap_or_else(|error| panic!("cannot count keys: {error}"))
        }),
        _dir: Some(dir),
    }
}

/// Every conformance function, run against one backend.
macro_rules! conformance_tests {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn ordering_survives_restart() {
                conformance::ordering_survives_restart(&super::$backend().open).await;
            }

            #[tokio::test]
            async fn leased_messages_come_back_ready() {
                conformance::leased_messages_come_back_ready(&super::$backend().open).await;
            }

            #[tokio::test]
            async fn dead_letters_and_reasons_survive_restart() {
                let store = super::$backend();
                conformance::dead_letters_and_reasons_survive_restart(&store.open).await;
            }

            #[tokio::test]
            async fn ttl_expiry_applies_after_restart() {
                conformance::ttl_expiry_applies_after_restart(&super::$backend().open).await;
            }

            #[tokio::test]
            async fn delays_survive_restart() {
                conformance::delays_survive_restart(&super::$backend().open).await;
            }

            #[tokio::test]
            async fn dedup_keys_survive_restart() {
                conformance::dedup_keys_survive_restart(&super::$backend().open).await;
            }

            #[tokio::test]
            async fn acked_messages_leave_nothing_behind() {
                let store = super::$backend();
                conformance::acked_messages_leave_nothing_behind(&store.open, &store.entries).await;
            }

            #[tokio::test]
            async fn queue_configs_survive_restart() {
                conformance::queue_configs_survive_restart(&super::$backend().open).await;
            }

            #[tokio::test]
            async fn recovery_keeps_ready_delayed_dead_and_attempts() {
                let store = super::$backend();
                conformance::recovery_keeps_ready_delayed_dead_and_attempts(&store.open).await;
            }

            #[tokio::test]
            async fn a_batch_reads_its_own_writes() {
                conformance::a_batch_reads_its_own_writes(&super::$backend().open).await;
            }

            #[tokio::test]
            async fn recommitting_a_batch_changes_nothing() {
                conformance::recommitting_a_batch_changes_nothing(&super::$backend().open).await;
            }

            #[tokio::test]
            async fn random_operations_match_the_memory_reference() {
                let steps = env_or("SWITCHBOARD_RANDOM_STEPS", 250) as usize;
                for seed in 1..=env_or("SWITCHBOARD_RANDOM_SEEDS", 2) {
                    let store = super::$backend();
                    conformance::random_operations_match_the_memory_reference(
                        &store.open,
                        seed,
                        steps,
                    )
                    .await;
                }
            }
        }
    };
}

conformance_tests!(memory);
conformance_tests!(redb);
conformance_tests!(sled);
conformance_tests!(redb_no_sync);
conformance_tests!(sled_no_sync);

/// Runs the kill -9 crash test on the store `url` (inside `dir`) and prints what it saw.
fn crash_test(backend: &str, url: &str) {
    let cycles = env_or("SWITCHBOARD_CRASH_CYCLES", 20) as usize;
    let seed = env_or(
        "SWITCHBOARD_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(1),
    );
    println!("{backend} crash test: {cycles} cycles, SWITCHBOARD_CRASH_SEED={seed}");
    let worker = PathBuf::from(env!("CARGO_BIN_EXE_crash_worker"));
    let recover = || {
        switchboard_storage::open(url)
            .map_err(|error| error.to_string())?
            .recover()
            .map_err(|error| error.to_string())
    };
    let ledger = crash_check::run_crash_cycles(&worker, url, cycles, seed, recover)
        .unwrap_or_else(|error| panic!("{backend} crash test failed: {error}"));
    println!(
        "{backend} crash test passed: {} workers started, {} acknowledged enqueues, {} \
         acknowledged acks, {} duplicate deliveries (leased at a crash, delivered again)",
        ledger.cycles_started,
        ledger.enqueued(),
        ledger.acked(),
        ledger.duplicates
    );
    assert!(
        ledger.enqueued() > 0,
        "the workers never got an enqueue acknowledged"
    );
}

#[test]
fn redb_survives_kill_9() {
    let dir = temp_dir();
    crash_test(
        "redb",
        &format!("redb:{}", dir.path().join("crash.redb").display()),
    );
}

#[test]
fn sled_survives_kill_9() {
    let dir = temp_dir();
    crash_test(
        "sled",
        &format!("sled:{}", dir.path().join("crash.sled").display()),
    );
}

/// Clients of the throughput measurement.
const THROUGHPUT_CLIENTS: usize = 64;
/// How long each measurement runs.
const THROUGHPUT_RUN: Duration = Duration::from_secs(5);

/// Full cycles (enqueue → lease → ack) per second with 64 clients, each moving `batch`
/// messages per call, and the committer's numbers.
async fn full_cycles_per_second(
    storage: Box<dyn Storage>,
    batch: usize,
    payload_bytes: usize,
) -> (f64, CommitStats) {
    let options = EngineOptions::default();
    let engine = Engine::open(storage, Arc::new(SystemClock), options).expect("engine opens");
    let config = QueueConfig {
        max_size: 10_000_000,
        ..QueueConfig::default()
    };
    engine
        .configure_queue("bench", config)
        .await
        .expect("configure");
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..THROUGHPUT_CLIENTS {
        let engine = engine.clone();
        clients.spawn(async move {
            let mut acked = 0u64;
            while started.elapsed() < THROUGHPUT_RUN {
                let messages = (0..batch)
                    .map(|_| NewMessage::new(vec![7u8; payload_bytes]))
                    .collect();
                engine
                    .enqueue_batch("bench", messages)
                    .await
                    .expect("enqueue");
                let deliveries = engine.lease("bench", batch, None).await.expect("lease");
                let items: Vec<_> = deliveries.iter().map(|d| (d.message.id, d.token)).collect();
                engine.ack_batch(&items).await.expect("ack");
                acked += items.len() as u64;
            }
            acked
        });
    }
    let mut acked = 0;
    while let Some(result) = clients.join_next().await {
        acked += result.expect("client task");
    }
    let rate = acked as f64 / started.elapsed().as_secs_f64();
    (rate, engine.engine_stats().commits)
}

/// Prints full-cycle throughput for redb and sled; run with
/// `cargo test --release -p switchboard-tests --test storage_embedded -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run it by hand in release mode"]
async fn throughput_full_cycle() {
    let payload_bytes = env_or("SWITCHBOARD_THROUGHPUT_PAYLOAD_BYTES", 100) as usize;
    let backends = std::env::var("SWITCHBOARD_THROUGHPUT_BACKENDS").unwrap_or("redb,sled".into());
    let batches = std::env::var("SWITCHBOARD_THROUGHPUT_BATCHES").unwrap_or("1,16,100".into());
    for batch in batches
        .split(',')
        .map(|b| b.trim().parse::<usize>().expect("batch sizes"))
    {
        for name in backends.split(',').map(str::trim) {
            let store = match name {
                "redb" => redb(),
                "sled" => sled(),
                other => panic!("unknown backend {other:?} in SWITCHBOARD_THROUGHPUT_BACKENDS"),
            };
            let (rate, commits) =
                full_cycles_per_second((store.open)(), batch, payload_bytes).await;
            let per_commit = commits.records as f64 / commits.commits.max(1) as f64;
            let commit_us = commits.commit_micros_total as f64 / commits.commits.max(1) as f64;
            println!(
                "{name}: {rate:.0} messages/s full cycle, {THROUGHPUT_CLIENTS} clients, \
                 {batch} per call, {payload_bytes}-byte payloads, durable commits ({} commits, \
                 {per_commit:.0} records and {commit_us:.0} µs each)",
                commits.commits
            );
        }
    }
}
