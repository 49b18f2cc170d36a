//! Many concurrent WebSocket agents with heartbeats and message traffic: the server's memory
//! (VmRSS from /proc) stays flat after warm-up, and every agent keeps getting its heartbeats
//! answered. Short by default (CI: 200 agents for 20 s); the full run is
//! `WS_AGENTS=1000 WS_SOAK_SECONDS=600 cargo test -p switchboard-tests --test soak_ws_memory
//! -- --nocapture` (mind `ulimit -n`: two descriptors per agent on this machine).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use switchboard_tests::server_harness::ServerProcess;
use tokio_tungstenite::tungstenite::Message;

/// Heartbeat period of each agent.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// Allowed growth of the resident set from the end of warm-up to the end, as a fraction of
/// the warm size plus a fixed slack (allocator pages, histogram buckets filling in).
const GROWTH_FRACTION_MAX: f64 = 0.25;
const GROWTH_SLACK_KIB: u64 = 16 * 1024;

/// Reads an environment variable as a number, with a default for the short CI run.
fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The server's resident set in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// One agent: heartbeats every second, acks every pushed message, counts heartbeat answers.
async fn agent(
    url: String,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    acked: Arc<AtomicU64>,
) {
    let (socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let (mut sink, mut stream) = socket.split();
    let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
    let mut got_answer = false;
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            _ = beat.tick() => {
                sink.send(Message::text(json!({"type": "heartbeat"}).to_string())).await.unwrap();
            }
            frame = stream.next() => {
                let Some(Ok(Message::Text(text))) = frame else { continue };
                let frame: Value = serde_json::from_str(&text).unwrap();
                match frame["type"].as_str() {
                    Some("heartbeat_ack") if !got_answer => {
                        got_answer = true;
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Some("message") => {
                        let ack = json!({"type": "ack", "message_id": frame["id"]});
                        sink.send(Message::text(ack.to_string())).await.unwrap();
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = sink.send(Message::Close(None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_with_many_websocket_agents() {
    let agents = env_or("WS_AGENTS", 200) as usize;
    let seconds = env_or("WS_SOAK_SECONDS", 20);
    // Pause between two sends of the producer; ~5 ms gives ~140 messages/s on the test
    // machine. A shorter pause fills the receipts book sooner in long runs.
    let send_pause_ms = env_or("WS_SOAK_SEND_PAUSE_MS", 5);
    let server = ServerProcess::start("memory:", &[]);
    let http = reqwest::Client::new();
    for n in 0..agents {
        let response = http
            .post(server.url("/api/v1/agents/register"))
            .json(&json!({ "name": format!("agent-{n}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for n in 0..agents {
        let url = server.ws_url(&format!("/ws/agent-{n}"));
        tasks.push(tokio::spawn(agent(
            url,
            stop.clone(),
            answered.clone(),
            acked.clone(),
        )));
    }
    // Traffic: a steady trickle of messages to agents in turn, pushed and acked over sockets.
    let producer = {
        let (http, url, stop) = (
            http.clone(),
            server.url("/api/v1/messages?sender=soak"),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let body = json!({ "recipient": format!("agent-{}", n % agents), "content": format!("m{n}") });
                let response = http.post(&url).json(&body).send().await.unwrap();
                assert_eq!(response.status(), 200);
                n += 1;
                tokio::time::sleep(Duration::from_millis(send_pause_ms)).await;
            }
            n
        })
    };
    let mut samples = Vec::new();
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(rss_kib(server.pid()));
    }
    stop.store(true, Ordering::Relaxed);
    let sent = producer.await.unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let third = samples.len() / 3;
    let warm = *samples[..third.max(1)].iter().max().unwrap();
    let last = *samples[samples.len() - third.max(1)..]
        .iter()
        .max()
        .unwrap();
    eprintln!(
        "{agents} agents, {seconds} s, {sent} messages sent, {} acked over sockets; \
         RSS KiB per second: {samples:?}; warm {warm}, last third max {last}",
        acked.load(Ordering::Relaxed)
    );
    assert_eq!(
        answered.load(Ordering::Relaxed),
        agents as u64,
        "every agent's heartbeat is answered"
    );
    let bound = warm + (warm as f64 * GROWTH_FRACTION_MAX) as u64 + GROWTH_SLACK_KIB;
    assert!(
        last <= bound,
        "RSS grew from {warm} KiB to {last} KiB (bound {bound} KiB): {samples:?}"
    );
}
