//! The server's wire API as the load generator uses it: register, send, lease, ack (REST) and
//! push + ack frames (WebSocket).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as Frame;

use super::tracker::Tracker;

/// Longest a single HTTP call may take before it counts as failed.
const REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Attempts for one send that keeps getting 429 or transport errors.
const SEND_ATTEMPTS_MAX: u32 = 50;

/// A registered agent.
#[derive(Debug, Clone)]
pub struct Agent {
    pub id: String,
    pub name: String,
    /// The token registration answered with (`--auth token` servers), which removing the
    /// agent needs.
    pub token: Option<String>,
}

#[derive(Clone)]
pub struct Http {
    pub(super) base: String,
    pub(super) client: reqwest::Client,
    /// Every agent this run registered, removed when it ends (see [`Http::remove_registered`]).
    registered: Arc<parking_lot::Mutex<Vec<Agent>>>,
}

impl Http {
    pub fn new(base: &str) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            client,
            registered: Arc::default(),
        })
    }

    /// Registers `name`, remembering it for [`Http::remove_registered`].
    async fn register(&self, name: &str, body: &Value) -> Result<Agent, String> {
        let response = self
            .client
            .post(format!("{}/api/v1/agents/register", self.base))
            .json(body)
            .send()
            .await
            .map_err(|e| format!("register {name}: {e}"))?;
        let status = response.status();
        let value: Value = response
            .json()
            .await
            .map_err(|e| format!("register {name}: {e}"))?;
        let id = value["agent_id"]
            .as_str()
            .ok_or_else(|| format!("register {name} answered {status}: {value}"))?;
        let agent = Agent {
            id: id.to_string(),
            name: name.to_string(),
            token: value["token"].as_str().map(str::to_string),
        };
        self.registered.lock().push(agent.clone());
        Ok(agent)
    }

    /// Removes every agent this run registered (`DELETE /api/v1/agents/{id}` with the agent's
    /// own token), so that a load run does not leave offline agents behind in the registry and
    /// on the dashboard. Tries them all; the error names those that could not be removed.
    pub async fn remove_registered(&self) -> Result<(), String> {
        let agents = std::mem::take(&mut *self.registered.lock());
        let mut failed = Vec::new();
        for agent in agents {
            let mut request = self
                .client
                .delete(format!("{}/api/v1/agents/{}", self.base, agent.id));
            if let Some(token) = &agent.token {
                request = request.bearer_auth(token);
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => failed.push(format!("{} ({})", agent.name, response.status())),
                Err(error) => failed.push(format!("{} ({error})", agent.name)),
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "could not remove the load's agents {}; remove them with \
                 `DELETE /api/v1/agents/NAME`",
                failed.join(", ")
            ))
        }
    }

    pub async fn check_health(&self) -> Result<(), String> {
        let url = format!("{}/health", self.base);
        match self.client.get(&url).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("{url} answered {}: the server is not healthy", response.status())),
            Err(error) => Err(format!(
                "cannot reach {url} ({error}). Start the server first: cargo run --release -p switchboard-server -- serve"
            )),
        }
    }

    pub async fn register_agents(&self, run_id: &str, count: usize) -> Result<Vec<Agent>, String> {
        let mut agents = Vec::with_capacity(count);
        for index in 0..count {
            let name = format!("loadgen-{run_id}-agent-{index}");
            let body =
                json!({"name": name, "capabilities": ["loadgen"], "metadata": {"loadgen": true}});
            agents.push(self.register(&name, &body).await?);
        }
        Ok(agents)
    }

    /// Registers a producer as an agent (WebSocket producers send as themselves).
    pub async fn register_producer(&self, name: &str) -> Result<Agent, String> {
        let body = json!({"name": name, "capabilities": ["loadgen-producer"]});
        self.register(name, &body).await
    }

    pub async fn connect_ws(&self, agent: &Agent) -> Result<WsStream, String> {
        let url = format!("{}/ws/{}", self.base.replacen("http", "ws", 1), agent.id);
        // Small frames (acks, sends) must leave at once, not wait for Nagle's algorithm.
        let disable_nagle = true;
        // The default 128 KiB read chunk is zeroed before every read: costly for small frames.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(8 * 1024);
        let (socket, _) =
            tokio_tungstenite::connect_async_with_config(&url, Some(config), disable_nagle)
                .await
                .map_err(|e| format!("connect {url}: {e}"))?;
        Ok(socket)
    }
}

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One producer's share of the sending.
pub struct ProducerJob {
    pub http: Http,
    pub sender: String,
    pub run_id: String,
    pub agents: Vec<Agent>,
    pub tracker: Arc<Tracker>,
    pub next: Arc<AtomicU64>,
    pub total: u64,
    pub interval: Option<Duration>,
    pub filler: String,
}

/// Sends messages until `total` have been taken from the shared counter.
pub async fn produce(job: ProducerJob) {
    let url = format!("{}/api/v1/messages?sender={}", job.http.base, job.sender);
    let mut ticker = job.interval.map(|period| {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });
    loop {
        let seq = job.next.fetch_add(1, Ordering::Relaxed);
        if seq >= job.total {
            return;
        }
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        let agent = &job.agents[seq as usize % job.agents.len()];
        let body = json!({
            "recipient": agent.name,
            "content": format!("lg:{}:{}:{}", job.run_id, seq, job.filler),
            "priority": "medium",
            "metadata": {"loadgen_seq": seq},
        });
        job.tracker.sending(seq);
        let ok = post_with_retries(&job, &url, &body).await;
        job.tracker.sent(ok);
    }
}

