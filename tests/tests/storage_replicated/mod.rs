//! What `storage_redis_cluster.rs` and `storage_redis_sentinel.rs` share: the conformance
//! suite, the kill -9 crash test and the master-failover test, each written once against a
//! [`Replicated`] Redis.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchboard_engine::Storage;
use switchboard_storage::redis::{RedisOptions, RedisStorage};
use switchboard_tests::crash_check;
use switchboard_tests::redis_replicated::Replicated;
use switchboard_tests::server_harness::ServerProcess;

use crate::soak_support::{env_or, Load};

/// Longest wait for a failover: a liveness bound, far above the few seconds it takes.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the server to answer sends again after a failover (and the killed node's
/// return as a replica): a liveness bound.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Sends answered 200 after which the load counts as running (before a kill) or recovered
/// (after one).
const PROGRESS_SENDS: usize = 200;
/// Producers of the load.
const PRODUCERS: usize = 4;
/// The environment variable that turns on the long failover runs.
pub const LONG_RUN_VARIABLE: &str = "SWITCHBOARD_LONG_FAILOVER";

/// A factory that opens the store under `prefix` again on every call (what the suite expects).
pub fn opener(url: &str, prefix: &str) -> impl Fn() -> Box<dyn Storage> {
    let url = url.to_string();
    let options = RedisOptions {
        prefix: prefix.to_string(),
        ..RedisOptions::default()
    };
    move || {
        let storage = RedisStorage::open(&url, options.clone())
            .unwrap_or_else(|error| panic!("cannot open the Redis storage at {url}: {error}"));
        Box::new(storage) as Box<dyn Storage>
    }
}

/// Runs the conformance suite function `$suite` on a fresh topology made by `$topology`
/// (one test per suite function, as `storage_redis.rs` does), through the URL with
/// `?replicas=1`.
macro_rules! replicated_conformance_tests {
    ($topology:expr; $($suite:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $suite() {
                let replicated = $topology;
                let url = replicated.url_one_replica();
                switchboard_tests::conformance::$suite(
                    storage_replicated::opener(&url, "switchboard:"),
                )
                .await;
            }
        )*
    };
}

/// The random-operations suite, three seeds, each under its own prefix.
pub async fn random_operations(replicated: &Replicated) {
    let url = replicated.url_one_replica();
    for seed in 1..=3 {
        let prefix = format!("random{seed}:");
        switchboard_tests::conformance::random_operations_match_the_memory_reference(
            opener(&url, &prefix),
            seed,
            400,
        )
        .await;
    }
}

/// The growth suite: every key of every queue is counted on every master.
pub async fn acked_messages_leave_nothing_behind(replicated: &Replicated) {
    let url = replicated.url_one_replica();
    // Every key of every queue but its applied-batch mark, which like its config stays as
    // long as the queue (the prefix's own keys under {~} aside), as in `storage_redis.rs`.
    let queue_keys = || {
        replicated
            .keys("switchboard:{*")
            .iter()
            .filter(|key| !key.starts_with("switchboard:{~}:") && !key.ends_with("}:applied"))
            .count() as u64
    };
    switchboard_tests::conformance::acked_messages_leave_nothing_behind(
        opener(&url, "switchboard:"),
        queue_keys,
    )
    .await;
}

