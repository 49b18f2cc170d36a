//! The load and the total-queue checker shared by the soak tests: producers send to two
//! agents, consumers lease and ack (leaving one message in ten unacked, so leases lapse and
//! messages are delivered again), and [`Book`] notes every send, delivery and ack.
//!
//! At the end [`drain`] acks whatever is left. The verdict: *lost* = sends answered 200 that
//! were never acked (and had no ack in flight when the server died); *unexpected* = deliveries
//! of content no producer tried to send; *resurrected* = deliveries after an ack was answered
//! 200. All three must be 0. *Duplicates* (second and later deliveries of a message whose
//! earlier lease was never acked) are allowed and counted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{json, Value};

/// The agents the load sends to.
pub const AGENTS: [&str; 2] = ["alice", "bob"];
/// Lease of the consumers, in seconds: short, so unacked messages come back soon.
const LEASE_SECONDS: u64 = 2;
/// Attempts each message is allowed: far more than the kills and lease lapses of a run, so a
/// message is never dead-lettered, which the total-queue check would count as lost. (A slow
/// machine can let a 2 s lease of a 50-message batch lapse before every ack is in.)
const ATTEMPTS_MAX: u32 = 1_000;
/// Pause after a failed request (server down, restarting).
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Everything the load saw.
#[derive(Debug, Default)]
pub struct Book {
    /// Contents producers tried to send (answered or not).
    tried: HashSet<String>,
    /// Sends answered 200: message id → content.
    pub sent: HashMap<String, String>,
    /// Deliveries per message id.
    deliveries: HashMap<String, u64>,
    /// Acks that got no answer: such a message may be gone (the ack committed, then the
    /// server died before answering) or not.
    ack_unanswered: HashSet<String>,
    /// Acks answered 200.
    acked: HashSet<String>,
    /// Deliveries of a message after its ack was answered 200.
    pub resurrected: Vec<String>,
    /// Deliveries of content nobody sent.
    pub unexpected: Vec<String>,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer (connection refused or reset, timeout).
    pub no_answer: u64,
}

impl Book {
    fn delivered(&mut self, id: &str, content: &str) {
        if !self.tried.contains(content) {
            self.unexpected.push(content.to_string());
        }
        if self.acked.contains(id) {
            self.resurrected.push(id.to_string());
        }
        *self.deliveries.entry(id.to_string()).or_default() += 1;
    }

    /// Sends answered 200 that were never acked (nor had an ack go unanswered).
    pub fn lost(&self) -> Vec<&String> {
        self.sent
            .keys()
            .filter(|id| !self.acked.contains(*id) && !self.ack_unanswered.contains(*id))
            .collect()
    }

    /// Deliveries beyond the first of each message.
    pub fn duplicates(&self) -> u64 {
        self.deliveries.values().map(|n| n.saturating_sub(1)).sum()
    }

    /// One line of figures.
    pub fn summary(&self) -> String {
        format!(
            "sent={} acked={} lost={} unexpected={} resurrected={} duplicates={} statuses={:?} \
             no_answer={}",
            self.sent.len(),
            self.acked.len(),
            self.lost().len(),
            self.unexpected.len(),
            self.resurrected.len(),
            self.duplicates(),
            self.statuses,
            self.no_answer
        )
    }
}

/// What each load task shares: the client, the book, the current base URL, the stop flag.
type Parts = (
    reqwest::Client,
    Arc<Mutex<Book>>,
    Arc<RwLock<String>>,
    Arc<AtomicBool>,
);

/// The load: producers and consumers against whatever server `base` names right now.
pub struct Load {
    pub book: Arc<Mutex<Book>>,
    /// `http://127.0.0.1:PORT` of the running server; changes at each restart.
    pub base: Arc<RwLock<String>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    http: reqwest::Client,
}