/// Posts `body`; retries on 429 (after its `Retry-After`), 5xx and transport errors. True once
/// the server accepted it.
pub(super) async fn post_with_retries(job: &ProducerJob, url: &str, body: &Value) -> bool {
    for _ in 0..SEND_ATTEMPTS_MAX {
        match job.http.client.post(url).json(body).send().await {
            Ok(response) if response.status().is_success() => return true,
            Ok(response) if response.status().as_u16() == 429 => {
                job.tracker.throttled();
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.1);
                tokio::time::sleep(Duration::from_secs_f64(wait.clamp(0.01, 5.0))).await;
            }
            Ok(response) if response.status().is_server_error() => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(_) => return false,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    false
}

fn seq_of(message: &Value) -> Option<u64> {
    if let Some(seq) = message["metadata"]["loadgen_seq"].as_u64() {
        return Some(seq);
    }
    message["content"].as_str()?.split(':').nth(2)?.parse().ok()
}

/// Leases `batch` at a time over REST and acks each message with its own call.
pub async fn rest_consumer(
    http: Http,
    agent: Agent,
    tracker: Arc<Tracker>,
    stop: Arc<AtomicBool>,
    batch: usize,
) {
    let lease_url = format!(
        "{}/api/v1/messages/{}?limit={}&lease_seconds=60&wait_seconds=1",
        http.base, agent.id, batch
    );
    while !stop.load(Ordering::Relaxed) {
        let Some(messages) = leased(http.client.get(&lease_url), &tracker).await else {
            continue;
        };
        for message in messages {
            let Some(id) = message["id"].as_str() else {
                continue;
            };
            let seq = seq_of(&message);
            if let Some(seq) = seq {
                tracker.received(seq);
            }
            let ack_url = format!(
                "{}/api/v1/messages/{}/ack?agent_id={}",
                http.base, id, agent.id
            );
            match http.client.post(&ack_url).send().await {
                Ok(response) if response.status().is_success() => {
                    if let Some(seq) = seq {
                        tracker.acked(seq);
                    }
                }
                _ => tracker.consumer_error(),
            }
        }
    }
}

/// Sends a lease request and reads what it leased; `None` (counted as a consumer error, after
/// a pause) when it failed.
pub(super) async fn leased(
    request: reqwest::RequestBuilder,
    tracker: &Tracker,
) -> Option<Vec<Value>> {
    match request.send().await {
        Ok(response) if response.status().is_success() => {
            Some(response.json().await.unwrap_or_default())
        }
        _ => {
            tracker.consumer_error();
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// Receives pushes over the agent's WebSocket and acks each with an `ack` frame.
pub async fn ws_consumer(socket: WsStream, tracker: Arc<Tracker>, stop: Arc<AtomicBool>) {
    let (mut sink, mut stream) = socket.split();
    while !stop.load(Ordering::Relaxed) {
        let frame = match tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
            Err(_) => continue,
            Ok(None) => return,
            Ok(Some(Err(_))) => {
                tracker.consumer_error();
                return;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Frame::Text(text) = frame else { continue };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            tracker.consumer_error();
            continue;
        };
        if value["type"] == "error" {
            // An ack the server refused (or a frame it could not read).
            tracker.consumer_error();
            continue;
        }
        if value["type"] != "message" {
            continue;
        }
        if let Some(seq) = seq_of(&value) {
            tracker.received(seq);
        }
        if let Some(id) = value["id"].as_str() {
            let ack = json!({"type": "ack", "message_id": id}).to_string();
            if sink.send(Frame::Text(ack.into())).await.is_err() {
                tracker.consumer_error();
                return;
            }
        }
    }
    let _ = sink.close().await;
}

/// Sends with `send_message` frames over one socket, keeping up to `window` sends in flight.
pub async fn produce_ws(job: ProducerJob, socket: WsStream, window: usize) {
    let (mut sink, mut stream) = socket.split();
    let credit = Arc::new(tokio::sync::Semaphore::new(window));
    let replies = {
        let credit = credit.clone();
        let tracker = job.tracker.clone();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                let Frame::Text(text) = frame else { continue };
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                match value["type"].as_str() {
                    Some("sent") => tracker.sent(true),
                    Some("error") => tracker.sent(false),
                    _ => continue,
                }
                credit.add_permits(1);
            }
        })
    };
    let mut ticker = job.interval.map(tokio::time::interval);
    loop {
        let seq = job.next.fetch_add(1, Ordering::Relaxed);
        if seq >= job.total {
            break;
        }
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        match credit.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => break,
        }
        let agent = &job.agents[seq as usize % job.agents.len()];
        let frame = json!({
            "type": "send_message",
            "recipient": agent.name,
            "content": format!("lg:{}:{}:{}", job.run_id, seq, job.filler),
            "priority": "medium",
            "metadata": {"loadgen_seq": seq},
        });
        job.tracker.sending(seq);
        if sink
            .send(Frame::Text(frame.to_string().into()))
            .await
            .is_err()
        {
            job.tracker.sent(false);
            break;
        }
    }
    // Wait for the replies to every send before closing.
    let _ = tokio::time::timeout(Duration::from_secs(30), credit.acquire_many(window as u32)).await;
    replies.abort();
    let _ = sink.close().await;
}
