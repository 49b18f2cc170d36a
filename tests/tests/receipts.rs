//! Black-box tests of delivery receipts against the real binary: `GET
//! /api/v1/messages/{id}/status` through every stage (queued → delivered → acked; nacked and
//! redelivered → dead-lettered after its attempts; a lease that ran out), and receipts pushed
//! to the sender's WebSocket after `subscribe_receipts`. (Expiry takes an hour at the
//! shortest over the API; the server's unit tests cover it with a manual clock.)

mod cli_support;

use std::time::Duration;

use cli_support::Bus;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for a frame that should come.
const FRAME_WAIT: Duration = Duration::from_secs(10);

async fn send(bus: &Bus, body: Value) -> String {
    let (status, answer) = bus.post("/api/v1/messages?sender=alice", body).await;
    assert_eq!(status, 200, "{answer}");
    answer["message_id"].as_str().unwrap().to_string()
}

async fn receipt(bus: &Bus, id: &str) -> Value {
    let (status, body) = bus.get(&format!("/api/v1/messages/{id}/status")).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn stages(receipt: &Value) -> Vec<String> {
    receipt["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| stage["stage"].as_str().unwrap().to_string())
        .collect()
}

async fn lease(bus: &Bus, agent: &str, query: &str) -> Vec<Value> {
    let (status, body) = bus.get(&format!("/api/v1/messages/{agent}?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

/// Queued, then delivered (to whom, which attempt, how), then acked (by whom), with times.
#[tokio::test]
async fn receipt_follows_queued_delivered_acked() {
    let bus = Bus::start(&["bob"]).await;
    let id = send(&bus, json!({ "recipient": "bob", "content": "hi" })).await;
    let queued = receipt(&bus, &id).await;
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["sender"], "alice");
    assert_eq!(queued["recipient"], "bob");
    assert_eq!(stages(&queued), ["queued"]);
    assert!(queued["stages"][0]["at"].as_str().unwrap().ends_with('Z'));

    lease(&bus, "bob", "limit=1").await;
    let delivered = receipt(&bus, &id).await;
    assert_eq!(delivered["state"], "delivered");
    assert!(delivered["lease_expires_at"].is_string());
    let delivery = &delivered["stages"][1];
    assert_eq!(delivery["stage"], "delivered");
    assert_eq!(delivery["agent"], "bob");
    assert_eq!(delivery["attempt"], 1);
    assert_eq!(delivery["via"], "rest");

    let (status, _) = bus
        .post(
            &format!("/api/v1/messages/{id}/ack?agent_id=bob"),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    let acked = receipt(&bus, &id).await;
    assert_eq!(acked["state"], "acked");
    assert_eq!(stages(&acked), ["queued", "delivered", "acked"]);
    assert_eq!(acked["stages"][2]["agent"], "bob");
    assert_eq!(acked["history_complete"], true);
}

/// The stages recorded before a restart (SIGTERM, then a new server on the same storage)
/// are there after it, as a complete history; the acked message used to be a 404.
#[tokio::test]
async fn receipt_stages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("redb:{}", dir.path().join("x.redb").display());
    let mut bus = Bus::start_on(&storage, &["bob"], &[]).await;
    let id = send(&bus, json!({ "recipient": "bob", "content": "hi" })).await;
    lease(&bus, "bob", "limit=1").await;
    let (status, _) = bus
        .post(
            &format!("/api/v1/messages/{id}/ack?agent_id=bob"),
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert!(bus.server.terminate().success());
    bus.server.restart();
    let after = receipt(&bus, &id).await;
    assert_eq!(after["state"], "acked");
    assert_eq!(stages(&after), ["queued", "delivered", "acked"]);
    assert_eq!(after["stages"][1]["agent"], "bob");
    assert_eq!(after["history_complete"], true);
}

/// Each delivery is a stage; a nack of the last attempt makes a dead letter, with the reason.
#[tokio::test]
async fn receipt_shows_redeliveries_then_the_dead_letter() {
    let bus = Bus::start(&["bob"]).await;
    let id = send(
        &bus,
        json!({ "recipient": "bob", "content": "poison", "max_attempts": 2 }),
    )
    .await;
    for _ in 0..2 {
        let got = lease(&bus, "bob", "limit=1").await;
        assert_eq!(got[0]["id"], id.as_str());
        let path = format!("/api/v1/messages/{id}/nack?agent_id=bob&delay_seconds=0");
        assert_eq!(bus.post(&path, Value::Null).await.0, 200);
    }
    let dead = receipt(&bus, &id).await;
    assert_eq!(dead["state"], "dead_lettered");
    assert_eq!(
        stages(&dead),
        [
            "queued",
            "delivered",
            "nacked",
            "delivered",
            "nacked",
            "dead_lettered"
        ]
    );
    assert_eq!(dead["stages"][3]["attempt"], 2);
    let reason = dead["stages"][5]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("max_attempts: delivered 2 times"),
        "{reason}"
    );
}

/// A lease that runs out without an ack shows as a second delivery.
#[tokio::test]
async fn receipt_shows_a_redelivery_after_a_lapsed_lease() {
    let bus = Bus::start(&["bob"]).await;
    let id = send(&bus, json!({ "recipient": "bob", "content": "slow" })).await;
    lease(&bus, "bob", "limit=1&lease_seconds=1").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let again = lease(&bus, "bob", "limit=1&wait_seconds=5").await;
    assert_eq!(again[0]["id"], id.as_str());
    let view = receipt(&bus, &id).await;
    assert_eq!(stages(&view), ["queued", "delivered", "delivered"]);
    assert_eq!(view["stages"][2]["attempt"], 2);
    assert_eq!(view["attempts"], 2);
}

/// A reply is recorded on the question it answers.
#[tokio::test]
async fn receipt_lists_the_replies_to_a_message() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let question = send(&bus, json!({ "recipient": "bob", "content": "why?" })).await;
    let (status, answer) = bus
        .post(
            "/api/v1/messages?sender=bob",
            json!({ "recipient": "alice", "content": "because", "reply_to": question }),
        )
        .await;
    assert_eq!(status, 200);
    let view = receipt(&bus, &question).await;
    assert_eq!(view["replies"], json!([answer["message_id"]]));
    assert_eq!(stages(&view), ["queued", "replied"]);
}

/// An id nobody knows is a 404 with a detail.
#[tokio::test]
async fn receipt_of_an_unknown_message_is_404() {
    let bus = Bus::start(&[]).await;
    let (status, body) = bus
        .get("/api/v1/messages/01a2dead-beef-0000-0000-000000000000/status")
        .await;
    assert_eq!(status, 404);
    assert!(body["detail"].as_str().unwrap().starts_with("no message"));
}

async fn next_frame(
    socket: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Value {
    loop {
        let frame = tokio::time::timeout(FRAME_WAIT, socket.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a readable frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// The sender subscribed over its WebSocket gets a receipt frame for each stage of the
/// messages it sends — and not for others' messages.
#[tokio::test]
async fn sender_gets_receipts_over_its_websocket() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(bus.server.ws_url("/ws/alice"))
        .await
        .expect("connect alice's socket");
    let subscribe = json!({ "type": "subscribe_receipts" }).to_string();
    socket.send(Message::Text(subscribe.into())).await.unwrap();
    let answer = next_frame(&mut socket).await;
    assert_eq!(
        answer,
        json!({ "type": "subscribed", "stream": "receipts" })
    );

    let (status, _) = bus
        .post(
            "/api/v1/messages?sender=carol",
            json!({ "recipient": "bob", "content": "not alice's" }),
        )
        .await;
    assert_eq!(status, 200);
    let id = send(&bus, json!({ "recipient": "bob", "content": "tracked" })).await;
    let leased = lease(&bus, "bob", "limit=10").await;
    for message in &leased {
        let path = format!(
            "/api/v1/messages/{}/ack?agent_id=bob",
            message["id"].as_str().unwrap()
        );
        assert_eq!(bus.post(&path, Value::Null).await.0, 200);
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let frame = next_frame(&mut socket).await;
        assert_eq!(frame["type"], "receipt", "{frame}");
        assert_eq!(
            frame["message_id"],
            id.as_str(),
            "only alice's messages: {frame}"
        );
        assert_eq!(frame["sender"], "alice");
        seen.push(frame["stage"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, ["queued", "delivered", "acked"]);
}

/// A dead letter made by the engine's timer (the last lease ran out, no request involved)
/// still reaches the subscribed sender, with its reason.
#[tokio::test]
async fn subscribed_sender_hears_of_a_dead_letter_made_by_a_lapsed_lease() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(bus.server.ws_url("/ws/alice"))
        .await
        .expect("connect alice's socket");
    let subscribe = json!({ "type": "subscribe_receipts" }).to_string();
    socket.send(Message::Text(subscribe.into())).await.unwrap();
    assert_eq!(next_frame(&mut socket).await["type"], "subscribed");
    let id = send(
        &bus,
        json!({ "recipient": "bob", "content": "last chance", "max_attempts": 1 }),
    )
    .await;
    lease(&bus, "bob", "limit=1&lease_seconds=1").await;
    let mut seen = Vec::new();
    while !seen.contains(&"dead_lettered".to_string()) {
        let frame = next_frame(&mut socket).await;
        assert_eq!(frame["message_id"], id.as_str(), "{frame}");
        if frame["stage"] == "dead_lettered" {
            assert!(frame["reason"]
                .as_str()
                .unwrap()
                .starts_with("max_attempts"));
        }
        seen.push(frame["stage"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, ["queued", "delivered", "dead_lettered"]);
}

/// The OpenAPI document describes the receipt, reply and feed endpoints.
#[tokio::test]
async fn openapi_lists_the_receipt_endpoints() {
    let bus = Bus::start(&[]).await;
    let (status, doc) = bus.get("/openapi.json").await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/messages/{id}/status",
        "/api/v1/messages/{id}/reply",
        "/api/v1/feed",
    ] {
        assert!(paths.contains_key(path), "missing {path}");
    }
    assert!(paths["/api/v1/messages/{id}/reply"]["delete"].is_object());
}

/// `POST /api/v1/messages/{id}/reply` answers the question's sender and acknowledges the
/// question (so its lease running out does not deliver it again).
#[tokio::test]
async fn rest_reply_acknowledges_the_question() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let id = send(
        &bus,
        json!({ "recipient": "bob", "content": "which port?" }),
    )
    .await;
    lease(&bus, "bob", "limit=1").await;
    let (status, answer) = bus
        .post(
            &format!("/api/v1/messages/{id}/reply?agent_id=bob"),
            json!({ "content": "8080" }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["recipient"], "alice");
    assert_eq!(answer["question_acknowledged"], true);
    assert_eq!(receipt(&bus, &id).await["state"], "acked");
}

/// With `keep_question` the question stays leased to the replier.
#[tokio::test]
async fn rest_reply_with_keep_question_leaves_the_question_leased() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let id = send(
        &bus,
        json!({ "recipient": "bob", "content": "which port?" }),
    )
    .await;
    lease(&bus, "bob", "limit=1").await;
    let (status, answer) = bus
        .post(
            &format!("/api/v1/messages/{id}/reply?agent_id=bob"),
            json!({ "content": "later", "keep_question": true }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["question_acknowledged"], false);
    assert_eq!(receipt(&bus, &id).await["state"], "delivered");
    let (status, leased) = bus.get("/api/v1/agents/bob/leased").await;
    assert_eq!(status, 200, "{leased}");
    assert_eq!(leased["leased"][0]["id"], id.as_str());
}
