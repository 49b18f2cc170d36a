//! The HTTP client the agent tools share (CLI commands and the MCP server): one method per
//! server call, and [`ClientError`], whose messages tell a person what to do.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

pub use super::client_error::ClientError;
use super::client_error::{innermost, refusal, transport};
use super::credentials::Credentials;
use super::servers::{on_active, standby_in, NoActiveServer, Reply, Servers};
use crate::api::leased::LeasedAnswer;
use crate::api::receipts::{CancelAnswer, ReplyAnswer, ReplyRequest, ReplySent};
use crate::api::wire::{AckResponse, AgentInfo, BatchAckResponse, InboxMessage, Priority};
use crate::api::wire::{RegisterResponse, SendMessageResponse};

/// Server used when neither `--server` nor `SWITCHBOARD_URL` names one.
pub const SERVER_URL_DEFAULT: &str = "http://127.0.0.1:8080";
/// Longest time to open a connection to the server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest time a plain request may take when not told otherwise (`--request-timeout`); long
/// polls add their wait to it.
pub const REQUEST_TIMEOUT_SECONDS_DEFAULT: u64 = 15;
/// Longest single long poll the server allows, in seconds (`limits::WAIT_SECONDS_MAX`).
pub const LONG_POLL_SECONDS_MAX: u64 = crate::limits::WAIT_SECONDS_MAX;

/// A connection to the active one of a list of servers (see [`super::servers`]). Cheap to
/// clone; clones share which server answered last.
#[derive(Debug, Clone)]
pub struct Client {
    servers: Arc<Servers>,
    http: reqwest::Client,
    /// Longest a plain request may take (long polls add their wait).
    request_timeout: Duration,
    /// How long the waiting commands keep reconnecting to a server that went away (see
    /// [`super::retry::reconnecting`]), and how long any request looks for the active server
    /// of a list.
    reconnect_window: Duration,
}

impl Client {
    /// A client of the server(s) at `servers` (`URL[,URL...]`, e.g. `http://127.0.0.1:8080`),
    /// with no token.
    pub fn new(servers: &str) -> Result<Self, ClientError> {
        Self::with_credentials(servers, &Credentials::default())
    }

