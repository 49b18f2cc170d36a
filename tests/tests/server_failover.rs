//! Active and standby servers: two `switchboard serve` on the same storage, the second waiting
//! (GET /health 503 `"standby"`). Under the soak load through the HTTP API, the active one is
//! killed with kill -9; the standby must take over (GET /health 200) within the owner lease
//! and a little more, the killed one is restarted (it becomes the standby), and so on. After
//! the last kill the book is checked: nothing answered is lost, nothing unexpected, nothing
//! acked delivered again; duplicates are counted.
//!
//! By default, two kills on a single private Redis (AOF `appendfsync always`). With
//! `SWITCHBOARD_LONG_FAILOVER=1`, ten kills (`SWITCHBOARD_SERVER_KILLS`) on each of a single
//! Redis, a Redis Cluster and a Sentinel set, printing the takeover time's p50 and maximum.

// Each file that includes these modules uses part of them.
#[allow(dead_code)]
mod soak_support;
#[allow(dead_code, unused_macros)]
mod storage_replicated;

use std::time::{Duration, Instant};

use serde_json::Value;
use soak_support::{env_or, Load};
use storage_replicated::{long_run_asked, percentile, wait_for_sends};
use switchboard_tests::redis_replicated::Replicated;
use switchboard_tests::redis_server::{RedisMode, RedisServer};
use switchboard_tests::server_harness::ServerProcess;

/// The owner lease both servers hold the storage with, in milliseconds: short, so a takeover
/// is quick.
const OWNER_LEASE_MS: u64 = 1_000;
/// Longest wait for the standby to take over: a liveness bound, far above lease + 1 s.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a server to answer its first /health as active or standby.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for sends to be answered again after a takeover: a liveness bound.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Sends answered 200 after which the load counts as running (before a kill) or recovered.
const PROGRESS_SENDS: usize = 200;
/// Producers of the load.
const PRODUCERS: usize = 4;

/// GET /health: the status and the JSON body, or `None` when nothing answered.
async fn health(http: &reqwest::Client, base: &str) -> Option<(u16, Value)> {
    let response = http.get(format!("{base}/health")).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

/// Polls GET /health on `server` until it answers `status`; returns how long that took.
async fn wait_for_health(
    http: &reqwest::Client,
    server: &ServerProcess,
    status: u16,
    timeout: Duration,
) -> Duration {
    let started = Instant::now();
    let base = server.base();
    loop {
        let answer = health(http, &base).await;
        if answer.as_ref().is_some_and(|(got, _)| *got == status) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "{base}/health did not answer {status} within {timeout:?} (last: {answer:?}); \
             stderr:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts `server` answers GET /health 503 with `"status": "standby"`.
async fn assert_standby(http: &reqwest::Client, server: &ServerProcess) {
    wait_for_health(http, server, 503, HEALTH_TIMEOUT).await;
    let (_, body) = health(http, &server.base()).await.expect("/health answers");
    assert_eq!(body["status"], "standby", "the standby's /health: {body}");
}

/// Starts one server on `storage` with the short owner lease.
fn serve(storage: &str) -> ServerProcess {
    let lease = OWNER_LEASE_MS.to_string();
    ServerProcess::start(storage, &["--owner-lease-ms", &lease])
}

/// Runs the load through an active server with a standby beside it, kills the active one
/// `kills` times; prints each takeover time, and the p50 and maximum.
async fn standby_takes_over(storage: &str, kind: &str, kills: usize) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut active = serve(storage);
    wait_for_health(&http, &active, 200, HEALTH_TIMEOUT).await;
    let mut standby = tokio::task::spawn_blocking({
        let storage = storage.to_string();
        move || serve(&storage)
    })
    .await
    .unwrap();
    assert_standby(&http, &standby).await;
    let mut load = Load::start(active.base(), PRODUCERS).await;
    wait_for_sends(&load, 0, PROGRESS_SENDS, RECOVERY_TIMEOUT, || {
        active.stderr()
    })
    .await;
    let mut takeovers = Vec::new();
    for kill in 1..=kills {
        let sent_before = load.book.lock().unwrap().sent.len();
        let killed_at = Instant::now();
        active.kill9();
        wait_for_health(&http, &standby, 200, TAKEOVER_TIMEOUT).await;
        let takeover = killed_at.elapsed();
        *load.base.write().unwrap() = standby.base();
        // The killed server comes back as the standby (start-up blocks: off the runtime).
        active = tokio::task::spawn_blocking(move || {
            active.restart();
            active
        })
        .await
        .unwrap();
        assert_standby(&http, &active).await;
        std::mem::swap(&mut active, &mut standby);
        wait_for_sends(&load, sent_before, PROGRESS_SENDS, RECOVERY_TIMEOUT, || {
            active.stderr()
        })
        .await;
        eprintln!(
            "{kind} kill {kill}/{kills}: standby answered /health 200 {takeover:?} after the \
             kill, sends answered again after {:?}: {}",
            killed_at.elapsed(),
            load.book.lock().unwrap().summary()
        );
        takeovers.push(takeover);
    }
    load.stop().await;
    load.drain().await;
    let book = load.book.lock().unwrap();
    eprintln!(
        "{kind} after {kills} kills of the active server: {}; takeover p50 {:?} max {:?}",
        book.summary(),
        percentile(&takeovers, 50),
        percentile(&takeovers, 100)
    );
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

/// Kills of the active server in the long runs.
fn long_kills() -> usize {
    env_or("SWITCHBOARD_SERVER_KILLS", 10) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standby_takes_over_from_a_killed_active_server_on_redis() {
    let redis = RedisServer::start(RedisMode::Aof { fsync: "always" });
    standby_takes_over(&format!("{}/0", redis.url()), "redis", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standby_takes_over_repeatedly_on_redis() {
    if !long_run_asked("standby_takes_over_repeatedly_on_redis") {
        return;
    }
    let redis = RedisServer::start(RedisMode::Aof { fsync: "always" });
    standby_takes_over(&format!("{}/0", redis.url()), "redis", long_kills()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standby_takes_over_repeatedly_on_a_cluster() {
    if !long_run_asked("standby_takes_over_repeatedly_on_a_cluster") {
        return;
    }
    let cluster = Replicated::cluster(RedisMode::Aof { fsync: "always" });
    standby_takes_over(&cluster.url_one_replica(), "cluster", long_kills()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standby_takes_over_repeatedly_on_sentinel() {
    if !long_run_asked("standby_takes_over_repeatedly_on_sentinel") {
        return;
    }
    let set = Replicated::sentinel(RedisMode::Aof { fsync: "always" });
    standby_takes_over(&set.url_one_replica(), "sentinel", long_kills()).await;
}
