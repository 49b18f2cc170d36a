//! The JSON shapes of the HTTP and WebSocket API. Names and shapes follow the original system
//! (see `ORIGINAL_SYSTEM.md`) so its clients keep working; fields it lacked are additions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::limits;

/// Free-form JSON object carried with messages and agents.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// Message priority, as the original spelled it. Critical is delivered first; within one
/// priority, first in first out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Delivered last.
    Low,
    /// The default.
    #[default]
    Medium,
    /// Before medium.
    High,
    /// Before everything else.
    Critical,
}

impl Priority {
    /// The engine priority (higher first). Spaced out so that finer levels can be added.
    pub fn engine(self) -> u8 {
        match self {
            Priority::Low => 64,
            Priority::Medium => 128,
            Priority::High => 192,
            Priority::Critical => 255,
        }
    }

    /// The nearest named priority of an engine priority.
    pub fn from_engine(value: u8) -> Self {
        match value {
            0..=95 => Priority::Low,
            96..=159 => Priority::Medium,
            160..=223 => Priority::High,
            _ => Priority::Critical,
        }
    }
}

fn expires_default() -> Option<u64> {
    Some(limits::EXPIRES_IN_HOURS_DEFAULT)
}

/// `POST /api/v1/messages` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SendMessageRequest {
    /// Recipient agent, by name or id.
    pub recipient: String,
    /// The message text; must not be empty.
    pub content: String,
    /// Defaults to medium.
    #[serde(default)]
    pub priority: Priority,
    /// Lifetime in hours (default 24); `null` means the message never expires.
    #[serde(default = "expires_default")]
    pub expires_in_hours: Option<u64>,
    /// Free-form object kept with the message.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    /// Deliver no sooner than this many seconds from now.
    #[serde(default)]
    pub delay_seconds: Option<u64>,
    /// Deliveries allowed before the message becomes a dead letter (default 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// A second send with the same key within 5 minutes returns the first message's id.
    #[serde(default)]
    pub dedup_key: Option<String>,
    /// Id of the message this one answers.
    #[serde(default)]
    pub reply_to: Option<String>,
}

/// `POST /api/v1/messages` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SendMessageResponse {
    /// The new message's id (the first message's id when deduplicated).
    pub message_id: String,
    /// Always `"sent"`.
    pub status: String,
    /// The recipient's name.
    pub recipient: String,
    /// True when `dedup_key` matched an earlier message and nothing new was stored.
    pub deduplicated: bool,
    /// The agent that got it, by name; `null` while it waits for a matching agent.
    #[serde(default)]
    pub routed_to: Option<String>,
    /// The routing rule that matched (`auto` recipients only).
    #[serde(default)]
    pub rule: Option<String>,
    /// The strategy that picked (or will pick) the agent: `round_robin`, `least_loaded` or
    /// `sticky`; `null` for a named recipient.
    #[serde(default)]
    pub strategy: Option<String>,
    /// The capability aimed at, if any.
    #[serde(default)]
    pub capability: Option<String>,
    /// The waiting queue holding it until a matching agent comes online, if no candidate was
    /// online (then `recipient` names this queue).
    #[serde(default)]
    pub waiting_queue: Option<String>,
    /// The capability the message waits for, when it waits in a capability's queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for_capability: Option<String>,
    /// For people: why a routed message waits (e.g. no agent has the capability, with the
    /// close ones agents do have), or which rule `auto` fell back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `POST /api/v1/broadcast` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct BroadcastRequest {
    /// Names or ids; empty means every online agent.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// The message text; must not be empty.
    pub content: String,
    /// Defaults to medium.
    #[serde(default)]
    pub priority: Priority,
    /// Lifetime in hours (default 24); `null` means never expire.
    #[serde(default = "expires_default")]
    pub expires_in_hours: Option<u64>,
    /// Copied into every copy, with `broadcast_id` added.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Metadata,
}

