//! Active server and hot standby on one Redis prefix: a second server waits as a standby that
//! names the active one, takes over when the active one is killed or stopped, a restart with
//! the same workdir reclaims its own lease at once, two servers never share a workdir, and a
//! deposed active server refuses writes.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard_tests::redis_server::{RedisMode, RedisServer};
use switchboard_tests::server_harness::ServerProcess;

/// The owner lease the failover tests use, in milliseconds.
const LEASE_MS: u64 = 1000;
/// A lease long enough that being served well before it ends proves it was not waited out.
const LONG_LEASE_MS: u64 = 10_000;
/// Longest handover after a graceful stop, in milliseconds: one standby poll plus room for a
/// loaded machine, and far below [`LONG_LEASE_MS`], so it proves the lease was given back.
const HANDOVER_MS_MAX: u64 = 2000;
/// How often the tests look at a server, in milliseconds.
const POLL_MS: u64 = 20;

fn redis() -> RedisServer {
    RedisServer::start(RedisMode::Aof { fsync: "everysec" })
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn lease_args(lease_ms: u64) -> Vec<String> {
    vec!["--owner-lease-ms".into(), lease_ms.to_string()]
}

fn start(storage: &str, lease_ms: u64) -> ServerProcess {
    let args = lease_args(lease_ms);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServerProcess::start(storage, &args)
}

/// `GET /health`: status and body.
async fn health(http: &reqwest::Client, server: &ServerProcess) -> (StatusCode, Value) {
    let response = http.get(server.url("/health")).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls `/health` until it answers 200; how long that took. Panics after `within`.
async fn healthy_within(
    http: &reqwest::Client,
    server: &ServerProcess,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = health(http, server).await;
        if status == StatusCode::OK {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "/health still answers {status} {body} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

async fn register(http: &reqwest::Client, server: &ServerProcess, name: &str) {
    let response = http
        .post(server.url("/api/v1/agents/register"))
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Sends `content` to `recipient`: the status and body.
async fn send(
    http: &reqwest::Client,
    server: &ServerProcess,
    recipient: &str,
    content: &str,
) -> (StatusCode, Value) {
    let response = http
        .post(server.url("/api/v1/messages"))
        .json(&json!({ "recipient": recipient, "content": content }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The contents in `agent`'s inbox (leasing them).
async fn inbox(http: &reqwest::Client, server: &ServerProcess, agent: &str) -> Vec<String> {
    let url = server.url(&format!("/api/v1/messages/{agent}?limit=100"));
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let messages: Vec<Value> = response.json().await.unwrap();
    messages
        .iter()
        .map(|message| message["content"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_second_server_on_the_same_redis_is_a_standby_naming_the_active_one() {
    // Proves: the second server listens at once and answers 503 "standby" naming the active
    // server's URL, on /health and on an API call (with Retry-After).
    let redis = redis();
    let http = client();
    let active = start(&redis.url(), LEASE_MS);
    let standby = start(&redis.url(), LEASE_MS);
    let (status, body) = health(&http, &standby).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "standby", "{body}");
    assert_eq!(body["active"], active.base(), "{body}");
    assert!(
        body["owner"]
            .as_str()
            .is_some_and(|owner| !owner.is_empty()),
        "{body}"
    );
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(&active.base()), "{detail}");
    let response = http
        .post(standby.url("/api/v1/agents/register"))
        .json(&json!({ "name": "alice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "standby", "{body}");
    assert_eq!(body["active"], active.base(), "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains(&active.base()),
        "{body}"
    );
    let upgrade = tokio_tungstenite::connect_async(standby.ws_url("/ws/alice")).await;
    match upgrade {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503);
        }
        other => panic!("a standby must refuse WebSocket upgrades with 503, got {other:?}"),
    }
    assert_eq!(health(&http, &active).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_standby_serves_within_the_lease_after_the_active_is_killed_with_its_messages() {
    // Proves: after kill -9 of the active server, the standby serves (/health 200) within the
    // owner lease + 1 s, and a message the old server acknowledged is in the new one's inbox.
    let redis = redis();
    let http = client();
    let mut active = start(&redis.url(), LEASE_MS);
    let standby = start(&redis.url(), LEASE_MS);
    register(&http, &active, "alice").await;
    let (status, body) = send(&http, &active, "alice", "before the kill").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        health(&http, &standby).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    active.kill9();
    let took = healthy_within(&http, &standby, Duration::from_millis(LEASE_MS + 1000)).await;
    eprintln!("failover after kill -9 with a {LEASE_MS} ms lease took {took:?}");
    assert_eq!(
        inbox(&http, &standby, "alice").await,
        vec!["before the kill"]
    );
}

#[tokio::test]
async fn a_graceful_stop_hands_over_to_the_standby_at_once() {
    // Proves: SIGTERM gives the ownership back, so the standby takes over within about a
    // second although the lease is ten.
    let redis = redis();
    let http = client();
    let mut active = start(&redis.url(), LONG_LEASE_MS);
    let standby = start(&redis.url(), LONG_LEASE_MS);
    assert_eq!(
        health(&http, &standby).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let signalled = Instant::now();
    let status = active.terminate();
    assert!(status.success(), "{}", active.stderr());
    healthy_within(&http, &standby, Duration::from_millis(HANDOVER_MS_MAX)).await;
    eprintln!(
        "takeover after SIGTERM (with a {LONG_LEASE_MS} ms lease) took {:?}",
        signalled.elapsed()
    );
}

#[tokio::test]
async fn a_restart_with_the_same_workdir_reclaims_its_lease_at_once() {
    // Proves: a server killed with kill -9 and started again on the same workdir serves at
    // once, well before its ten-second lease would have lapsed, with what it had stored.
    let redis = redis();
    let http = client();
    let mut server = start(&redis.url(), LONG_LEASE_MS);
    register(&http, &server, "alice").await;
    let (status, body) = send(&http, &server, "alice", "kept").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let killed = Instant::now();
    server.restart();
    healthy_within(&http, &server, Duration::from_millis(LONG_LEASE_MS / 4)).await;
    eprintln!("restart after kill -9 served after {:?}", killed.elapsed());
    assert!(killed.elapsed() < Duration::from_millis(LONG_LEASE_MS / 2));
    assert_eq!(inbox(&http, &server, "alice").await, vec!["kept"]);
}

#[tokio::test]
async fn a_second_server_with_the_same_workdir_is_refused_clearly() {
    // Proves: while a server lives, another one on its workdir exits at start with a message
    // naming the workdir and the way out, and the first one keeps serving.
    let redis = redis();
    let http = client();
    let first = start(&redis.url(), LEASE_MS);
    let workdir = first.workdir().display().to_string();
    let refused = ServerProcess::try_start(&redis.url(), &["--workdir", &workdir])
        .expect_err("a second server on a live server's workdir must not start");
    assert!(refused.contains("another switchboard server"), "{refused}");
    assert!(refused.contains(&workdir), "{refused}");
    assert!(refused.contains("--workdir"), "{refused}");
    assert_eq!(health(&http, &first).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_deposed_active_server_refuses_writes() {
    // Proves: an active server frozen longer than its lease, whose standby took over, refuses
    // writes (503) once it runs again instead of pretending to store them.
    let redis = redis();
    let http = client();
    let active = start(&redis.url(), LEASE_MS);
    let standby = start(&redis.url(), LEASE_MS);
    register(&http, &active, "alice").await;
    active.signal("STOP");
    healthy_within(&http, &standby, Duration::from_millis(LEASE_MS + 1000)).await;
    active.signal("CONT");
    let (status, body) = send(&http, &active, "alice", "from the deposed server").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, body) = health(&http, &active).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("ownership"), "{body}");
    assert!(inbox(&http, &standby, "alice").await.is_empty());
}

#[tokio::test]
async fn a_standby_stops_at_once_on_sigterm_and_leaves_the_active_one_serving() {
    // Proves: a standby told to stop exits cleanly without waiting to take over, and the
    // active server is undisturbed.
    let redis = redis();
    let http = client();
    let active = start(&redis.url(), LEASE_MS);
    let mut standby = start(&redis.url(), LEASE_MS);
    assert_eq!(
        health(&http, &standby).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let status = standby.terminate();
    assert!(status.success(), "{}", standby.stderr());
    assert_eq!(health(&http, &active).await.0, StatusCode::OK);
}