/// Runs the kill -9 crash test (`crash_check`) on the topology. A killed worker's owner key
/// would block the next worker for the owner lease (10 s); the worker is dead and reaped, so
/// the check deletes its key instead of waiting it out.
pub fn crash_test(replicated: &Replicated) {
    let url = replicated.url_one_replica();
    let cycles = env_or("SWITCHBOARD_CRASH_CYCLES", 10) as usize;
    let seed = env_or(
        "SWITCHBOARD_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(1),
    );
    let kind = replicated.kind();
    println!("{kind} crash test: {cycles} cycles, SWITCHBOARD_CRASH_SEED={seed}");
    let worker = PathBuf::from(env!("CARGO_BIN_EXE_crash_worker"));
    let recover = || {
        // Any key naming the owner: this Redis holds nothing but the worker's store.
        for owner in replicated.keys("*owner*") {
            replicated.delete(&owner);
        }
        switchboard_storage::open(&url)
            .map_err(|error| error.to_string())?
            .recover()
            .map_err(|error| error.to_string())
    };
    let started = Instant::now();
    let ledger = crash_check::run_crash_cycles(&worker, &url, cycles, seed, recover)
        .unwrap_or_else(|error| panic!("{kind} crash test failed: {error}"));
    println!(
        "{kind} crash test passed in {:?}: {} workers started, {} acknowledged enqueues, {} \
         acknowledged acks, {} duplicate deliveries (leased at a crash, delivered again)",
        started.elapsed(),
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

/// Waits until the load has `count` more sends answered 200 than `from`; returns how long
/// that took. Panics after `timeout` with the server's stderr.
pub async fn wait_for_sends(
    load: &Load,
    from: usize,
    count: usize,
    timeout: Duration,
    stderr: impl Fn() -> String,
) -> Duration {
    let started = Instant::now();
    while load.book.lock().unwrap().sent.len() < from + count {
        if started.elapsed() >= timeout {
            // Not formatted inside the panic: the book's lock would be poisoned for the load.
            let summary = load.book.lock().unwrap().summary();
            panic!(
                "the load made no progress for {timeout:?}: {summary}\nserver stderr:\n{}",
                stderr()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// Keys of the queues the load writes (its agents' inboxes), one per slot. Found by name
/// rather than built, so that they follow the storage's key layout.
fn inbox_keys(replicated: &Replicated) -> Vec<String> {
    let by_slot: std::collections::BTreeMap<u32, String> = replicated
        .keys("*inbox:*")
        .into_iter()
        .map(|key| (replicated.slot_of(&key), key))
        .collect();
    let keys: Vec<String> = by_slot.into_values().collect();
    assert!(!keys.is_empty(), "the load's inbox queues are not in Redis");
    keys
}

/// Runs the soak load through a server on the topology (`?replicas=1`), kills the master
/// holding an inbox `kills` times (a different inbox each time, where there are several),
/// waits for each failover and brings the killed node back as a replica; then drains and
/// checks the book: nothing lost, nothing unexpected, nothing acked delivered again.
/// Prints each failover's time and the time until sends were answered again.
pub async fn failover_under_load(mut replicated: Replicated, kills: usize) {
    let kind = replicated.kind();
    let url = replicated.url_one_replica();
    let server = ServerProcess::start(&url, &[]);
    let mut load = Load::start(server.base(), PRODUCERS).await;
    let stderr = || server.stderr();
    wait_for_sends(&load, 0, PROGRESS_SENDS, RECOVERY_TIMEOUT, stderr).await;
    let mut failovers = Vec::new();
    let mut recoveries = Vec::new();
    for kill in 0..kills {
        let inboxes = inbox_keys(&replicated);
        let key = inboxes[kill % inboxes.len()].clone();
        let sent_before = load.book.lock().unwrap().sent.len();
        let killed_at = Instant::now();
        // Blocking calls (redis-cli, waits) run off the runtime's threads: the load goes on.
        let (back, killed, failover) = tokio::task::spawn_blocking(move || {
            let killed = replicated.kill_master_holding(&key);
            replicated.wait_for_failover(killed, FAILOVER_TIMEOUT);
            let failover = killed_at.elapsed();
            replicated.restart(killed);
            (replicated, killed, failover)
        })
        .await
        .expect("the failover thread panicked");
        replicated = back;
        wait_for_sends(&load, sent_before, PROGRESS_SENDS, RECOVERY_TIMEOUT, stderr).await;
        let recovered = killed_at.elapsed();
        eprintln!(
            "{kind} kill {}/{kills} (master {killed}): failover {failover:?}, sends answered \
             again {recovered:?} after the kill: {}",
            kill + 1,
            load.book.lock().unwrap().summary()
        );
        failovers.push(failover);
        recoveries.push(recovered);
    }
    load.stop().await;
    load.drain().await;
    let book = load.book.lock().unwrap();
    eprintln!(
        "{kind} after {kills} master kills: {}; failover p50 {:?} max {:?}; sends answered \
         again p50 {:?} max {:?}",
        book.summary(),
        percentile(&failovers, 50),
        percentile(&failovers, 100),
        percentile(&recoveries, 50),
        percentile(&recoveries, 100),
    );
    if !book.lost().is_empty() {
        eprintln!("server stderr:\n{}", distinct_lines(&server.stderr()));
    }
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

/// `text` without the lines that repeat an earlier line's message (a server refusing
/// requests logs the same error thousands of times); timestamps are ignored.
pub fn distinct_lines(text: &str) -> String {
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .filter(|line| seen.insert(line.split_once(' ').map_or(*line, |(_, rest)| rest)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the long runs are asked for; prints a note when they are not.
pub fn long_run_asked(test: &str) -> bool {
    let asked = std::env::var(LONG_RUN_VARIABLE).is_ok_and(|value| value == "1");
    if !asked {
        eprintln!("{test}: skipped, set {LONG_RUN_VARIABLE}=1 to run it (docs/testing.md)");
    }
    asked
}

/// The `percent`th percentile of `times` (nearest rank; 100 is the maximum).
pub fn percentile(times: &[Duration], percent: usize) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}
