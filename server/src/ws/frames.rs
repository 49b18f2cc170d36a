//! WebSocket frames: the original's (`message`, `broadcast`, `heartbeat`, `heartbeat_ack`,
//! `ack`, `send_message`) and the additions (`nack`, `extend`, `sent`, `acknowledged`,
//! `requeued`, `extended`, `error`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use switchboard_engine::{Delivery, StoredMessage, UnixMillis};

use crate::api::wire::{InboxMessage, Priority, SendMessageRequest};
use crate::inbox;
use crate::time::iso8601;

/// A frame from the client.
#[derive(Debug)]
pub enum ClientFrame {
    /// Presence; answered with `heartbeat_ack`.
    Heartbeat,
    /// Done with a pushed message.
    Ack(AckFrame),
    /// Give a pushed message back for a retry.
    Nack(NackFrame),
    /// Keep a pushed message longer.
    Extend(ExtendFrame),
    /// Send a message to another agent, as `POST /api/v1/messages`.
    SendMessage(SendMessageRequest),
    /// From now on, push a `receipt` frame for each stage of each message this agent sends
    /// (see `crate::receipts`); answered with `subscribed`.
    SubscribeReceipts,
}

/// The fields of an `ack` frame.
#[derive(Debug, Deserialize)]
pub struct AckFrame {
    /// The message.
    pub message_id: String,
}

/// The fields of a `nack` frame.
#[derive(Debug, Deserialize)]
pub struct NackFrame {
    /// The message.
    pub message_id: String,
    /// Retry after this many seconds (default: at once).
    #[serde(default)]
    pub delay_seconds: Option<u64>,
}

/// The fields of an `extend` frame.
#[derive(Debug, Deserialize)]
pub struct ExtendFrame {
    /// The message.
    pub message_id: String,
    /// New lease length from now, in seconds.
    pub lease_seconds: u64,
}

/// The `type` values of [`ClientFrame`].
const CLIENT_FRAME_TYPES: &[&str] = &[
    "heartbeat",
    "ack",
    "nack",
    "extend",
    "send_message",
    "subscribe_receipts",
];

impl ClientFrame {
    /// Reads a frame: its `type` first, then the fields of that type. (Serde's internally
    /// tagged enums copy every field into a buffer before reading the variant, which cost more
    /// than the rest of the parse.)
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Tagged<'a> {
            #[serde(rename = "type", borrow)]
            kind: Cow<'a, str>,
        }
        // Serde would also read a struct from an array (`["ack", "m1"]`): frames are objects.
        if !text.trim_start().starts_with('{') {
            return Err(serde::de::Error::custom(
                "a frame is a JSON object with a `type`, such as {\"type\":\"heartbeat\"}",
            ));
        }
        let tagged: Tagged = serde_json::from_str(text)?;
        Ok(match tagged.kind.as_ref() {
            "heartbeat" => ClientFrame::Heartbeat,
            "subscribe_receipts" => ClientFrame::SubscribeReceipts,
            "ack" => ClientFrame::Ack(serde_json::from_str(text)?),
            "nack" => ClientFrame::Nack(serde_json::from_str(text)?),
            "extend" => ClientFrame::Extend(serde_json::from_str(text)?),
            "send_message" => ClientFrame::SendMessage(serde_json::from_str(text)?),
            other => return Err(serde::de::Error::unknown_variant(other, CLIENT_FRAME_TYPES)),
        })
    }
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

/// [`push`]'s frame as text, written straight from the stored payload: its strings and its
/// metadata are copied, not parsed into a JSON tree and serialized again (that was a sixth of
/// a push's CPU time). A payload that is not an inbox message's takes [`push`]'s way.
pub fn push_text(delivery: &Delivery) -> String {
    let message = &delivery.message;
    let Some(payload) = PayloadView::of(message) else {
        return push(inbox::inbox_message(delivery)).to_string();
    };
    let broadcast_id = payload.broadcast_id();
    let id = message.id.to_ascii();
    let frame = PushFrame {
        kind: if broadcast_id.is_some() {
            "broadcast"
        } else {
            "message"
        },
        id: std::str::from_utf8(&id).expect("a message id is ASCII"),
        sender: &payload.sender,
        content: &payload.content,
        priority: payload.priority,
        created_at: &iso8601(payload.created_at),
        metadata: payload.metadata.unwrap_or_else(|| empty_object()),
        reply_to: payload.reply_to.as_deref(),
        attempts: message.attempts,
        max_attempts: message.max_attempts,
        lease_expires_at: &iso8601(delivery.lease_deadline),
        broadcast_id,
    };
    serde_json::to_string(&frame).expect("a push frame always serializes")
}

