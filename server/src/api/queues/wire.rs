//! JSON shapes of the queue API (`/api/v1/queues`), the engine for any producer or consumer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_engine::QueueConfig;
use utoipa::ToSchema;

/// One message to enqueue.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct QueueMessageIn {
    /// The payload (text).
    pub payload: String,
    /// 0–255, higher first; FIFO within one priority.
    #[serde(default)]
    pub priority: u8,
    /// Deliver no sooner than this many seconds from now.
    #[serde(default)]
    pub delay_seconds: Option<u64>,
    /// Time to live in seconds (0: never expire; default: the queue's).
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    /// Deliveries allowed (default: the queue's).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Enqueues with the same key inside the queue's dedup window store one message.
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// String headers kept with the message.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The answer to an enqueue (one entry per message, in order).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnqueueResponse {
    /// What happened to each message.
    pub messages: Vec<EnqueuedOut>,
}

/// What happened to one enqueued message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnqueuedOut {
    /// Its id (the earlier message's id when deduplicated).
    pub message_id: String,
    /// True when nothing new was stored because of the dedup key.
    pub deduplicated: bool,
}

/// `POST /api/v1/queues/{queue}/lease` body (optional).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct LeaseRequest {
    /// Most messages to lease (default 1, at most 1000).
    #[serde(default = "one")]
    pub max: usize,
    /// Lease length in seconds (default: the queue's).
    #[serde(default)]
    pub lease_seconds: Option<u64>,
    /// Long poll up to this many seconds (at most 20).
    #[serde(default)]
    pub wait_seconds: u64,
}

fn one() -> usize {
    1
}

impl Default for LeaseRequest {
    fn default() -> Self {
        Self {
            max: 1,
            lease_seconds: None,
            wait_seconds: 0,
        }
    }
}

/// A leased message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LeasedMessage {
    /// Message id.
    pub id: String,
    /// Proof of this lease: ack, nack or extend with it.
    pub lease_token: String,
    /// The payload (text; invalid UTF-8 is replaced).
    pub payload: String,
    /// 0–255.
    pub priority: u8,
    /// String headers.
    pub headers: BTreeMap<String, String>,
    /// Deliveries so far, counting this one.
    pub attempts: u32,
    /// Deliveries allowed.
    pub max_attempts: u32,
    /// When it was enqueued (ISO-8601 UTC).
    pub enqueued_at: String,
    /// When this lease runs out (ISO-8601 UTC).
    pub lease_expires_at: String,
}

/// A delivery named by id and lease token.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TokenRef {
    /// Message id.
    pub id: String,
    /// The token its lease came with.
    pub lease_token: String,
}

/// Body of ack, nack and extend: one delivery (`id`, `lease_token`) or, for ack and nack,
/// many (`items`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SettleRequest {
    /// Message id (one delivery).
    #[serde(default)]
    pub id: Option<String>,
    /// Its lease token (one delivery).
    #[serde(default)]
    pub lease_token: Option<String>,
    /// Many deliveries (ack and nack only).
    #[serde(default)]
    pub items: Option<Vec<TokenRef>>,
    /// Nack: retry after this many seconds (default: the queue's backoff).
    #[serde(default)]
    pub delay_seconds: Option<u64>,
    /// Extend: new lease length from now, in seconds (required).
    #[serde(default)]
    pub lease_seconds: Option<u64>,
}

/// What happened to each delivery of a settle request, in order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SettleResponse {
    /// One per delivery.
    pub results: Vec<SettleResult>,
}

/// What happened to one delivery.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SettleResult {
    /// Message id.
    pub id: String,
    /// `acknowledged`, `requeued`, `extended`, `not_found` or `lease_lost`.
    pub status: String,
    /// Extend: the new end of the lease.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lease_expires_at: Option<String>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

/// A queue's configuration (every field optional in a PUT: missing ones take the defaults).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct QueueConfigWire {
    /// Messages the queue may hold.
    pub max_size: u64,
    /// Time to live from enqueue in milliseconds; 0: no expiry.
    pub message_ttl_ms: u64,
    /// Lease length when a consumer names none, in milliseconds.
    pub default_lease_ms: u64,
    /// Deliveries before a message becomes a dead letter.
    pub max_attempts: u32,
    /// Backoff before the first retry after a nack, in milliseconds.
    pub retry_delay_ms: u64,
    /// Factor applied to the backoff per further attempt.
    pub retry_multiplier: f64,
    /// Upper bound of the backoff, in milliseconds.
    pub retry_delay_max_ms: u64,
    /// Keep dead letters (else drop them).
    pub dead_letters: bool,
    /// How long dedup keys are remembered, in milliseconds; 0: no dedup.
    pub dedup_window_ms: u64,
}

impl Default for QueueConfigWire {
    fn default() -> Self {
        QueueConfig::default().into()
    }
}

impl From<QueueConfig> for QueueConfigWire {
    fn from(c: QueueConfig) -> Self {
        Self {
            max_size: c.max_size,
            message_ttl_ms: c.message_ttl_ms,
            default_lease_ms: c.default_lease_ms,
            max_attempts: c.max_attempts,
            retry_delay_ms: c.retry_delay_ms,
            retry_multiplier: c.retry_multiplier,
            retry_delay_max_ms: c.retry_delay_max_ms,
            dead_letters: c.dead_letters,
            dedup_window_ms: c.dedup_window_ms,
        }
    }
}

impl From<QueueConfigWire> for QueueConfig {
    fn from(c: QueueConfigWire) -> Self {
        Self {
            max_size: c.max_size,
            message_ttl_ms: c.message_ttl_ms,
            default_lease_ms: c.default_lease_ms,
            max_attempts: c.max_attempts,
            retry_delay_ms: c.retry_delay_ms,
            retry_multiplier: c.retry_multiplier,
            retry_delay_max_ms: c.retry_delay_max_ms,
            dead_letters: c.dead_letters,
            dedup_window_ms: c.dedup_window_ms,
        }
    }
}

/// A queue's numbers and configuration.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueInfo {
    /// Queue name.
    pub name: String,
    /// Ready to lease.
    pub ready: u64,
    /// Waiting for their delay.
    pub delayed: u64,
    /// Out with consumers.
    pub leased: u64,
    /// Dead letters.
    pub dead: u64,
    /// Since the queue was created: enqueued, deduplicated, delivered, acked, retried,
    /// dead_lettered, expired, dropped.
    pub counters: BTreeMap<String, u64>,
    /// Its configuration.
    pub config: QueueConfigWire,
}

/// A dead letter of a queue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueDeadLetter {
    /// Message id.
    pub id: String,
    /// The payload (text).
    pub payload: String,
    /// 0–255.
    pub priority: u8,
    /// String headers.
    pub headers: BTreeMap<String, String>,
    /// Deliveries it had.
    pub attempts: u32,
    /// `max_attempts` or `expired`.
    pub reason: String,
    /// When it died (ISO-8601 UTC).
    pub died_at: String,
}

/// `GET .../dead-letters` query.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// Most to list (default 100, at most 1000).
    #[serde(default = "hundred")]
    pub limit: usize,
}

fn hundred() -> usize {
    100
}
