//! WebSocket frames: the original's (`message`, `broadcast`, `heartbeat`, `heartbeat_ack`,
//! `ack`, `send_message`) and the additions (`nack`, `extend`, `sent`, `acknowledged`,
//! `requeued`, `extended`, `error`).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::wire::{InboxMessage, SendMessageRequest};

/// A frame from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Presence; answered with `heartbeat_ack`.
    Heartbeat,
    /// Done with a pushed message.
    Ack {
        /// The message.
        message_id: String,
    },
    /// Give a pushed message back for a retry.
    Nack {
        /// The message.
        message_id: String,
        /// Retry after this many seconds (default: at once).
        #[serde(default)]
        delay_seconds: Option<u64>,
    },
    /// Keep a pushed message longer.
    Extend {
        /// The message.
        message_id: String,
        /// New lease length from now, in seconds.
        lease_seconds: u64,
    },
    /// Send a message to another agent, as `POST /api/v1/messages`.
    SendMessage(SendMessageRequest),
    /// From now on, push a `receipt` frame for each stage of each message this agent sends
    /// (see `crate::receipts`); answered with `subscribed`.
    SubscribeReceipts,
}

/// A pushed message: `type` is `broadcast` for a broadcast copy (its `broadcast_id` is in the
/// frame and in `metadata`), else `message`. `id` is always the message id, which acks it.
pub fn push(message: InboxMessage) -> Value {
    let broadcast_id = message.metadata.get("broadcast_id").cloned();
    let mut frame = serde_json::to_value(message).expect("a message always serializes");
    let object = frame.as_object_mut().expect("a message is an object");
    match broadcast_id {
        Some(id) => {
            object.insert("type".into(), json!("broadcast"));
            object.insert("broadcast_id".into(), id);
        }
        None => {
            object.insert("type".into(), json!("message"));
        }
    }
    frame
}

/// An `error` frame, naming the message it concerns when there is one.
pub fn error(detail: impl Into<String>, message_id: Option<&str>) -> Value {
    let mut frame = json!({ "type": "error", "detail": detail.into() });
    if let Some(id) = message_id {
        frame["message_id"] = json!(id);
    }
    frame
}
