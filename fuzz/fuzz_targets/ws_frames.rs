//! Arbitrary client frames through the real WebSocket handler, with no socket: the router is
//! served by hyper on one half of an in-memory pipe and a WebSocket client speaks on the other,
//! so frames pass the real upgrade, reader, pusher and writer. Whatever the frames, every
//! frame the server sends is a JSON object with a `type`, nothing panics (libFuzzer's panic
//! hook aborts even inside a spawned task), and after the client's close the server ends the
//! connection promptly (no hung session holding leases).
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::{SinkExt, StreamExt};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use switchboard_engine::{Engine, EngineOptions, MemoryStorage, SystemClock};
use switchboard_server::config::Settings;
use switchboard_server::{app, AppState, Registry};
use tokio_tungstenite::tungstenite::Message;
use tower::ServiceExt;

/// Frames per case.
const FRAMES_PER_CASE_MAX: usize = 16;
/// How long the server may take to end the connection after the client's close; far above
/// what a healthy close needs (milliseconds), far below a hang.
const CLOSE_WAIT: Duration = Duration::from_secs(10);
/// Messages waiting in the agent's inbox before the socket opens, so there is something to
/// push and to ack, nack or extend.
const QUEUED_AT_OPEN: usize = 3;

#[derive(Debug, Arbitrary)]
enum Frame {
    /// Any text at all.
    Raw(String),
    /// A well-formed frame of some type whose fields are fuzzed.
    Typed {
        kind: u8,
        id: Id,
        number: Option<i64>,
        text: String,
        recipient: u8,
    },
    Binary(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Id {
    /// The id of a message the server pushed on this socket.
    Pushed(u8),
    Text(String),
}

fuzz_target!(|frames: Vec<Frame>| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    runtime.block_on(run(frames));
});

async fn run(frames: Vec<Frame>) {
    let router = router().await;
    for name in ["alice", "bob"] {
        post(&router, "/api/v1/agents/register", json!({ "name": name })).await;
    }
    for n in 0..QUEUED_AT_OPEN {
        let message = json!({ "sender": "bob", "recipient": "alice", "content": format!("m{n}") });
        post(&router, "/api/v1/messages", message).await;
    }
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let service = hyper_util::service::TowerToHyperService::new(router);
    tokio::spawn(async move {
        let io = hyper_util::rt::TokioIo::new(server_io);
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .with_upgrades()
            .await;
    });
    let (socket, _) = tokio_tungstenite::client_async("ws://localhost/ws/alice", client_io)
        .await
        .expect("the handshake with a registered agent succeeds");
    let (mut sink, mut stream) = socket.split();
    let pushed = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let reader = {
        let pushed = pushed.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message {
                    let frame: Value = serde_json::from_str(&text).expect("server frames are JSON");
                    assert!(
                        frame["type"].is_string(),
                        "server frame without a type: {frame}"
                    );
                    if matches!(frame["type"].as_str(), Some("message" | "broadcast")) {
                        pushed
                            .lock()
                            .push(frame["id"].as_str().unwrap_or_default().to_string());
                    }
                }
            }
        })
    };
    for frame in frames.into_iter().take(FRAMES_PER_CASE_MAX) {
        let message = match frame {
            Frame::Raw(text) => Message::text(text),
            Frame::Binary(bytes) => Message::binary(bytes),
            Frame::Typed {
                kind,
                id,
                number,
                text,
                recipient,
            } => {
                let id = match id {
                    Id::Pushed(pick) => {
                        let pushed = pushed.lock();
                        pushed
                            .get(pick as usize % pushed.len().max(1))
                            .cloned()
                            .unwrap_or_default()
                    }
                    Id::Text(text) => text,
                };
                Message::text(typed(kind, id, number, text, recipient).to_string())
            }
        };
        if sink.send(message).await.is_err() {
            break;
        }
        // Lets the reader and the server's tasks run between frames.
        tokio::task::yield_now().await;
    }
    let _ = sink.send(Message::Close(None)).await;
    tokio::time::timeout(CLOSE_WAIT, reader)
        .await
        .expect("the server ends the connection after the client's close")
        .expect("the reader does not panic");
}

/// A frame of one of the client types, with fuzzed values (sometimes of the wrong JSON type).
fn typed(kind: u8, id: String, number: Option<i64>, text: String, recipient: u8) -> Value {
    let number = number.map_or(Value::Null, Value::from);
    let recipient = [
        "alice",
        "bob",
        "nobody",
        "auto",
        "capability:x",
        text.as_str(),
    ][recipient as usize % 6];
    match kind % 7 {
        0 => json!({ "type": "heartbeat" }),
        1 => json!({ "type": "ack", "message_id": id }),
        2 => json!({ "type": "nack", "message_id": id, "delay_seconds": number }),
        3 => json!({ "type": "extend", "message_id": id, "lease_seconds": number }),
        4 => json!({ "type": "send_message", "recipient": recipient, "content": text,
                     "priority": number }),
        5 => json!({ "type": "subscribe_receipts" }),
        _ => json!({ "type": text, "message_id": id }),
    }
}

async fn post(router: &axum::Router, path: &str, body: Value) {
    let request = Request::post(path)
        .body(Body::from(body.to_string()))
        .unwrap();
    let status = router.clone().oneshot(request).await.unwrap().status();
    assert_eq!(status, StatusCode::OK, "set-up {path} {body}");
}

async fn router() -> axum::Router {
    let engine = Engine::open(
        Box::new(MemoryStorage::new()),
        Arc::new(SystemClock),
        EngineOptions::default(),
    )
    .expect("memory storage opens");
    let registry = Registry::load(engine.clone())
        .await
        .expect("an empty registry loads");
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    app(AppState::new(
        engine,
        registry,
        Settings::default(),
        stopped,
    ))
}
