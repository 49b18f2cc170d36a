//! Black-box tests of agent WebSockets (`/ws/{agent}`) against the real binary: leased pushes,
//! ack / nack / send_message frames, error frames, credit, replacement, and leases returned
//! when a socket drops.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard_tests::server_harness::ServerProcess;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for a frame that should come.
const FRAME_WAIT: Duration = Duration::from_secs(10);

struct Bus {
    server: ServerProcess,
    http: reqwest::Client,
}

impl Bus {
    async fn start(agents: &[&str]) -> Self {
        let bus = Self {
            server: ServerProcess::start("memory:", &[]),
            http: reqwest::Client::new(),
        };
        for name in agents {
            let response = bus
                .http
                .post(bus.server.url("/api/v1/agents/register"))
                .json(&json!({ "name": name }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        bus
    }

    async fn connect(&self, path: &str) -> Socket {
        let (socket, _) = tokio_tungstenite::connect_async(self.server.ws_url(path))
            .await
            .unwrap_or_else(|error| panic!("connect {path}: {error}"));
        socket
    }

    async fn send(&self, to: &str, content: &str) -> String {
        let response = self
            .http
            .post(self.server.url("/api/v1/messages?sender=tester"))
            .json(&json!({ "recipient": to, "content": content }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["message_id"].as_str().unwrap().to_string()
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(self.server.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The next text frame as JSON (pings and pongs skipped); panics after [`FRAME_WAIT`].
async fn next_frame(socket: &mut Socket) -> Value {
    try_next_frame(socket, FRAME_WAIT).await.expect("a frame")
}

async fn try_next_frame(socket: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??;
        match message.expect("socket error") {
            Message::Text(text) => return Some(serde_json::from_str(&text).unwrap()),
            Message::Close(frame) => {
                return Some(json!({ "type": "closed", "frame": format!("{frame:?}") }))
            }
            _ => continue,
        }
    }
}

async fn send_frame(socket: &mut Socket, frame: Value) {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

#[tokio::test]
async fn pushed_message_is_leased_and_the_ack_frame_settles_it() {
    let bus = Bus::start(&["alice"]).await;
    let id = bus.send("alice", "hello").await;
    let mut socket = bus.connect("/ws/alice").await;
    let frame = next_frame(&mut socket).await;
    assert_eq!(frame["type"], "message");
    assert_eq!(frame["id"], id.as_str());
    assert_eq!(frame["content"], "hello");
    assert_eq!(frame["sender"], "tester");
    assert_eq!(frame["attempts"], 1);
    assert!(frame["lease_expires_at"].as_str().unwrap().ends_with('Z'));
    send_frame(&mut socket, json!({ "type": "ack", "message_id": id })).await;
    let reply = next_frame(&mut socket).await;
    assert_eq!(reply, json!({ "type": "acknowledged", "message_id": id }));
    let stats = bus.get("/api/v1/stats").await;
    assert_eq!(stats["queue"]["delivered_messages"], 1);
    assert_eq!(stats["queue"]["pending_messages"], 0);
    assert_eq!(stats["websockets"]["agent_connections"], 1);
}

#[tokio::test]
async fn nack_frame_returns_the_message_for_another_push() {
    let bus = Bus::start(&["alice"]).await;
    let id = bus.send("alice", "again").await;
    let mut socket = bus.connect("/ws/alice").await;
    assert_eq!(next_frame(&mut socket).await["attempts"], 1);
    send_frame(&mut socket, json!({ "type": "nack", "message_id": id })).await;
    let mut frames = [next_frame(&mut socket).await, next_frame(&mut socket).await];
    frames.sort_by_key(|f| f["type"].as_str().unwrap().to_string());
    assert_eq!(frames[0]["type"], "message");
    assert_eq!(frames[0]["id"], id.as_str());
    assert_eq!(frames[0]["attempts"], 2);
    assert_eq!(frames[1], json!({ "type": "requeued", "message_id": id }));
}

#[tokio::test]
async fn send_message_frame_is_answered_with_sent_and_delivered() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let mut socket = bus.connect("/ws/alice").await;
    send_frame(
        &mut socket,
        json!({ "type": "send_message", "recipient": "bob", "content": "hi bob", "priority": "high" }),
    )
    .await;
    let reply = next_frame(&mut socket).await;
    assert_eq!(reply["type"], "sent", "{reply}");
    assert_eq!(reply["recipient"], "bob");
    let messages = bus.get("/api/v1/messages/bob").await;
    assert_eq!(messages[0]["id"], reply["message_id"]);
    assert_eq!(messages[0]["sender"], "alice");
    assert_eq!(messages[0]["priority"], "high");
    send_frame(
        &mut socket,
        json!({ "type": "send_message", "recipient": "nobody", "content": "x" }),
    )
    .await;
    let reply = next_frame(&mut socket).await;
    assert_eq!(reply["type"], "error");
    assert!(reply["detail"].as_str().unwrap().contains("nobody"));
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_socket_stays_open() {
    let bus = Bus::start(&["alice"]).await;
    let mut socket = bus.connect("/ws/alice").await;
    for bad in [
        json!("not an object").to_string(),
        "{not json".to_string(),
        json!({ "type": "teleport" }).to_string(),
        json!({ "type": "ack" }).to_string(),
        json!({ "type": "send_message", "recipient": "alice", "content": "x", "priority": "urgent" }).to_string(),
    ] {
        socket.send(Message::Text(bad.clone().into())).await.unwrap();
        let reply = next_frame(&mut socket).await;
        assert_eq!(reply["type"], "error", "{bad} → {reply}");
        assert!(!reply["detail"].as_str().unwrap().is_empty());
    }
    send_frame(
        &mut socket,
        json!({ "type": "ack", "message_id": "0190a0a0-0000-7000-8000-000000000000" }),
    )
    .await;
    let reply = next_frame(&mut socket).await;
    assert_eq!(reply["type"], "error");
    assert!(reply["detail"].as_str().unwrap().contains("not found"));
    send_frame(&mut socket, json!({ "type": "heartbeat" })).await;
    assert_eq!(
        next_frame(&mut socket).await,
        json!({ "type": "heartbeat_ack" })
    );
}

/// A frame over the 1 MiB limit closes the socket with code 1009 (message too big) and a
/// reason, so the client learns why instead of seeing the connection drop.
#[tokio::test]
async fn a_frame_over_the_size_limit_closes_with_1009_and_a_reason() {
    let bus = Bus::start(&["alice"]).await;
    let mut socket = bus.connect("/ws/alice").await;
    let content = "a".repeat(1024 * 1024 + 1);
    send_frame(
        &mut socket,
        json!({ "type": "heartbeat", "padding": content }),
    )
    .await;
    let closed = tokio::time::timeout(FRAME_WAIT, async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Close(frame)) => return frame,
                Ok(_) => continue,
                Err(error) => panic!("the socket failed before a close frame: {error}"),
            }
        }
        panic!("the socket ended without a close frame");
    })
    .await
    .expect("a close frame within the wait");
    let frame = closed.expect("the close frame has a code");
    assert_eq!(u16::from(frame.code), 1009, "{frame:?}");
    assert!(frame.reason.contains("larger than"), "{frame:?}");
}

#[tokio::test]
async fn unknown_agent_is_refused_with_404_before_the_upgrade() {
    let bus = Bus::start(&[]).await;
    let error = tokio_tungstenite::connect_async(bus.server.ws_url("/ws/nobody"))
        .await
        .expect_err("unknown agents are refused");
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 404);
            let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
            assert!(body.contains("Agent not found: nobody"), "{body}");
        }
        other => panic!("expected an HTTP 404, got {other:?}"),
    }
}

#[tokio::test]
async fn pushes_stop_at_max_in_flight_until_acked() {
    let bus = Bus::start(&["alice"]).await;
    for n in 0..5 {
        bus.send("alice", &format!("m{n}")).await;
    }
    let mut socket = bus.connect("/ws/alice?max_in_flight=2").await;
    let first = next_frame(&mut socket).await;
    let _second = next_frame(&mut socket).await;
    assert!(
        try_next_frame(&mut socket, Duration::from_millis(700))
            .await
            .is_none(),
        "a third push arrived with two unacked"
    );
    send_frame(
        &mut socket,
        json!({ "type": "ack", "message_id": first["id"] }),
    )
    .await;
    let mut types = vec![];
    for _ in 0..2 {
        types.push(
            next_frame(&mut socket).await["type"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    types.sort();
    assert_eq!(types, ["acknowledged", "message"]);
}

#[tokio::test]
async fn dropped_socket_returns_its_leases_to_the_inbox() {
    let bus = Bus::start(&["alice"]).await;
    let id = bus.send("alice", "unfinished").await;
    let mut socket = bus.connect("/ws/alice?lease_seconds=600").await;
    assert_eq!(next_frame(&mut socket).await["id"], id.as_str());
    drop(socket);
    let messages = bus.get("/api/v1/messages/alice?wait_seconds=10").await;
    assert_eq!(messages[0]["id"], id.as_str(), "{messages}");
    assert_eq!(messages[0]["attempts"], 2);
}

#[tokio::test]
async fn new_socket_replaces_the_old_one_and_the_old_close_does_not_undo_it() {
    let bus = Bus::start(&["alice"]).await;
    let mut old = bus.connect("/ws/alice").await;
    let mut new = bus.connect("/ws/alice").await;
    let closed = next_frame(&mut old).await;
    assert_eq!(closed["type"], "closed", "{closed}");
    assert!(
        closed["frame"].as_str().unwrap().contains("4000"),
        "{closed}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let agent = bus.get("/api/v1/agents/alice").await;
    assert_eq!(agent["connected"], true, "{agent}");
    assert_eq!(agent["status"], "online");
    let id = bus.send("alice", "to the new socket").await;
    assert_eq!(next_frame(&mut new).await["id"], id.as_str());
}

#[tokio::test]
async fn broadcast_pushes_only_to_targets() {
    let bus = Bus::start(&["alice", "bob", "carol"]).await;
    let mut alice = bus.connect("/ws/alice").await;
    let mut bob = bus.connect("/ws/bob").await;
    let mut carol = bus.connect("/ws/carol").await;
    let response = bus
        .http
        .post(bus.server.url("/api/v1/broadcast?sender=lead"))
        .json(&json!({ "recipients": ["alice", "bob"], "content": "all hands" }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["websocket_sent"], 2, "{body}");
    for socket in [&mut alice, &mut bob] {
        let frame = next_frame(socket).await;
        assert_eq!(frame["type"], "broadcast");
        assert_eq!(frame["broadcast_id"], body["broadcast_id"]);
        assert_eq!(frame["metadata"]["broadcast_id"], body["broadcast_id"]);
        assert_eq!(frame["content"], "all hands");
    }
    assert!(try_next_frame(&mut carol, Duration::from_millis(700))
        .await
        .is_none());
}
