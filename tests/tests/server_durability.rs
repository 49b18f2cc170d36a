//! Durability of the real binary: `kill -9` in the middle of a load loses no message whose send
//! was answered 200 and resurrects no message whose ack was answered 200; the registry survives
//! restarts; SIGTERM shuts down cleanly (exit 0); unreachable storage is one paragraph and
//! exit 1. Run on redb, and on a private `redis-server` when the Redis backend is built.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard_tests::redis_server::{free_port, RedisMode, RedisServer};
use switchboard_tests::server_harness::{run_to_end, ServerProcess};

/// Concurrent producers in the kill test.
const PRODUCERS: usize = 4;
/// Sends answered 200 before the kill.
const SENT_BEFORE_KILL: usize = 300;

async fn register(http: &reqwest::Client, server: &ServerProcess, name: &str) -> String {
    let response = http
        .post(server.url("/api/v1/agents/register"))
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["agent_id"].as_str().unwrap().to_string()
}

/// Every message id in `agent`'s inbox (leases all of them).
async fn drain(http: &reqwest::Client, server: &ServerProcess, agent: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    loop {
        let url = server.url(&format!(
            "/api/v1/messages/{agent}?limit=1000&lease_seconds=600"
        ));
        let response = http.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let batch: Vec<Value> = response.json().await.unwrap();
        if batch.is_empty() {
            return ids;
        }
        ids.extend(batch.iter().map(|m| m["id"].as_str().unwrap().to_string()));
    }
}