impl Load {
    /// Registers the agents and starts `producers` producers and one consumer per agent.
    pub async fn start(base: String, producers: usize) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(40))
            .build()
            .unwrap();
        for name in AGENTS {
            let response = http
                .post(format!("{base}/api/v1/agents/register"))
                .json(&json!({ "name": name }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "registering {name}");
        }
        let mut load = Self {
            book: Default::default(),
            base: Arc::new(RwLock::new(base)),
            stop: Default::default(),
            tasks: Vec::new(),
            http,
        };
        let counter = Arc::new(AtomicU64::new(0));
        for producer in 0..producers {
            let (http, book, base, stop) = load.parts();
            let counter = counter.clone();
            load.tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let content = format!("p{producer}-{n}");
                    let recipient = AGENTS[n as usize % AGENTS.len()];
                    book.lock().unwrap().tried.insert(content.clone());
                    let url = format!("{}/api/v1/messages?sender=load", base.read().unwrap());
                    let body = json!({ "recipient": recipient, "content": content, "max_attempts": ATTEMPTS_MAX });
                    let Some((status, reply)) = call(&book, http.post(url).json(&body)).await
                    else {
                        continue;
                    };
                    if status == 200 {
                        let id = reply["message_id"].as_str().unwrap().to_string();
                        book.lock().unwrap().sent.insert(id, content);
                    }
                }
            }));
        }
        for agent in AGENTS {
            let (http, book, base, stop) = load.parts();
            load.tasks.push(tokio::spawn(async move {
                let mut seen = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    consume(&http, &book, &base, agent, |_| {
                        seen += 1;
                        seen % 10 != 0
                    })
                    .await;
                }
            }));
        }
        load
    }

    fn parts(&self) -> Parts {
        (
            self.http.clone(),
            self.book.clone(),
            self.base.clone(),
            self.stop.clone(),
        )
    }

    /// Stops producers and consumers.
    pub async fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks.drain(..) {
            task.await.expect("a load task panicked");
        }
    }

    /// One send outside the producers' closed loop, as a new client would make while the
    /// producers wait for their answers: its status, or `None` when no answer came within
    /// `patience` (the send may still be accepted; its content is in the book either way).
    pub async fn send_once(&self, content: String, patience: Duration) -> Option<u16> {
        let (http, book, base, _) = self.parts();
        book.lock().unwrap().tried.insert(content.clone());
        let url = format!("{}/api/v1/messages?sender=probe", base.read().unwrap());
        let body =
            json!({ "recipient": AGENTS[0], "content": content, "max_attempts": ATTEMPTS_MAX });
        let answer = tokio::time::timeout(patience, call(&book, http.post(url).json(&body)));
        let (status, reply) = answer.await.ok().flatten()?;
        if status == 200 {
            let id = reply["message_id"].as_str().unwrap().to_string();
            book.lock().unwrap().sent.insert(id, content);
        }
        Some(status)
    }

    /// Acks everything left in the inboxes: polls until two polls a lease apart find nothing
    /// (so leases that lapsed are collected too).
    pub async fn drain(&self) {
        let (http, book, base, _) = self.parts();
        let mut empty_in_a_row = 0;
        while empty_in_a_row < 2 {
            let mut got = 0;
            for agent in AGENTS {
                got += consume(&http, &book, &base, agent, |_| true).await;
            }
            if got == 0 {
                empty_in_a_row += 1;
                tokio::time::sleep(Duration::from_secs(LEASE_SECONDS + 1)).await;
            } else {
                empty_in_a_row = 0;
            }
        }
    }
}

/// One request: the status and JSON body, or `None` (after a pause) when nothing answered.
async fn call(book: &Mutex<Book>, request: reqwest::RequestBuilder) -> Option<(u16, Value)> {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            *book.lock().unwrap().statuses.entry(status).or_default() += 1;
            let body = response.json::<Value>().await.unwrap_or(Value::Null);
            if status != 200 {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Some((status, body))
        }
        Err(_) => {
            book.lock().unwrap().no_answer += 1;
            tokio::time::sleep(RETRY_PAUSE).await;
            None
        }
    }
}

/// Leases a batch from `agent`'s inbox and acks the messages `ack` chooses; returns how many
/// were delivered.
async fn consume(
    http: &reqwest::Client,
    book: &Mutex<Book>,
    base: &RwLock<String>,
    agent: &str,
    mut ack: impl FnMut(&str) -> bool,
) -> usize {
    let base = base.read().unwrap().clone();
    let url = format!("{base}/api/v1/messages/{agent}?limit=50&lease_seconds={LEASE_SECONDS}");
    let Some((200, batch)) = call(book, http.get(url)).await else {
        return 0;
    };
    let batch = batch.as_array().cloned().unwrap_or_default();
    for message in &batch {
        let id = message["id"].as_str().unwrap().to_string();
        let content = message["content"].as_str().unwrap_or_default();
        book.lock().unwrap().delivered(&id, content);
        if !ack(&id) {
            continue;
        }
        let url = format!("{base}/api/v1/messages/{id}/ack?agent_id={agent}");
        match call(book, http.post(url)).await {
            Some((200, _)) => book.lock().unwrap().acked.insert(id),
            Some(_) => false,
            None => book.lock().unwrap().ack_unanswered.insert(id),
        };
    }
    batch.len()
}

/// Reads an environment variable as a number, with a default for the short CI run.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}