    /// A client of the server(s) at `servers` (`http://` or `https://`, comma-separated)
    /// presenting `credentials`.
    pub fn with_credentials(servers: &str, credentials: &Credentials) -> Result<Self, ClientError> {
        let servers = Servers::parse(servers).map_err(ClientError::Setup)?;
        let builder = credentials
            .apply(reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT))
            .map_err(ClientError::Setup)?;
        let http = builder.build().map_err(|error| ClientError::Unreachable {
            url: servers.current(),
            cause: innermost(&error),
        })?;
        Ok(Self {
            servers: Arc::new(servers),
            http,
            request_timeout: Duration::from_secs(REQUEST_TIMEOUT_SECONDS_DEFAULT),
            reconnect_window: Duration::from_secs(super::retry::RECONNECT_SECONDS_DEFAULT),
        })
    }

    /// This client with another per-request timeout and reconnect window.
    pub fn with_patience(mut self, request_timeout: Duration, reconnect_window: Duration) -> Self {
        self.request_timeout = request_timeout;
        self.reconnect_window = reconnect_window;
        self
    }

    /// The base URL of the server requests go to first (the one that answered last).
    pub fn base(&self) -> String {
        self.servers.current()
    }

    /// How long the waiting commands keep reconnecting to a server that went away.
    pub fn reconnect_window(&self) -> Duration {
        self.reconnect_window
    }

    /// Sends the request `build` makes for a server's base URL to the active server; its
    /// response when successful, else the refusal or the failure to reach any.
    async fn exchange(
        &self,
        build: impl Fn(&reqwest::Client, &str) -> RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let reached = on_active(&self.servers, self.reconnect_window, |base| {
            let request = build(&self.http, &base);
            async move { exchange_at(&base, request).await }
        })
        .await;
        reached.unwrap_or_else(|none| Err(self.no_active(none)))
    }

    /// The error when no server was active: one URL that refused the connection is "cannot
    /// reach" it, as before lists existed.
    fn no_active(&self, none: NoActiveServer) -> ClientError {
        match none.tried.as_slice() {
            [only] if self.servers.listed().len() == 1 && !only.standby => {
                ClientError::Unreachable {
                    url: only.url.clone(),
                    cause: only.said.clone(),
                }
            }
            _ => ClientError::NoActiveServer {
                tried: none.summary(),
                seconds: none.searched.as_secs(),
            },
        }
    }

    /// Sends a request and reads a JSON answer; 404 and other refusals become errors carrying
    /// the server's `detail`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let response = self
            .exchange(|http, base| {
                let request = http
                    .request(method.clone(), format!("{base}{path}"))
                    .query(query)
                    .timeout(timeout);
                match body {
                    Some(body) => request.json(body),
                    None => request,
                }
            })
            .await?;
        let url = response.url().to_string();
        let text = response
            .text()
            .await
            .map_err(|error| transport(&self.base(), &error))?;
        serde_json::from_str(&text).map_err(|error| ClientError::Garbled {
            url,
            cause: error.to_string(),
        })
    }

    /// `POST /api/v1/messages?sender=...`, tried again (with the message's idempotency key,
    /// so at most one copy is stored) while the server cannot be reached or does not answer;
    /// see [`super::retry::SEND_ATTEMPTS_MAX`].
    pub async fn send(
        &self,
        sender: &str,
        message: &Outgoing,
    ) -> Result<SendMessageResponse, ClientError> {
        super::retry::send_with_retries(self, &message.idempotency_key, || {
            self.send_once(sender, message)
        })
        .await
    }

    /// One `POST /api/v1/messages?sender=...`.
    async fn send_once(
        &self,
        sender: &str,
        message: &Outgoing,
    ) -> Result<SendMessageResponse, ClientError> {
        let body = serde_json::to_value(message).expect("a message always serializes");
        let query = [("sender", sender.to_string())];
        self.call(
            Method::POST,
            "/api/v1/messages",
            &query,
            Some(&body),
            self.request_timeout,
        )
        .await
    }

    /// Leases up to `limit` of `agent`'s messages, waiting up to `wait_seconds` (at most
    /// [`LONG_POLL_SECONDS_MAX`]) for one.
    pub async fn lease(
        &self,
        agent: &str,
        limit: usize,
        wait_seconds: u64,
    ) -> Result<Vec<InboxMessage>, ClientError> {
        let wait_seconds = wait_seconds.min(LONG_POLL_SECONDS_MAX);
        let query = [
            ("limit", limit.to_string()),
            ("wait_seconds", wait_seconds.to_string()),
        ];
        let path = format!("/api/v1/messages/{}", encode(agent));
        let timeout = self.request_timeout + Duration::from_secs(wait_seconds);
        self.call(Method::GET, &path, &query, None, timeout).await
    }

    /// `agent`'s messages delivered to it and not settled yet (`GET .../leased`).
    pub async fn leased(&self, agent: &str) -> Result<LeasedAnswer, ClientError> {
        let path = format!("/api/v1/agents/{}/leased", encode(agent));
        self.call(Method::GET, &path, &[], None, self.request_timeout)
            .await
    }

    /// Acks `agent`'s leased messages by id, in one request.
    pub async fn ack(&self, agent: &str, ids: &[String]) -> Result<BatchAckResponse, ClientError> {
        let body = json!({ "agent_id": agent, "message_ids": ids });
        self.call(
            Method::POST,
            "/api/v1/messages/ack",
            &[],
            Some(&body),
            self.request_timeout,
        )
        .await
    }

    /// Gives a leased message back, to be delivered again after `delay_seconds` (at once when
    /// 0; the queue's backoff when `None`).
    pub async fn nack(
        &self,
        agent: &str,
        id: &str,
        delay_seconds: Option<u64>,
    ) -> Result<AckResponse, ClientError> {
        let mut query = vec![("agent_id", agent.to_string())];
        if let Some(delay) = delay_seconds {
            query.push(("delay_seconds", delay.to_string()));
        }
        let path = format!("/api/v1/messages/{}/nack", encode(id));
        self.call(Method::POST, &path, &query, None, self.request_timeout)
            .await
    }

    /// A message's delivery receipt (`GET /api/v1/messages/{id}/status`), as JSON.
    pub async fn status(&self, id: &str) -> Result<Value, ClientError> {
        let path = format!("/api/v1/messages/{}/status", encode(id));
        self.call(Method::GET, &path, &[], None, self.request_timeout)
            .await
    }

    /// Waits up to `wait_seconds` for the reply to question `id` that `agent` asked.
    pub async fn wait_reply(
        &self,
        agent: &str,
        id: &str,
        wait_seconds: u64,
    ) -> Result<Option<InboxMessage>, ClientError> {
        let wait_seconds = wait_seconds.min(LONG_POLL_SECONDS_MAX);
        let query = [
            ("agent_id", agent.to_string()),
            ("wait_seconds", wait_seconds.to_string()),
        ];
        let path = format!("/api/v1/messages/{}/reply", encode(id));
        let timeout = self.request_timeout + Duration::from_secs(wait_seconds);
        let answer: ReplyAnswer = self.call(Method::GET, &path, &query, None, timeout).await?;
        Ok(answer.reply)
    }

    /// `agent` answers message `id` (`POST /api/v1/messages/{id}/reply`): the answer goes to
    /// its sender, and the question is acknowledged unless `answer.keep_question`.
    pub async fn reply(
        &self,
        agent: &str,
        id: &str,
        answer: &ReplyRequest,
    ) -> Result<ReplySent, ClientError> {
        let body = serde_json::to_value(answer).expect("an answer always serializes");
        let query = [("agent_id", agent.to_string())];
        let path = format!("/api/v1/messages/{}/reply", encode(id));
        let once = || {
            self.call(
                Method::POST,
                &path,
                &query,
                Some(&body),
                self.request_timeout,
            )
        };
        match &answer.dedup_key {
            // Retried like a send: the key stores the answer at most once.
            Some(key) => super::retry::send_with_retries(self, key, once).await,
            None => once().await,
        }
    }

    /// Stops waiting for the reply to question `id`; a late reply goes to the inbox.
    pub async fn cancel_reply(&self, agent: &str, id: &str) -> Result<CancelAnswer, ClientError> {
        let query = [("agent_id", agent.to_string())];
        let path = format!("/api/v1/messages/{}/reply", encode(id));
        self.call(Method::DELETE, &path, &query, None, self.request_timeout)
            .await
    }

    /// Every registered agent.
    pub async fn agents(&self) -> Result<Vec<AgentInfo>, ClientError> {
        self.call(
            Method::GET,
            "/api/v1/agents",
            &[],
            None,
            self.request_timeout,
        )
        .await
    }

    /// One agent, by name or id.
    pub async fn agent(&self, key: &str) -> Result<AgentInfo, ClientError> {
        let path = format!("/api/v1/agents/{}", encode(key));
        self.call(Method::GET, &path, &[], None, self.request_timeout)
            .await
    }

    /// `DELETE /api/v1/agents/{key}`: removes an agent (by name or id) from the registry.
    pub async fn remove_agent(&self, key: &str) -> Result<Value, ClientError> {
        let path = format!("/api/v1/agents/{}", encode(key));
        self.call(Method::DELETE, &path, &[], None, self.request_timeout)
            .await
    }

    /// Opens the live feed (`GET /api/v1/feed`), optionally only `agent`'s traffic.
    pub async fn feed(&self, agent: Option<&str>) -> Result<reqwest::Response, ClientError> {
        // No timeout: the feed is meant to stay open; `connect_timeout` still bounds the start.
        self.exchange(|http, base| {
            let request = http.get(format!("{base}/api/v1/feed"));
            match agent {
                Some(agent) => request.query(&[("agent", agent)]),
                None => request,
            }
        })
        .await
    }

    /// `POST /api/v1/agents/register`: registers `name` (or updates it); with `--auth token`
    /// the answer carries the agent's new token.
    pub async fn register(
        &self,
        name: &str,
        capabilities: &[String],
    ) -> Result<RegisterResponse, ClientError> {
        let body = json!({ "name": name, "capabilities": capabilities });
        self.call(
            Method::POST,
            "/api/v1/agents/register",
            &[],
            Some(&body),
            self.request_timeout,
        )
        .await
    }
}

