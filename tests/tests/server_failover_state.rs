//! A server started on the storage of one that died (`kill -9`, then a new `switchboard
//! serve` on the same private Redis, as a standby taking over does) keeps what the dead one
//! acknowledged beyond the messages: a keyed routed send retried against it is stored once,
//! and a question whose asker waits still has its answer routed to the asker's `ask`.

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard_tests::redis_server::{RedisMode, RedisServer};
use switchboard_tests::server_harness::ServerProcess;

struct Api {
    server: ServerProcess,
    http: reqwest::Client,
}

impl Api {
    /// A server on a private Redis that fsyncs every write; `None` (the test is skipped, and
    /// says so) while this build has no Redis backend.
    fn start(redis: &RedisServer) -> Option<Self> {
        match ServerProcess::try_start(&format!("{}/0", redis.url()), &[]) {
            Ok(server) => Some(Self {
                server,
                http: reqwest::Client::new(),
            }),
            Err(stderr) if stderr.contains("not built into this binary") => {
                eprintln!("SKIPPED: this switchboard build has no Redis backend: {stderr}");
                None
            }
            Err(stderr) => panic!("switchboard did not start on Redis: {stderr}"),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.server.url(path));
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, body).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Value::Null).await
    }

    async fn register(&self, name: &str, capabilities: &[&str]) {
        let body = json!({ "name": name, "capabilities": capabilities });
        let (status, answer) = self.post("/api/v1/agents/register", body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }

    /// Presence is not kept: after the takeover an agent is online once it shows up.
    async fn heartbeat(&self, name: &str) {
        let path = format!("/api/v1/agents/{name}/heartbeat");
        let (status, answer) = self.post(&path, Value::Null).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }

    /// Sends `body` from `sender`; the answer.
    async fn send(&self, sender: &str, body: Value) -> Value {
        let path = format!("/api/v1/messages?sender={sender}");
        let (status, answer) = self.post(&path, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    /// Leases `agent`'s inbox; the contents.
    async fn inbox(&self, agent: &str) -> Vec<String> {
        let path = format!("/api/v1/messages/{agent}?limit=100&lease_seconds=600");
        let (status, answer) = self.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
            .as_array()
            .unwrap()
            .iter()
            .map(|message| message["content"].as_str().unwrap().to_string())
            .collect()
    }
}

/// The first try of a keyed `capability:` send went to b; the server died; the retry, sent to
/// the server that took over (whose round robin would pick a), gets the first try's id,
/// deduplicated, and the message is stored once.
#[tokio::test]
async fn a_routed_send_retried_after_a_failover_is_stored_once() {
    let redis = RedisServer::start(RedisMode::Aof { fsync: "always" });
    let Some(mut api) = Api::start(&redis) else {
        return;
    };
    for name in ["a", "b"] {
        api.register(name, &["quality"]).await;
    }
    let first = json!({ "recipient": "capability:quality", "content": "first" });
    assert_eq!(api.send("tester", first).await["routed_to"], "a");
    let keyed = json!({
        "recipient": "capability:quality", "content": "deploy", "dedup_key": "retry-me"
    });
    let sent = api.send("tester", keyed.clone()).await;
    assert_eq!(sent["routed_to"], "b");

    api.server.restart(); // kill -9, then a new server on the same Redis
    for name in ["a", "b"] {
        api.heartbeat(name).await;
    }
    let retried = api.send("tester", keyed).await;
    assert_eq!(retried["message_id"], sent["message_id"], "{retried}");
    assert_eq!(retried["deduplicated"], true, "{retried}");
    assert_eq!(retried["routed_to"], "b", "{retried}");
    let deploys = [api.inbox("a").await, api.inbox("b").await]
        .concat()
        .into_iter()
        .filter(|content| content == "deploy")
        .count();
    assert_eq!(deploys, 1);
}

/// Alice asked bob and waits; the server died; bob answers on the server that took over, and
/// alice's `ask`, polling it, gets the answer (it used to land in her inbox instead).
#[tokio::test]
async fn an_ask_open_before_a_failover_gets_its_answer() {
    let redis = RedisServer::start(RedisMode::Aof { fsync: "always" });
    let Some(mut api) = Api::start(&redis) else {
        return;
    };
    for name in ["alice", "bob"] {
        api.register(name, &[]).await;
    }
    let question = json!({
        "recipient": "bob", "content": "approve deploy?",
        "metadata": { "expects_reply": true },
    });
    let asked = api.send("alice", question).await;
    let question_id = asked["message_id"].as_str().unwrap().to_string();
    assert_eq!(api.inbox("bob").await, ["approve deploy?"]);

    api.server.restart(); // kill -9, then a new server on the same Redis
    let path = format!("/api/v1/messages/{question_id}/reply?agent_id=bob");
    let (status, replied) = api.post(&path, json!({ "content": "yes" })).await;
    assert_eq!(status, StatusCode::OK, "{replied}");
    let path = format!("/api/v1/messages/{question_id}/reply?agent_id=alice&wait_seconds=0");
    let (status, polled) = api.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{polled}");
    assert_eq!(polled["reply"]["content"], "yes", "{polled}");
}
