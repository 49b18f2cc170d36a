//! Black-box tests, in `--auth token` mode, of the names an agent may take: none can take over
//! another agent's id, pose as the admin's `system`, name a routed recipient or internal queue,
//! or hide invisible characters to pass for another agent. Each is refused with a 422 saying
//! why.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use switchboard_tests::server_harness::ServerProcess;

/// The admin token the tests give with `--admin-token`.
const ADMIN: &str = "test-admin-token-0123456789";

struct Bus {
    server: ServerProcess,
    http: reqwest::Client,
}

impl Bus {
    fn start() -> Self {
        Self {
            server: ServerProcess::start(
                "memory:",
                &["--no-discovery", "--auth", "token", "--admin-token", ADMIN],
            ),
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.server.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Registers `name` without a token: the status and the answer.
    async fn register(&self, name: &str) -> (StatusCode, Value) {
        let body = json!({ "name": name });
        self.call(Method::POST, "/api/v1/agents/register", None, Some(body))
            .await
    }

    /// Registers a name that must be accepted: its id and token.
    async fn registered(&self, name: &str) -> (String, String) {
        let (status, body) = self.register(name).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["agent_id"].as_str().unwrap().to_string(),
            body["token"].as_str().unwrap().to_string(),
        )
    }
}

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

/// The takeover: a newcomer registering the victim's id as its name would then have read, by
/// id, what is sent to the victim. The name is refused, and the victim keeps its inbox.
#[tokio::test]
async fn a_newcomer_cannot_take_over_an_agent_id_as_its_name() {
    let bus = Bus::start();
    let (victim_id, victim_token) = bus.registered("victim").await;
    let (status, body) = bus.register(&victim_id).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(detail(&body).contains("agent id"), "{body}");

    let send = "/api/v1/messages?sender=system";
    let message = json!({ "recipient": victim_id, "content": "the deploy key is in vault" });
    let (status, body) = bus
        .call(Method::POST, send, Some(ADMIN), Some(message))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["recipient"], "victim");
    let inbox = format!("/api/v1/messages/{victim_id}");
    let (status, leased) = bus
        .call(Method::GET, &inbox, Some(&victim_token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{leased}");
    assert_eq!(leased[0]["content"], "the deploy key is in vault");
}

/// Any id-shaped name is refused, whether or not an agent has that id yet.
#[tokio::test]
async fn names_shaped_like_an_agent_id_are_refused() {
    let bus = Bus::start();
    let (status, body) = bus.register("3f2b9c1e-7a4d-4e8f-9b0a-1c2d3e4f5a6b").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

/// Without a token nobody may register `system` and then send as the admin.
#[tokio::test]
async fn system_cannot_be_registered_and_sent_as() {
    let bus = Bus::start();
    let (_, bob) = bus.registered("bob").await;
    for name in ["system", "System", "SYSTEM"] {
        let (status, body) = bus.register(name).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert!(detail(&body).contains("reserved"), "{body}");
    }
    let message = json!({ "recipient": "bob", "content": "rm -rf" });
    let (status, _) = bus
        .call(
            Method::POST,
            "/api/v1/messages?sender=system",
            Some(&bob),
            Some(message),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Words and prefixes routing and the internal queues use are no agent's name.
#[tokio::test]
async fn routing_words_and_internal_queue_prefixes_are_refused() {
    let bus = Bus::start();
    for name in [
        "auto",
        "Broadcast",
        "capability:quality",
        "rule:db",
        "inbox:x",
        "replies:x",
        "queue:orders",
    ] {
        let (status, body) = bus.register(name).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert!(detail(&body).contains("reserved"), "{name}: {body}");
    }
}

/// `bob` followed by a zero-width space lists exactly like `bob`; such names are refused, as
/// are bidirectional controls.
#[tokio::test]
async fn names_with_invisible_or_direction_changing_characters_are_refused() {
    let bus = Bus::start();
    bus.registered("bob").await;
    for name in [
        "bob\u{200B}",
        "\u{FEFF}bob",
        "bo\u{2060}b",
        "bob\u{202E}",
        "bob\u{2066}",
    ] {
        let (status, body) = bus.register(name).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {body}");
        assert!(detail(&body).contains("U+"), "{body}");
    }
    let (_, agents) = bus
        .call(Method::GET, "/api/v1/agents", Some(ADMIN), None)
        .await;
    assert_eq!(agents.as_array().unwrap().len(), 1, "{agents}");
}
