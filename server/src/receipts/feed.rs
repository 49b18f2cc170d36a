//! The live feed of receipt events: its event type, and the two ways out — an agent's
//! WebSocket (receipts of the messages it sent) and server-sent events for people watching
//! (`GET /api/v1/feed`, `switchboard tail`).

use std::future::Future;

use axum::extract::ws::Message;
use serde::Serialize;
use serde_json::json;
use switchboard_engine::MessageId;
use tokio::sync::{broadcast, mpsc};

use super::book::Stage;
use crate::api::wire::Priority;

/// One stage of one message, as published: `{"type":"receipt", message_id, sender, recipient,
/// stage, at, ...}`. `queued` events also carry the priority and a preview of the content.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptEvent {
    /// Always `"receipt"`, so WebSocket clients can tell it from other frames.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The message.
    pub message_id: String,
    /// Who sent it.
    pub sender: String,
    /// Whose inbox it went to.
    pub recipient: String,
    /// What happened, when, and its details.
    #[serde(flatten)]
    pub stage: Stage,
    /// Queued: its priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Queued: the start of its content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// The message it answers, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Queued: the sender waits for a reply (`switchboard ask`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub expects_reply: bool,
}

impl ReceiptEvent {
    /// An event with no optional details.
    pub fn new(id: MessageId, sender: &str, recipient: &str, stage: Stage) -> Self {
        Self {
            kind: "receipt",
            message_id: id.to_string(),
            sender: sender.to_string(),
            recipient: recipient.to_string(),
            stage,
            priority: None,
            preview: None,
            reply_to: None,
            expects_reply: false,
        }
    }

    /// True when the event concerns `agent`, as sender or recipient.
    pub fn involves(&self, agent: &str) -> bool {
        self.sender == agent || self.recipient == agent
    }
}

/// The frame telling a listener that it was too slow and missed `missed` events.
pub fn lagged_frame(missed: u64) -> serde_json::Value {
    json!({ "type": "receipts_lagged", "missed": missed })
}

/// Sends `sender`'s receipts into a socket's outbox until `closed` resolves, the outbox is
/// gone, or the feed ends. Runs as its own task, so a slow feed never delays client frames.
pub async fn forward_to_socket(
    mut events: broadcast::Receiver<ReceiptEvent>,
    sender: String,
    outbox: mpsc::Sender<Message>,
    closed: impl Future<Output = ()>,
) {
    tokio::pin!(closed);
    loop {
        let event = tokio::select! {
            _ = &mut closed => return,
            event = events.recv() => event,
        };
        let frame = match event {
            Ok(event) if event.sender == sender => {
                serde_json::to_string(&event).expect("an event always serializes")
            }
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(missed)) => lagged_frame(missed).to_string(),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if outbox.send(Message::Text(frame.into())).await.is_err() {
            return;
        }
    }
}