/// One request to the server at `base`, as the search for the active server reads it: no
/// connection and a standby's 503 send it on to the next server; anything else is this
/// server's answer.
async fn exchange_at(
    base: &str,
    request: RequestBuilder,
) -> Reply<Result<reqwest::Response, ClientError>> {
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            return match transport(base, &error) {
                ClientError::Unreachable { cause, .. } => Reply::Unreachable { cause },
                other => Reply::Answered(Err(other)),
            }
        }
    };
    let status = response.status();
    if status.is_success() {
        return Reply::Answered(Ok(response));
    }
    let text = match response.text().await {
        Ok(text) => text,
        Err(error) => return Reply::Answered(Err(transport(base, &error))),
    };
    let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
    if let Some(active) = standby_in(status.as_u16(), &body) {
        return Reply::Standby { active };
    }
    let detail = body["detail"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| text.chars().take(300).collect());
    Reply::Answered(Err(refusal(status, &body, detail)))
}

/// A message to send: the body of `POST /api/v1/messages`.
#[derive(Debug, Clone, Serialize)]
pub struct Outgoing {
    /// Agent name or id, `capability:NAME`, or `auto`.
    pub recipient: String,
    /// The text.
    pub content: String,
    /// Its priority.
    pub priority: Priority,
    /// Free-form metadata (`thread_id`, `expects_reply`).
    pub metadata: serde_json::Map<String, Value>,
    /// The message this one answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Sent as the server's `dedup_key`: a retry with the same key within the dedup window
    /// (5 minutes) answers the first message's id instead of storing a second copy.
    #[serde(rename = "dedup_key")]
    pub idempotency_key: String,
}