/// `POST /api/v1/broadcast` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BroadcastResponse {
    /// Shared by every copy, as `metadata.broadcast_id`.
    pub broadcast_id: String,
    /// Copies stored.
    pub messages_sent: usize,
    /// Targets with a WebSocket open when the copies were stored.
    pub websocket_sent: usize,
    /// How many agents were targeted (a count, as the original answered).
    pub target_agents: usize,
    /// Names of the targets.
    pub target_agent_names: Vec<String>,
}

/// A message leased from an agent's inbox.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxMessage {
    /// Message id: ack, nack or extend with it.
    pub id: String,
    /// Who sent it.
    pub sender: String,
    /// The text.
    pub content: String,
    /// Its priority.
    pub priority: Priority,
    /// When it was sent (ISO-8601 UTC).
    pub created_at: String,
    /// The sender's metadata (broadcast copies carry `broadcast_id`).
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    /// Id of the message this one answers, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reply_to: Option<String>,
    /// Deliveries so far, counting this one.
    pub attempts: u32,
    /// Deliveries allowed.
    pub max_attempts: u32,
    /// When the lease runs out and the message is delivered again (ISO-8601 UTC).
    pub lease_expires_at: String,
}

/// `GET /api/v1/messages/{agent}` query.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Most messages to lease (default 10, at most 1000).
    #[serde(default = "limit_default")]
    pub limit: usize,
    /// Lease length in seconds (default 300).
    #[serde(default)]
    pub lease_seconds: Option<u64>,
    /// Long poll: wait up to this many seconds (at most 20) for a message.
    #[serde(default)]
    pub wait_seconds: u64,
}

fn limit_default() -> usize {
    10
}

/// The `sender` query of the sending endpoints.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SenderQuery {
    /// Who sends (default `"system"`).
    #[serde(default = "sender_default")]
    pub sender: String,
}

fn sender_default() -> String {
    "system".into()
}

/// The `agent_id` query of ack, nack and extend.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentQuery {
    /// The agent the message belongs to, by name or id.
    pub agent_id: String,
    /// Nack: retry after this many seconds (default: the queue's backoff).
    #[serde(default)]
    pub delay_seconds: Option<u64>,
    /// Extend: the new lease length from now, in seconds.
    #[serde(default)]
    pub lease_seconds: Option<u64>,
}

/// Answer to an ack.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AckResponse {
    /// `"acknowledged"`, `"requeued"` or `"extended"`.
    pub status: String,
    /// The message.
    pub message_id: String,
    /// Extend: the new end of the lease (ISO-8601 UTC).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lease_expires_at: Option<String>,
}

/// `POST /api/v1/messages/ack` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct BatchAckRequest {
    /// The agent, by name or id.
    pub agent_id: String,
    /// Ids of its leased messages.
    pub message_ids: Vec<String>,
}

/// `POST /api/v1/messages/ack` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchAckResponse {
    /// Ids acknowledged now.
    pub acknowledged: Vec<String>,
    /// Ids that are not this agent's leased messages (or were acked already).
    pub not_found: Vec<String>,
}

/// Agent presence, as the original's enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    /// Heartbeat within 5 minutes or a WebSocket open.
    Online,
    /// Neither.
    Offline,
    /// Reported by the agent.
    Busy,
    /// Reported by the agent.
    Idle,
    /// Reported by the agent.
    Error,
}

/// `POST /api/v1/agents/register` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Unique name; registering it again updates the agent and keeps its id.
    pub name: String,
    /// What it can do (used by routing).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Where it listens, if anywhere.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Free-form object.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Metadata,
}

