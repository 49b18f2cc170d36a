//! The server's wire API as the load generator uses it over REST: register, send, lease, ack
//! (the WebSocket side is in `ws`). Every request goes to the active server of `--server
//! URL[,URL...]` ([`Http::exchange`]), so a load keeps running across a failover.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::RequestBuilder;
use serde_json::{json, Value};

use super::tracker::Tracker;
use crate::cli::client::retry::RECONNECT_SECONDS_DEFAULT;
use crate::cli::client::servers::{on_active, standby_in, Reply, Servers};

/// Longest a single HTTP call may take before it counts as failed.
const REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Attempts for one send that keeps getting 429 or transport errors.
const SEND_ATTEMPTS_MAX: u32 = 50;
/// How long a request looks for the active server of a list while none is (a failover).
pub(super) const ACTIVE_SEARCH_WINDOW: Duration = Duration::from_secs(RECONNECT_SECONDS_DEFAULT);

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
    servers: Arc<Servers>,
    pub(super) client: reqwest::Client,
    /// Every agent this run registered, removed when it ends (see [`Http::remove_registered`]).
    registered: Arc<parking_lot::Mutex<Vec<Agent>>>,
    /// Requests answered by another server than the one they were first sent to (a failover).
    moved: Arc<AtomicU64>,
}

impl Http {
    /// A client of `servers` (`URL[,URL...]`).
    pub fn new(servers: &str) -> Result<Self, String> {
        let servers = Servers::parse(servers)?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            servers: Arc::new(servers),
            client,
            registered: Arc::default(),
            moved: Arc::default(),
        })
    }

    /// The server's base URL that answered last.
    pub fn base(&self) -> String {
        self.servers.current()
    }

    /// The servers, for the WebSocket side's own search.
    pub(super) fn servers(&self) -> &Servers {
        &self.servers
    }

    /// Requests so far answered by another server than the one first asked.
    pub fn moved(&self) -> u64 {
        self.moved.load(Ordering::Relaxed)
    }

    /// Counts a request that went to another server than the one it was first sent to.
    pub(super) fn count_move(&self) {
        self.moved.fetch_add(1, Ordering::Relaxed);
    }

    /// [`Http::exchange`] for a request of its own (not a retry of an earlier one).
    pub async fn once(
        &self,
        build: impl Fn(&str) -> RequestBuilder,
    ) -> Result<reqwest::Response, String> {
        self.exchange(&mut None, build).await
    }

    /// Sends the request `build` makes for a base URL to the active server (see
    /// [`crate::cli::client::servers`]); `Err` when no answer came (to be retried) or no
    /// server is active. `origin` is the server the request was first sent to (pass the same
    /// across the retries of one request): an answer from another counts as moved.
    pub async fn exchange(
        &self,
        origin: &mut Option<String>,
        build: impl Fn(&str) -> RequestBuilder,
    ) -> Result<reqwest::Response, String> {
        let reached = on_active(&self.servers, ACTIVE_SEARCH_WINDOW, |base| {
            origin.get_or_insert_with(|| base.clone());
            let request = build(&base);
            async move {
                match request.send().await {
                    Err(error) if error.is_connect() => Reply::Unreachable {
                        cause: error.to_string(),
                    },
                    Err(error) => Reply::Answered(Err(error.to_string())),
                    Ok(response) if response.status().as_u16() == 503 => {
                        let body: Value = response.json().await.unwrap_or(Value::Null);
                        match standby_in(503, &body) {
                            Some(active) => Reply::Standby { active },
                            None => {
                                Reply::Answered(Err(format!("503 Service Unavailable: {body}")))
                            }
                        }
                    }
                    Ok(response) => Reply::Answered(Ok((base, response))),
                }
            }
        })
        .await;
        match reached {
            Ok(Ok((base, response))) => {
                if origin.as_deref() != Some(base.as_str()) {
                    self.count_move();
                    *origin = Some(base);
                }
                Ok(response)
            }
            Ok(Err(error)) => Err(error),
            Err(none) => Err(format!("no active server: {}", none.summary())),
        }
    }

    /// Registers `name`, remembering it for [`Http::remove_registered`].
    async fn register(&self, name: &str, body: &Value) -> Result<Agent, String> {
        let response = self
            .once(|base| {
                self.client
                    .post(format!("{base}/api/v1/agents/register"))
                    .json(body)
            })
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
            let removal = self.once(|base| {
                let request = self
                    .client
                    .delete(format!("{base}/api/v1/agents/{}", agent.id));
                match &agent.token {
                    Some(token) => request.bearer_auth(token),
                    None => request,
                }
            });
            match removal.await {
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
        let health = self.once(|base| self.client.get(format!("{base}/health")));
        match health.await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!(
                "{} answered {}: the server is not healthy",
                response.url(),
                response.status()
            )),
            Err(error) => Err(format!(
                "cannot reach {} ({error}). Start the server first: cargo run --release -p \
                 switchboard-server -- serve",
                self.servers.listed().join(", ")
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
}

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
    let path = format!("/api/v1/messages?sender={}", job.sender);
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
        let ok = post_with_retries(&job, &path, &body).await;
        job.tracker.sent(ok);
    }
}

/// Posts `body` to `path` on the active server; retries on 429 (after its `Retry-After`),
/// 5xx and transport errors (a failover among them: the retry goes to the new active
/// server). True once the server accepted it.
pub(super) async fn post_with_retries(job: &ProducerJob, path: &str, body: &Value) -> bool {
    let mut origin = None;
    for _ in 0..SEND_ATTEMPTS_MAX {
        let http = &job.http;
        let posted = http
            .exchange(&mut origin, |base| {
                http.client.post(format!("{base}{path}")).json(body)
            })
            .await;
        match posted {
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
                job.tracker.send_retried();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(_) => return false,
            Err(_) => {
                job.tracker.send_retried();
                tokio::time::sleep(Duration::from_millis(50)).await
            }
        }
    }
    false
}

pub(super) fn seq_of(message: &Value) -> Option<u64> {
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
    let lease_path = format!(
        "/api/v1/messages/{}?limit={}&lease_seconds=60&wait_seconds=1",
        agent.id, batch
    );
    while !stop.load(Ordering::Relaxed) {
        let lease = http.once(|base| http.client.get(format!("{base}{lease_path}")));
        let Some(messages) = leased(lease, &tracker).await else {
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
            let ack_path = format!("/api/v1/messages/{id}/ack?agent_id={}", agent.id);
            let ack = http.once(|base| http.client.post(format!("{base}{ack_path}")));
            match ack.await {
                Ok(response) if response.status().is_success() => {
                    if let Some(seq) = seq {
                        tracker.acked(seq);
                    }
                }
                // After a failover the lease held on the dead server is gone with it (or the
                // message comes again when it ends): counted, not fatal.
                _ => tracker.consumer_error(),
            }
        }
    }
}

/// Awaits a lease request and reads what it leased; `None` (counted as a consumer error, after
/// a pause) when it failed.
pub(super) async fn leased(
    lease: impl std::future::Future<Output = Result<reqwest::Response, String>>,
    tracker: &Tracker,
) -> Option<Vec<Value>> {
    match lease.await {
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