impl Outgoing {
    /// A medium-priority message with no metadata and a fresh idempotency key.
    pub fn new(recipient: &str, content: &str) -> Self {
        Self {
            recipient: recipient.to_string(),
            content: content.to_string(),
            priority: Priority::Medium,
            metadata: serde_json::Map::new(),
            reply_to: None,
            idempotency_key: idempotency_key(),
        }
    }
}

/// A fresh idempotency key for one send (or reply), kept across its retries.
pub fn idempotency_key() -> String {
    format!("sb-{}", uuid::Uuid::new_v4())
}

/// Whole seconds of a long poll covering `remaining` (rounded up, so that a poll never asks for
/// 0 s while time is left), at most [`LONG_POLL_SECONDS_MAX`].
pub fn poll_seconds(remaining: Duration) -> u64 {
    remaining
        .as_millis()
        .div_ceil(1000)
        .min(u128::from(LONG_POLL_SECONDS_MAX)) as u64
}

/// Percent-encodes one path segment (agent names and ids are plain, but a person may type
/// anything).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_polls_round_up_and_stay_within_the_server_limit() {
        assert_eq!(poll_seconds(Duration::from_millis(1)), 1);
        assert_eq!(poll_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(poll_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(poll_seconds(Duration::ZERO), 0);
        assert_eq!(
            poll_seconds(Duration::from_secs(3600)),
            LONG_POLL_SECONDS_MAX
        );
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode("alice-1.b_c"), "alice-1.b_c");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn unreachable_server_says_how_to_start_it() {
        let error = ClientError::Unreachable {
            url: "http://127.0.0.1:9".into(),
            cause: "Connection refused".into(),
        };
        let text = error.to_string();
        assert!(text.starts_with("cannot reach switchboard at http://127.0.0.1:9"));
        assert!(text.contains("start it with `switchboard serve`"));
    }
}