/// `{}` as raw JSON: the metadata of a payload stored without any.
fn empty_object() -> &'static RawValue {
    serde_json::from_str("{}").expect("{} is JSON")
}

/// The fields of [`crate::api::wire::InboxMessage`], borrowed, with the frame's type.
#[derive(Serialize)]
struct PushFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    sender: &'a str,
    content: &'a str,
    priority: Priority,
    created_at: &'a str,
    metadata: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a str>,
    attempts: u32,
    max_attempts: u32,
    lease_expires_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    broadcast_id: Option<&'a RawValue>,
}

/// An inbox message's stored payload ([`crate::inbox::InboxPayload`]), borrowed from it.
#[derive(Deserialize)]
struct PayloadView<'a> {
    #[serde(borrow)]
    sender: Cow<'a, str>,
    #[serde(borrow)]
    content: Cow<'a, str>,
    priority: Priority,
    created_at: UnixMillis,
    /// Present even when `null` (which `Option` would read as absent).
    #[serde(borrow, default, deserialize_with = "present")]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    reply_to: Option<Cow<'a, str>>,
}

fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

impl<'a> PayloadView<'a> {
    /// The payload, if it is an inbox message's (metadata, when present, an object).
    fn of(message: &'a StoredMessage) -> Option<Self> {
        let view: Self = serde_json::from_slice(&message.payload).ok()?;
        let object = view
            .metadata
            .is_none_or(|raw| raw.get().trim_start().starts_with('{'));
        object.then_some(view)
    }

    /// `metadata.broadcast_id`, read only when the metadata mentions it.
    fn broadcast_id(&self) -> Option<&'a RawValue> {
        #[derive(Deserialize)]
        struct BroadcastOnly<'a> {
            /// Present even when `null`, as the `Value` path reads it.
            #[serde(borrow, default, deserialize_with = "present")]
            broadcast_id: Option<&'a RawValue>,
        }
        let raw = self.metadata?.get();
        if !raw.contains("\"broadcast_id\"") {
            return None;
        }
        serde_json::from_str::<BroadcastOnly<'a>>(raw)
            .ok()?
            .broadcast_id
    }
}

/// A frame answering a client frame, as text, and whether it is an `error` frame.
#[derive(Debug)]
pub struct Reply {
    /// The frame's JSON.
    pub text: String,
    /// It is an `error` frame (counted as a rejected client frame).
    pub rejected: bool,
}

impl Reply {
    /// A frame other than `error`.
    pub fn of(frame: &impl Serialize) -> Self {
        Self {
            text: serde_json::to_string(frame).expect("a frame always serializes"),
            rejected: false,
        }
    }

    /// An `error` frame (see [`error`]).
    pub fn error(detail: impl Into<String>, message_id: Option<&str>) -> Self {
        Self {
            text: error(detail, message_id).to_string(),
            rejected: true,
        }
    }
}

/// `sent`: the answer to `send_message`.
#[derive(Debug, Serialize)]
pub struct SentFrame<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message_id: &'a str,
    pub recipient: &'a str,
    pub deduplicated: bool,
    pub routed_to: Option<&'a str>,
    pub rule: Option<&'a str>,
    pub strategy: Option<&'static str>,
    pub waiting_queue: Option<&'a str>,
}

/// `acknowledged`, `requeued` or `extended`: a settled message, with its new lease end for
/// `extended`.
#[derive(Debug, Serialize)]
pub struct SettledFrame<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<String>,
}