/// Producers send, a consumer leases and acks, the server is killed with SIGKILL under load,
/// restarted on the same storage: every answered send is there, no answered ack is back, and
/// the agent kept its id.
async fn kill_mid_load_loses_nothing_acknowledged(mut server: ServerProcess) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let agent_id = register(&http, &server, "alice").await;
    let sent = Arc::new(Mutex::new(HashSet::new()));
    let acked = Arc::new(Mutex::new(HashSet::new()));
    // Acks sent whose answer may not have arrived: such a message may or may not be gone.
    let ack_tried = Arc::new(Mutex::new(HashSet::new()));
    let mut tasks = Vec::new();
    for producer in 0..PRODUCERS {
        let (http, sent, url) = (
            http.clone(),
            sent.clone(),
            server.url("/api/v1/messages?sender=load"),
        );
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                let body = json!({ "recipient": "alice", "content": format!("p{producer}-{n}") });
                let Ok(response) = http.post(&url).json(&body).send().await else {
                    return;
                };
                if response.status() != StatusCode::OK {
                    return;
                }
                let Ok(reply) = response.json::<Value>().await else {
                    return;
                };
                sent.lock()
                    .unwrap()
                    .insert(reply["message_id"].as_str().unwrap().to_string());
            }
        }));
    }
    {
        let (http, acked, base) = (http.clone(), acked.clone(), server.base());
        let ack_tried = ack_tried.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let url = format!("{base}/api/v1/messages/alice?limit=20&lease_seconds=600");
                let Ok(response) = http.get(&url).send().await else {
                    return;
                };
                let Ok(batch) = response.json::<Vec<Value>>().await else {
                    return;
                };
                for message in batch {
                    let id = message["id"].as_str().unwrap().to_string();
                    ack_tried.lock().unwrap().insert(id.clone());
                    let url = format!("{base}/api/v1/messages/{id}/ack?agent_id=alice");
                    let Ok(response) = http.post(&url).send().await else {
                        return;
                    };
                    if response.status() == StatusCode::OK {
                        acked.lock().unwrap().insert(id);
                    }
                }
            }
        }));
    }
    while sent.lock().unwrap().len() < SENT_BEFORE_KILL {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill9();
    for task in tasks {
        let _ = task.await;
    }
    let sent = sent.lock().unwrap().clone();
    let acked = acked.lock().unwrap().clone();
    let ack_tried = ack_tried.lock().unwrap().clone();
    assert!(
        !acked.is_empty(),
        "the consumer acked nothing before the kill"
    );
    server.restart();
    let found = drain(&http, &server, "alice").await;
    let lost: Vec<_> = sent
        .iter()
        .filter(|id| !found.contains(*id) && !ack_tried.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} answered sends lost after kill -9: {lost:?}",
        lost.len()
    );
    let resurrected: Vec<_> = acked.intersection(&found).collect();
    assert!(
        resurrected.is_empty(),
        "acked messages came back: {resurrected:?}"
    );
    let agent: Value = http
        .get(server.url("/api/v1/agents/alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        agent["id"],
        agent_id.as_str(),
        "the registry survives a kill -9"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_kill_9_mid_load_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("redb:{}", dir.path().join("x.redb").display());
    kill_mid_load_loses_nothing_acknowledged(ServerProcess::start(&storage, &[])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_kill_9_mid_load_loses_no_acknowledged_message() {
    let redis = RedisServer::start(RedisMode::Aof { fsync: "always" });
    let storage = format!("{}/0", redis.url());
    match ServerProcess::try_start(&storage, &[]) {
        Ok(server) => kill_mid_load_loses_nothing_acknowledged(server).await,
        // Runs by itself as soon as the binary has the Redis backend; until then it says so.
        Err(stderr) if stderr.contains("not built into this binary") => {
            eprintln!("SKIPPED: this switchboard build has no Redis backend yet: {stderr}");
        }
        Err(stderr) => panic!("switchboard did not start on Redis: {stderr}"),
    }
}

/// SIGTERM: exit 0, the socket is closed with "going away", and what was sent is still there
/// after a restart; registrations and deletions survive too.
#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("redb:{}", dir.path().join("x.redb").display());
    let mut server = ServerProcess::start(&storage, &[]);
    let http = reqwest::Client::new();
    let alice = register(&http, &server, "alice").await;
    register(&http, &server, "gone").await;
    let response = http
        .delete(server.url("/api/v1/agents/gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("/ws/alice"))
        .await
        .unwrap();
    let response = http
        .post(server.url("/api/v1/messages"))
        .json(&json!({ "recipient": "alice", "content": "survives" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let status = server.terminate();
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        server.stderr()
    );
    use futures_util::StreamExt;
    let mut closed_with = None;
    while let Some(Ok(frame)) = socket.next().await {
        if let tokio_tungstenite::tungstenite::Message::Close(frame) = frame {
            closed_with = frame.map(|f| u16::from(f.code));
        }
    }
    assert_eq!(closed_with, Some(1001));
    let server = ServerProcess::start(&storage, &[]);
    let agents: Vec<Value> = http
        .get(server.url("/api/v1/agents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(agents.len(), 1, "{agents:?}");
    assert_eq!(agents[0]["id"], alice.as_str());
    assert_eq!(agents[0]["status"], "offline", "presence is not persisted");
    let messages: Vec<Value> = http
        .get(server.url("/api/v1/messages/alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["content"], "survives");
}

/// A long poll in flight when SIGTERM comes is answered at once with nothing (as when its wait
/// ends), and the server exits long before the poll's 20 s would have run out.
#[tokio::test]
async fn sigterm_answers_long_polls_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("redb:{}", dir.path().join("x.redb").display());
    let mut server = ServerProcess::start(&storage, &[]);
    let http = reqwest::Client::new();
    register(&http, &server, "alice").await;
    // Presence is not persisted: after a restart alice is offline until her poll arrives,
    // which is how the test knows the poll is being served before it sends SIGTERM.
    server.restart();
    let agent_url = server.url("/api/v1/agents/alice");
    let poll = tokio::spawn(
        http.get(server.url("/api/v1/messages/alice?wait_seconds=20"))
            .send(),
    );
    let started = std::time::Instant::now();
    loop {
        let agent: Value = http
            .get(&agent_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if agent["status"] == "online" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the poll never arrived: {agent}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let signalled = std::time::Instant::now();
    let status = server.terminate();
    let stopped_after = signalled.elapsed();
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        server.stderr()
    );
    let answer = poll.await.unwrap().expect("the poll is answered");
    assert_eq!(answer.status(), StatusCode::OK);
    let messages: Vec<Value> = answer.json().await.unwrap();
    assert!(messages.is_empty(), "{messages:?}");
    // Far below the 20 s wait, far above a normal shutdown: only a poll that waited fails it.
    assert!(
        stopped_after < Duration::from_secs(10),
        "stopping took {stopped_after:?}: the long poll held the shutdown"
    );
}

/// Longest wait for the server to notice that Redis went away or came back: the owner-lease
/// renewer looks every few seconds; this only bounds a failing test.
const STORAGE_NOTICED_WITHIN: Duration = Duration::from_secs(15);

/// Polls `/health` until it answers `want`; returns its body. Panics after
/// [`STORAGE_NOTICED_WITHIN`].
async fn health_becomes(http: &reqwest::Client, server: &ServerProcess, want: StatusCode) -> Value {
    let started = std::time::Instant::now();
    loop {
        let response = http.get(server.url("/health")).send().await.unwrap();
        if response.status() == want {
            return response.json().await.unwrap();
        }
        assert!(
            started.elapsed() < STORAGE_NOTICED_WITHIN,
            "/health still answers {} {STORAGE_NOTICED_WITHIN:?} later",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// POST /api/v1/messages to `recipient`; the status and the JSON body.
async fn send(
    http: &reqwest::Client,
    server: &ServerProcess,
    recipient: &str,
) -> (StatusCode, Value) {
    let response = http
        .post(server.url("/api/v1/messages"))
        .json(&json!({ "recipient": recipient, "content": "hello" }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Redis killed while the server is idle: `/health` turns 503 naming the storage without
/// anything being written, a write is refused at once with 503 `storage unavailable` (not
/// held until the request times out), and once Redis is back on its port, health and writes
/// recover by themselves.
#[tokio::test]
async fn redis_down_while_idle_is_reported_and_refuses_writes_until_it_is_back() {
    let mut redis = RedisServer::start(RedisMode::Aof { fsync: "always" });
    let server = ServerProcess::start(&format!("{}/0", redis.url()), &[]);
    let http = reqwest::Client::new();
    register(&http, &server, "alice").await;
    redis.kill();
    let unhealthy = health_becomes(&http, &server, StatusCode::SERVICE_UNAVAILABLE).await;
    let detail = unhealthy["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("storage unavailable"), "{unhealthy}");
    assert!(detail.contains("Redis"), "names the store: {unhealthy}");
    let (status, refused) = send(&http, &server, "alice").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    let detail = refused["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("storage unavailable"), "{refused}");
    redis.restart();
    health_becomes(&http, &server, StatusCode::OK).await;
    let (status, sent) = send(&http, &server, "alice").await;
    assert_eq!(status, StatusCode::OK, "{sent}");
}

/// Redis gone, then back EMPTY (no persistence): the server lost its prefix for good, and
/// `/health` and a refused write say so and that the server must be restarted, instead of
/// the stale "renewing the owner lease ... connection refused".
#[tokio::test]
async fn redis_back_empty_is_reported_as_lost_ownership_that_needs_a_restart() {
    let mut redis = RedisServer::start(RedisMode::NoPersistence);
    let server = ServerProcess::start(&format!("{}/0", redis.url()), &[]);
    let http = reqwest::Client::new();
    register(&http, &server, "alice").await;
    redis.kill();
    health_becomes(&http, &server, StatusCode::SERVICE_UNAVAILABLE).await;
    redis.restart();
    let started = std::time::Instant::now();
    let detail = loop {
        let response = http.get(server.url("/health")).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap_or_default().to_string();
        if detail.contains("ownership") {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            break detail;
        }
        assert!(
            started.elapsed() < STORAGE_NOTICED_WITHIN,
            "/health never mentioned ownership: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(detail.contains("restart"), "{detail}");
    assert!(!detail.contains("connection refused"), "{detail}");
    let (status, refused) = send(&http, &server, "alice").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    let detail = refused["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("lost ownership"), "{refused}");
    assert!(detail.contains("restart"), "{refused}");
}

/// Storage that cannot be reached: one paragraph on stderr saying what to do, exit code 1.
#[test]
fn unreachable_storage_is_one_clear_paragraph_and_exit_1() {
    let url = format!("redis://127.0.0.1:{}/0", free_port());
    let workdir = tempfile::tempdir().unwrap();
    let workdir = workdir.path().to_str().unwrap();
    let (status, _, stderr) = run_to_end(
        &[
            "serve",
            "--storage",
            &url,
            "--api-port",
            "0",
            "--workdir",
            workdir,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    let paragraph = stderr.trim();
    assert!(
        paragraph.starts_with("switchboard: cannot open the storage"),
        "{paragraph}"
    );
    assert!(paragraph.contains(&url));
    assert!(
        paragraph.contains("--storage"),
        "names the way out: {paragraph}"
    );
    assert!(!paragraph.contains("panicked"), "{paragraph}");
    assert_eq!(paragraph.lines().count(), 1, "one paragraph: {paragraph}");
}

/// With the default kind of storage (Redis) unreachable (a closed loopback port: the default
/// address may have a Redis), the start-up error suggests the embedded backend once, not once
/// from the storage layer and again from the server.
#[test]
fn no_redis_at_start_suggests_the_embedded_backend_once() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let workdir = tempfile::tempdir().unwrap();
    let workdir = workdir.path().to_str().unwrap();
    let (status, _, stderr) = run_to_end(
        &[
            "serve",
            "--storage",
            &url,
            "--api-port",
            "0",
            "--workdir",
            workdir,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(
        stderr.matches("redb:").count(),
        1,
        "the redb advice once: {stderr}"
    );
}

/// A storage URL whose scheme names no backend (`redis+socket://`, which looks like Redis) is
/// reported as an unknown scheme listing the supported ones, not as an unreachable Redis.
#[test]
fn an_unknown_storage_scheme_lists_the_supported_ones() {
    let url = format!("redis+socket://127.0.0.1:{}", free_port());
    let workdir = tempfile::tempdir().unwrap();
    let workdir = workdir.path().to_str().unwrap();
    let (status, _, stderr) = run_to_end(
        &[
            "serve",
            "--storage",
            &url,
            "--api-port",
            "0",
            "--workdir",
            workdir,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("unknown scheme"), "{stderr}");
    for supported in ["redis://", "rediss://", "redb:", "sled:", "memory:"] {
        assert!(stderr.contains(supported), "lists {supported}: {stderr}");
    }
    assert!(!stderr.contains("redis-cli"), "no Redis advice: {stderr}");
    assert!(!stderr.contains("reachable"), "no Redis advice: {stderr}");
}

/// A log written to a pipe (a file, a journal) is plain text, without terminal colour codes.
#[test]
fn a_log_written_to_a_pipe_has_no_colour_codes() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(switchboard_tests::server_harness::binary())
        .args(["serve", "--storage", "memory:", "--api-host", "127.0.0.1"])
        .args(["--api-port", "0", "--no-discovery", "--workdir"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("switchboard starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = stdout.find_map(|line| {
        line.ok()
            .filter(|line| line.starts_with("switchboard listening on "))
    });
    assert!(listening.is_some(), "the server never said it listens");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(child.wait().unwrap().success(), "{log}");
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "colour codes in a piped log: {log:?}"
    );
}
