//! Black-box tests of the agent REST API against the real `switchboard` binary (memory
//! storage): delivery order, leases, redelivery, dead letters, isolation, broadcast, registry.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard_tests::server_harness::ServerProcess;

struct Api {
    server: ServerProcess,
    http: reqwest::Client,
}

impl Api {
    fn start() -> Self {
        Self {
            server: ServerProcess::start("memory:", &[]),
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.server.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(self.server.url(path)).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn register(&self, name: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/agents/register",
                json!({ "name": name, "capabilities": ["quality"] }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["agent_id"].as_str().unwrap().to_string()
    }

    async fn send(&self, to: &str, content: &str, priority: &str) -> String {
        self.send_with(to, json!({ "content": content, "priority": priority }))
            .await
    }

    async fn send_with(&self, to: &str, mut body: Value) -> String {
        body["recipient"] = json!(to);
        let (status, reply) = self.post("/api/v1/messages?sender=tester", body).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(reply["status"], "sent");
        reply["message_id"].as_str().unwrap().to_string()
    }

    async fn receive(&self, agent: &str, query: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/api/v1/messages/{agent}?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().unwrap().clone()
    }

    async fn ack(&self, id: &str, agent: &str) -> StatusCode {
        self.post(
            &format!("/api/v1/messages/{id}/ack?agent_id={agent}"),
            json!(null),
        )
        .await
        .0
    }
}

fn contents(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect()
}

/// Critical first, then high, medium, low; within one priority, the order they were sent.
#[tokio::test]
async fn delivery_follows_priority_then_send_order() {
    let api = Api::start();
    api.register("alice").await;
    for (content, priority) in [
        ("low-1", "low"),
        ("medium-1", "medium"),
        ("critical-1", "critical"),
        ("high-1", "high"),
        ("medium-2", "medium"),
        ("critical-2", "critical"),
        ("low-2", "low"),
        ("high-2", "high"),
    ] {
        api.send("alice", content, priority).await;
    }
    let messages = api.receive("alice", "limit=100").await;
    assert_eq!(
        contents(&messages),
        [
            "critical-1",
            "critical-2",
            "high-1",
            "high-2",
            "medium-1",
            "medium-2",
            "low-1",
            "low-2"
        ]
    );
    assert_eq!(messages[0]["sender"], "tester");
    assert_eq!(messages[0]["priority"], "critical");
    assert_eq!(messages[0]["attempts"], 1);
    assert!(messages[0]["lease_expires_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
}

/// A leased message is invisible until its lease ends, then delivered again with attempts + 1;
/// an acked one never comes back.
#[tokio::test]
async fn unacked_message_is_redelivered_after_its_lease() {
    let api = Api::start();
    api.register("alice").await;
    let kept = api.send("alice", "kept", "medium").await;
    let dropped = api.send("alice", "dropped", "medium").await;
    let first = api.receive("alice", "limit=10&lease_seconds=1").await;
    assert_eq!(first.len(), 2);
    assert_eq!(api.ack(&kept, "alice").await, StatusCode::OK);
    assert!(
        api.receive("alice", "limit=10").await.is_empty(),
        "leased messages are hidden"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let again = api.receive("alice", "limit=10").await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["id"], dropped.as_str());
    assert_eq!(again[0]["attempts"], 2);
}

/// A message never acked within `max_attempts` deliveries becomes a dead letter, and a redrive
/// makes it deliverable again.
#[tokio::test]
async fn message_is_dead_lettered_after_max_attempts_and_can_be_redriven() {
    let api = Api::start();
    api.register("alice").await;
    let id = api
        .send_with("alice", json!({ "content": "poison", "max_attempts": 2 }))
        .await;
    for _ in 0..2 {
        assert_eq!(api.receive("alice", "lease_seconds=1").await.len(), 1);
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    assert!(api.receive("alice", "limit=10").await.is_empty());
    let (status, dead) = api.get("/api/v1/agents/alice/dead-letters").await;
    assert_eq!(status, StatusCode::OK);
    let dead = dead.as_array().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["id"], id.as_str());
    assert_eq!(dead[0]["reason"], "max_attempts");
    assert_eq!(dead[0]["content"], "poison");
    let (status, body) = api
        .post("/api/v1/agents/alice/dead-letters/redrive", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["redriven"], 1);
    assert_eq!(contents(&api.receive("alice", "").await), ["poison"]);
}

/// Agent B can neither read nor ack (nor nack, nor extend) A's messages: 404, as for a
/// message that does not exist.
#[tokio::test]
async fn agents_cannot_read_or_settle_each_others_messages() {
    let api = Api::start();
    api.register("alice").await;
    api.register("bob").await;
    let id = api.send("alice", "for alice only", "medium").await;
    assert!(api.receive("bob", "limit=10").await.is_empty());
    assert_eq!(api.receive("alice", "limit=10").await.len(), 1);
    assert_eq!(api.ack(&id, "bob").await, StatusCode::NOT_FOUND);
    for action in ["nack", "extend"] {
        let path = format!("/api/v1/messages/{id}/{action}?agent_id=bob&lease_seconds=5");
        let (status, body) = api.post(&path, json!(null)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("not found"));
    }
    let (status, body) = api
        .post(
            "/api/v1/messages/ack",
            json!({ "agent_id": "bob", "message_ids": [id] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["acknowledged"], json!([]));
    assert_eq!(api.ack(&id, "alice").await, StatusCode::OK);
    assert_eq!(
        api.ack(&id, "alice").await,
        StatusCode::NOT_FOUND,
        "second ack"
    );
}

/// Acks, nacks and extends accept the agent's id as well as its name; nack makes the message
/// ready again at once when asked with no delay.
#[tokio::test]
async fn nack_extend_and_batch_ack_work_by_name_or_id() {
    let api = Api::start();
    let alice_id = api.register("alice").await;
    let first = api.send("alice", "one", "medium").await;
    let second = api.send("alice", "two", "medium").await;
    api.receive(&alice_id, "limit=2&lease_seconds=60").await;
    let (status, body) = api
        .post(
            &format!("/api/v1/messages/{first}/extend?agent_id={alice_id}&lease_seconds=120"),
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "extended");
    let (status, _) = api
        .post(
            &format!("/api/v1/messages/{first}/nack?agent_id=alice&delay_seconds=0"),
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let again = api.receive("alice", "limit=10").await;
    assert_eq!(contents(&again), ["one"]);
    assert_eq!(again[0]["attempts"], 2);
    let (status, body) = api
        .post(
            "/api/v1/messages/ack",
            json!({ "agent_id": alice_id, "message_ids": [first, second, "not-an-id"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["acknowledged"].as_array().unwrap().len(), 2);
    assert_eq!(body["not_found"], json!(["not-an-id"]));
}

/// Broadcast answers `target_agents` as a count, as the original system did (clients of the
/// original read a number), and the targets' names in `target_agent_names`.
#[tokio::test]
async fn broadcast_answers_the_target_count_and_the_names_apart() {
    let api = Api::start();
    for name in ["alice", "bob", "carol"] {
        api.register(name).await;
    }
    let (status, body) = api
        .post(
            "/api/v1/broadcast?sender=lead",
            json!({ "recipients": ["bob", "carol"], "content": "standup" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["target_agents"], 2, "{body}");
    assert_eq!(body["target_agent_names"], json!(["bob", "carol"]));
}

/// Broadcast puts one copy in each target's inbox, tagged with the broadcast id, and none in
/// other inboxes.
#[tokio::test]
async fn broadcast_reaches_only_its_targets() {
    let api = Api::start();
    for name in ["alice", "bob", "carol"] {
        api.register(name).await;
    }
    let (status, body) = api
        .post(
            "/api/v1/broadcast?sender=lead",
            json!({ "recipients": ["alice", "bob"], "content": "standup", "metadata": { "k": 1 } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["messages_sent"], 2);
    assert_eq!(body["target_agent_names"], json!(["alice", "bob"]));
    let broadcast_id = body["broadcast_id"].as_str().unwrap();
    for name in ["alice", "bob"] {
        let got = api.receive(name, "").await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["metadata"]["broadcast_id"], broadcast_id);
        assert_eq!(got[0]["metadata"]["k"], 1);
        assert_eq!(got[0]["sender"], "lead");
    }
    assert!(api.receive("carol", "").await.is_empty());
    let (status, body) = api
        .post(
            "/api/v1/broadcast",
            json!({ "recipients": ["nobody"], "content": "x" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "No target agents found");
}

/// Names are unique: registering a name again keeps its id; the agent can then be found by
/// name or id, filtered, heartbeated and deleted.
#[tokio::test]
async fn registry_keeps_one_id_per_name() {
    let api = Api::start();
    let id = api.register("alice").await;
    let (_, again) = api
        .post(
            "/api/v1/agents/register",
            json!({ "name": "alice", "capabilities": ["docs"] }),
        )
        .await;
    assert_eq!(again["agent_id"], id.as_str());
    let (status, agents) = api.get("/api/v1/agents").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(agents.as_array().unwrap().len(), 1);
    assert_eq!(agents[0]["capabilities"], json!(["docs"]));
    assert_eq!(agents[0]["status"], "online");
    let (_, by_id) = api.get(&format!("/api/v1/agents/{id}")).await;
    assert_eq!(by_id["name"], "alice");
    let (_, filtered) = api.get("/api/v1/agents?capability=quality").await;
    assert_eq!(filtered, json!([]));
    let (status, body) = api
        .post(&format!("/api/v1/agents/{id}/heartbeat"), json!(null))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("heartbeat_recorded"))
    );
    let response = api
        .http
        .delete(api.server.url("/api/v1/agents/alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = api.get("/api/v1/agents/alice").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Stats count sent, pending and delivered messages and measure delivery time.
#[tokio::test]
async fn stats_report_real_numbers() {
    let api = Api::start();
    api.register("alice").await;
    let id = api.send("alice", "one", "medium").await;
    api.send("alice", "two", "medium").await;
    api.receive("alice", "limit=1").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(api.ack(&id, "alice").await, StatusCode::OK);
    let (status, stats) = api.get("/api/v1/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["queue"]["total_messages"], 2);
    assert_eq!(stats["queue"]["pending_messages"], 1);
    assert_eq!(stats["queue"]["delivered_messages"], 1);
    assert!(stats["queue"]["average_delivery_time"].as_f64().unwrap() > 0.0);
    assert_eq!(stats["agents"]["total_agents"], 1);
    assert_eq!(stats["agents"]["capabilities"]["quality"], 1);
    assert_eq!(stats["websockets"]["active_connections"], 0);
}

/// A long poll returns as soon as a message arrives.
#[tokio::test]
async fn long_poll_wakes_on_send() {
    let api = Api::start();
    api.register("alice").await;
    let poll = api.receive("alice", "wait_seconds=10");
    let send = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        api.send("alice", "wake", "medium").await
    };
    let started = std::time::Instant::now();
    let (messages, _) = tokio::join!(poll, send);
    assert_eq!(contents(&messages), ["wake"]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// The queue API: enqueue a batch, lease with tokens, ack and nack by token, configure, list.
#[tokio::test]
async fn queue_api_round_trip() {
    let api = Api::start();
    let (status, body) = api
        .post(
            "/api/v1/queues/jobs/messages",
            json!([{ "payload": "a", "priority": 1 }, { "payload": "b", "priority": 9, "headers": { "h": "v" } }]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["messages"].as_array().unwrap().len(), 2);
    let (status, leased) = api
        .post("/api/v1/queues/jobs/lease", json!({ "max": 10 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(leased[0]["payload"], "b");
    assert_eq!(leased[0]["headers"]["h"], "v");
    let reference = |m: &Value| json!({ "id": m["id"], "lease_token": m["lease_token"] });
    let (status, body) = api
        .post("/api/v1/queues/other/ack", reference(&leased[0]))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a delivery of jobs is unknown to another queue's path: {body}"
    );
    let mut extend = reference(&leased[0]);
    extend["lease_seconds"] = json!(60);
    assert_eq!(
        api.post("/api/v1/queues/other/extend", extend).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = api
        .post(
            "/api/v1/queues/other/nack",
            json!({ "items": [reference(&leased[0])] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["status"], "not_found");
    let (status, body) = api
        .post("/api/v1/queues/jobs/ack", reference(&leased[0]))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "still leased, acked in its queue: {body}"
    );
    let (status, _) = api
        .post("/api/v1/queues/jobs/ack", reference(&leased[0]))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut nack = reference(&leased[1]);
    nack["delay_seconds"] = json!(0);
    assert_eq!(
        api.post("/api/v1/queues/jobs/nack", nack).await.0,
        StatusCode::OK
    );
    let (_, info) = api.get("/api/v1/queues/jobs").await;
    assert_eq!(info["ready"], 1);
    assert_eq!(info["counters"]["acked"], 1);
    let response = api
        .http
        .put(api.server.url("/api/v1/queues/jobs"))
        .json(&json!({ "max_attempts": 7 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["config"]["max_attempts"], 7);
    let (_, queues) = api.get("/api/v1/queues").await;
    assert!(queues
        .as_array()
        .unwrap()
        .iter()
        .any(|q| q["name"] == "jobs"));
    let (status, _) = api.post("/api/v1/queues/_registry/lease", json!({})).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "reserved queues are not reachable"
    );
}

/// The OpenAPI document lists every route.
#[tokio::test]
async fn openapi_document_lists_every_route() {
    let api = Api::start();
    let (status, doc) = api.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/health",
        "/api/v1/messages",
        "/api/v1/messages/{agent}",
        "/api/v1/messages/{id}/ack",
        "/api/v1/messages/ack",
        "/api/v1/broadcast",
        "/api/v1/agents/register",
        "/api/v1/agents/{agent}/dead-letters/redrive",
        "/api/v1/queues/{queue}/lease",
        "/api/v1/stats",
        "/ws/{agent}",
    ] {
        assert!(paths.contains_key(path), "missing {path}");
    }
}

/// `dedup_key` stores one message for repeated sends, `delay_seconds` hides a message until
/// its time, `reply_to` and `expires_in_hours: null` are kept.
#[tokio::test]
async fn dedup_delay_and_reply_to_are_honoured() {
    let api = Api::start();
    api.register("alice").await;
    let first = api
        .send_with("alice", json!({ "content": "once", "dedup_key": "k1" }))
        .await;
    let second = api
        .send_with("alice", json!({ "content": "once", "dedup_key": "k1" }))
        .await;
    assert_eq!(first, second, "the second send returns the first id");
    api.send_with("alice", json!({ "content": "later", "delay_seconds": 1 }))
        .await;
    api.send_with(
        "alice",
        json!({ "content": "answer", "reply_to": first, "expires_in_hours": null }),
    )
    .await;
    let now = api.receive("alice", "limit=10").await;
    assert_eq!(contents(&now), ["once", "answer"]);
    assert_eq!(now[1]["reply_to"], first.as_str());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(contents(&api.receive("alice", "limit=10").await), ["later"]);
}