/// `POST /api/v1/agents/register` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisterResponse {
    /// Stable id (the same on every re-registration of the name).
    pub agent_id: String,
    /// Always `"registered"`.
    pub status: String,
    /// The name.
    pub name: String,
    /// With `--auth token`: the agent's secret token, returned when the name is first
    /// registered and when the admin re-issues it (absent otherwise). Keep it: the server
    /// stores only its hash and cannot show it again. Send it as `Authorization: Bearer TOKEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// An agent as listed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentInfo {
    /// Stable id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Presence.
    pub status: AgentStatus,
    /// What it can do.
    pub capabilities: Vec<String>,
    /// Last heartbeat, registration or WebSocket activity (ISO-8601 UTC).
    pub last_seen: String,
    /// Where it listens, if anywhere.
    pub endpoint: Option<String>,
    /// Free-form object.
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    /// True while a WebSocket is open for it.
    pub connected: bool,
    /// Where discovery found it (worktree, capability provenance, gone), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<crate::api::discovery::DiscoveryInfo>,
}

/// `GET /api/v1/agents` query.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentFilter {
    /// Only agents with this status.
    #[serde(default)]
    pub status: Option<AgentStatus>,
    /// Only agents with this capability.
    #[serde(default)]
    pub capability: Option<String>,
}

/// A plain status answer (`heartbeat_recorded`, `deleted`, ...).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    /// What happened.
    pub status: String,
}

/// `GET /api/v1/agents/{agent}/dead-letters` item.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterInfo {
    /// The message.
    #[serde(flatten)]
    pub message: InboxDeadMessage,
    /// `max_attempts` or `expired`.
    pub reason: String,
    /// When it died (ISO-8601 UTC).
    pub died_at: String,
}

/// The message part of a dead letter.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxDeadMessage {
    /// Message id.
    pub id: String,
    /// Who sent it.
    pub sender: String,
    /// The text.
    pub content: String,
    /// Its priority.
    pub priority: Priority,
    /// When it was sent.
    pub created_at: String,
    /// The sender's metadata.
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    /// Deliveries it had.
    pub attempts: u32,
}

/// Body of a redrive: the ids to send back, or all when absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct RedriveRequest {
    /// Ids to redrive; absent or null: all.
    #[serde(default, alias = "ids")]
    pub message_ids: Option<Vec<String>>,
}

/// Answer of a redrive.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RedriveResponse {
    /// Dead letters made ready again.
    pub redriven: usize,
}

/// `GET /api/v1/stats` answer, the original's shape.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatsResponse {
    /// Agent inboxes together.
    pub queue: QueueSection,
    /// The registry.
    pub agents: AgentsSection,
    /// Open sockets.
    pub websockets: WebsocketsSection,
    /// Routing of `auto` and `capability:NAME` messages.
    #[serde(default)]
    pub routing: crate::routing::RoutingStats,
}

/// Agent inboxes together.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueueSection {
    /// Messages sent since the inboxes were created.
    pub total_messages: u64,
    /// Not yet acknowledged (ready, delayed or leased).
    pub pending_messages: u64,
    /// Acknowledged.
    pub delivered_messages: u64,
    /// Messages held, dead letters included.
    pub queue_size: u64,
    /// Mean time from send to ack since the server started, in seconds.
    pub average_delivery_time: f64,
}

/// The registry's numbers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentsSection {
    /// Registered agents.
    pub total_agents: usize,
    /// Online now.
    pub online_agents: usize,
    /// The rest.
    pub offline_agents: usize,
    /// Agents per capability.
    pub capabilities: BTreeMap<String, usize>,
    /// When these numbers were taken (ISO-8601 UTC).
    pub last_updated: String,
}

/// Open sockets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebsocketsSection {
    /// Open WebSocket connections.
    pub active_connections: usize,
    /// Agents with an open WebSocket.
    pub agent_connections: usize,
}

/// `GET /health` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    /// `"healthy"` or `"unhealthy"`.
    pub status: String,
    /// Now (ISO-8601 UTC).
    pub timestamp: String,
    /// The storage backend.
    pub storage: String,
    /// Why storage is unhealthy, when it is.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}
