//! The tools' parameters. Their doc comments become the JSON-schema descriptions a model
//! reads, so they say what to pass and when.

use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;

use crate::api::wire::Priority;

/// Longest wait a model may ask of `wait_for_message` and `ask`, in seconds.
pub const TOOL_WAIT_SECONDS_MAX: u64 = 600;
/// Wait of `wait_for_message` when the model names none, in seconds.
pub const WAIT_SECONDS_DEFAULT: u64 = 60;
/// Wait of `ask` when the model names none, in seconds.
pub const ASK_SECONDS_DEFAULT: u64 = 120;
/// Most messages one `check_inbox` returns.
pub const INBOX_LIMIT_MAX: usize = 50;
/// Messages `check_inbox` returns when the model names no limit.
pub const INBOX_LIMIT_DEFAULT: usize = 10;

/// How urgent a message is.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PriorityParam {
    /// Whenever convenient.
    Low,
    /// Normal work (the default).
    #[default]
    Medium,
    /// Ahead of normal work.
    High,
    /// Before everything else: blocking problems only.
    Critical,
}

impl From<PriorityParam> for Priority {
    fn from(value: PriorityParam) -> Self {
        match value {
            PriorityParam::Low => Priority::Low,
            PriorityParam::Medium => Priority::Medium,
            PriorityParam::High => Priority::High,
            PriorityParam::Critical => Priority::Critical,
        }
    }
}

/// Parameters of `send_message`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendMessageParams {
    /// Recipient: an agent name from `list_agents`, or `capability:NAME` for an agent with
    /// that capability, or `auto` to let switchboard route by content.
    pub to: String,
    /// The message. Make it self-contained: the recipient sees nothing of your context.
    pub text: String,
    /// Priority; default `medium`. Use `critical` only for blocking problems.
    #[serde(default)]
    pub priority: Option<PriorityParam>,
    /// Optional thread id to group related messages (for example a task or ticket id).
    #[serde(default)]
    pub thread_id: Option<String>,
    /// Optional id of the message this one answers (the recipient sees it as `reply_to`; an
    /// agent waiting in `ask` for that message receives it). `reply` does this for you when
    /// the message is still known.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Optional idempotency key: sending again with the same key within 5 minutes stores the
    /// message once. Pass the key an "outcome unknown" error named to retry safely.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// Parameters of `check_inbox`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CheckInboxParams {
    /// Most messages to return (1 to 50, default 10).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Acknowledge the returned messages at once (default true). Pass false to acknowledge
    /// each with `ack_message` after handling it; unacknowledged messages come back after
    /// 5 minutes.
    #[serde(default)]
    pub ack: Option<bool>,
}

/// Parameters of `ack_message`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AckParams {
    /// Ids of messages you received with `ack: false` and have handled.
    pub message_ids: Vec<String>,
}

/// Parameters of `wait_for_message`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WaitParams {
    /// How long to wait, in seconds (1 to 600, default 60).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Acknowledge the message at once (default true).
    #[serde(default)]
    pub ack: Option<bool>,
}

/// Parameters of `ask`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AskParams {
    /// Who to ask: an agent name, `capability:NAME`, or `auto`.
    pub to: String,
    /// The question, self-contained.
    pub text: String,
    /// How long to wait for the answer, in seconds (1 to 600, default 120). A later answer
    /// arrives in your inbox.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Priority of the question; default `medium`.
    #[serde(default)]
    pub priority: Option<PriorityParam>,
}

/// Parameters of `reply`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReplyParams {
    /// Id of the message you answer (as shown by `check_inbox` or `wait_for_message`).
    pub message_id: String,
    /// Your answer, self-contained.
    pub text: String,
    /// Leave the message unacknowledged (default false: answering it acknowledges it, so it
    /// is not delivered to you again).
    #[serde(default)]
    pub keep_question: Option<bool>,
}

/// Parameters of `message_status`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct StatusParams {
    /// Id of a message (as returned by `send_message`).
    pub message_id: String,
}

/// Clamps a model's wait to `1..=TOOL_WAIT_SECONDS_MAX`.
pub fn wait_seconds(asked: Option<u64>, default: u64) -> u64 {
    asked.unwrap_or(default).clamp(1, TOOL_WAIT_SECONDS_MAX)
}