/// An `error` frame, naming the message it concerns when there is one.
pub fn error(detail: impl Into<String>, message_id: Option<&str>) -> Value {
    let mut frame = json!({ "type": "error", "detail": detail.into() });
    if let Some(id) = message_id {
        frame["message_id"] = json!(id);
    }
    frame
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use switchboard_engine::{Delivery, LeaseToken, MessageId, StoredMessage};

    use super::*;

    fn delivery(payload: &[u8]) -> Delivery {
        Delivery {
            message: StoredMessage {
                id: MessageId(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
                queue: Arc::from("inbox:bob"),
                seq: 1,
                priority: 192,
                payload: Arc::from(payload),
                headers: Default::default(),
                enqueued_at: 1_700_000_000_000,
                not_before: 1_700_000_000_000,
                expires_at: None,
                max_attempts: 3,
                attempts: 2,
                dedup_key: None,
                dead: None,
            },
            token: LeaseToken(9),
            lease_deadline: 1_700_000_300_000,
        }
    }

    /// The text frame must be the frame the `Value` path builds, field for field.
    fn same_as_slow_path(payload: serde_json::Value) -> serde_json::Value {
        let delivery = delivery(payload.to_string().as_bytes());
        let fast: serde_json::Value = serde_json::from_str(&push_text(&delivery)).unwrap();
        let slow = push(inbox::inbox_message(&delivery));
        assert_eq!(fast, slow);
        fast
    }

    #[test]
    fn client_frames_are_read_by_type_with_errors_that_name_the_problem() {
        let ack = ClientFrame::parse(r#"{"message_id":"m1","type":"ack"}"#).unwrap();
        assert!(matches!(ack, ClientFrame::Ack(AckFrame { message_id }) if message_id == "m1"));
        let nack = ClientFrame::parse(r#"{"type":"nack","message_id":"m1"}"#).unwrap();
        assert!(matches!(
            nack,
            ClientFrame::Nack(NackFrame {
                delay_seconds: None,
                ..
            })
        ));
        let send = r#"{"type":"send_message","recipient":"bob","content":"hi","priority":"high"}"#;
        match ClientFrame::parse(send).unwrap() {
            ClientFrame::SendMessage(request) => {
                assert_eq!(
                    (request.recipient.as_str(), request.priority),
                    ("bob", Priority::High)
                );
            }
            other => panic!("{other:?}"),
        }
        let heartbeat = ClientFrame::parse(r#"{"type":"heartbeat","extra":1}"#).unwrap();
        assert!(matches!(heartbeat, ClientFrame::Heartbeat));
        let error = |text: &str| ClientFrame::parse(text).unwrap_err().to_string();
        assert!(error(r#"{"type":"shout"}"#).contains("unknown variant `shout`, expected one of"));
        assert!(error(r#"{"message_id":"m1"}"#).contains("missing field `type`"));
        assert!(error(r#"{"type":"ack"}"#).contains("missing field `message_id`"));
        assert!(
            error(r#"{"type":"extend","message_id":"m","lease_seconds":-1}"#)
                .contains("invalid value")
        );
        assert!(error(r#"{"type":"#).contains("EOF"));
        assert!(error(r#"["ack","m1"]"#).contains("a frame is a JSON object"));
        let ack_with_extras = r#"{"type":"ack","message_id":"m1","delay_seconds":"soon"}"#;
        assert!(
            ClientFrame::parse(ack_with_extras).is_ok(),
            "ack has no delay"
        );
    }

    #[test]
    fn a_pushed_message_carries_the_inbox_fields() {
        let frame = same_as_slow_path(json!({
            "sender": "alice", "content": "line\n\"quoted\" é", "priority": "high",
            "created_at": 1_700_000_000_000u64, "metadata": {"task": 7, "tags": ["a"]},
        }));
        assert_eq!(frame["type"], "message");
        assert_eq!(frame["id"], "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(frame["content"], "line\n\"quoted\" é");
        assert_eq!(frame["lease_expires_at"], "2023-11-14T22:18:20.000Z");
        assert_eq!(frame["attempts"], 2);
        assert!(frame.get("reply_to").is_none());
    }

    #[test]
    fn a_broadcast_copy_names_its_broadcast() {
        let frame = same_as_slow_path(json!({
            "sender": "alice", "content": "all hands", "priority": "medium",
            "created_at": 1u64, "metadata": {"broadcast_id": "b-1"}, "reply_to": "x",
        }));
        assert_eq!(frame["type"], "broadcast");
        assert_eq!(frame["broadcast_id"], "b-1");
        assert_eq!(frame["reply_to"], "x");
        let frame = same_as_slow_path(json!({
            "sender": "alice", "content": "hi", "priority": "medium", "created_at": 1u64,
            "metadata": {"broadcast_id": null, "note": "\"broadcast_id\" in a value"},
        }));
        assert_eq!(
            frame["type"], "broadcast",
            "as the slow path reads a null id"
        );
        let frame = same_as_slow_path(json!({
            "sender": "alice", "content": "hi", "priority": "medium", "created_at": 1u64,
            "metadata": {"nested": {"broadcast_id": "b-2"}, "note": "broadcast_id"},
        }));
        assert_eq!(frame["type"], "message");
    }

    #[test]
    fn payloads_without_metadata_or_not_ours_still_push() {
        let frame = same_as_slow_path(json!({
            "sender": "alice", "content": "hi", "priority": "low", "created_at": 1u64,
        }));
        assert_eq!(frame["metadata"], json!({}));
        let frame = same_as_slow_path(json!({"job": 1}));
        assert_eq!(frame["sender"], "unknown");
        let frame = same_as_slow_path(json!({
            "sender": "alice", "content": "hi", "priority": "low", "created_at": 1u64,
            "metadata": null,
        }));
        assert_eq!(frame["sender"], "unknown", "as the slow path reads it");
        let text = push_text(&delivery(b"not json at all"));
        assert!(text.contains(r#""content":"not json at all""#), "{text}");
    }
}
