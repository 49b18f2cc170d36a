//! Black-box tests of `serve --auth token` against the real binary: registration issues
//! tokens, every agent call needs that agent's token (401 without a usable one, 403 with
//! another agent's), the admin token does system operations, WebSockets take the token as a
//! header or `?token=`, tokens survive a restart, and a generated admin token is printed once.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use switchboard_tests::server_harness::{run_to_end, ServerProcess};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The admin token the tests give with `--admin-token`.
const ADMIN: &str = "test-admin-token-0123456789";
/// How long a test waits for a pushed frame.
const FRAME_WAIT: Duration = Duration::from_secs(10);

struct Bus {
    server: ServerProcess,
    http: reqwest::Client,
}

impl Bus {
    fn start() -> Self {
        Self::on("memory:", &[])
    }

    fn on(storage: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--auth", "token", "--admin-token", ADMIN];
        args.extend_from_slice(extra);
        Self {
            server: ServerProcess::start(storage, &args),
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, Option<String>) {
        let mut request = self.http.request(method, self.server.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|value| value.to_str().unwrap().to_string());
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            challenge,
        )
    }

    async fn status(&self, method: Method, path: &str, token: Option<&str>) -> StatusCode {
        self.call(method, path, token, None).await.0
    }

    /// Registers a new name and returns its token.
    async fn register(&self, name: &str) -> String {
        let (status, body, _) = self
            .call(
                Method::POST,
                "/api/v1/agents/register",
                None,
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {body}"))
            .to_string()
    }

    async fn send(&self, sender: &str, token: &str, to: &str) -> StatusCode {
        let path = format!("/api/v1/messages?sender={sender}");
        let body = json!({ "recipient": to, "content": "hello" });
        self.call(Method::POST, &path, Some(token), Some(body))
            .await
            .0
    }
}

#[tokio::test]
async fn registering_a_new_name_returns_a_token_and_re_registering_needs_it() {
    let bus = Bus::start();
    let alice = bus.register("alice").await;
    let bob = bus.register("bob").await;
    assert!(alice.starts_with("sb_") && alice.len() >= 40, "{alice}");
    assert_ne!(alice, bob);
    let again = || Some(json!({ "name": "alice", "capabilities": ["rust"] }));
    let path = "/api/v1/agents/register";

    let (status, body, challenge) = bus.call(Method::POST, path, None, again()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(challenge.unwrap().starts_with("Bearer"));
    let (status, _, _) = bus.call(Method::POST, path, Some(&bob), again()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Its own token updates the record and keeps the token.
    let (status, body, _) = bus.call(Method::POST, path, Some(&alice), again()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("token").is_none_or(Value::is_null), "{body}");
    assert_eq!(
        bus.status(Method::GET, "/api/v1/messages/alice", Some(&alice))
            .await,
        StatusCode::OK
    );

    // The admin token re-issues it: the old one stops working, the new one works.
    let (status, body, _) = bus.call(Method::POST, path, Some(ADMIN), again()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rotated = body["token"].as_str().unwrap().to_string();
    assert_ne!(rotated, alice);
    assert_eq!(
        bus.status(Method::GET, "/api/v1/messages/alice", Some(&alice))
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        bus.status(Method::GET, "/api/v1/messages/alice", Some(&rotated))
            .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn reading_an_inbox_needs_that_agents_own_token() {
    let bus = Bus::start();
    let alice = bus.register("alice").await;
    let bob = bus.register("bob").await;
    let path = "/api/v1/messages/alice";

    let (status, body, challenge) = bus.call(Method::GET, path, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().starts_with("Bearer"));
    assert!(
        body["detail"].as_str().unwrap().contains("Bearer"),
        "the detail says what to send: {body}"
    );
    let (status, body, _) = bus.call(Method::GET, path, Some("sb_wrong"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body, _) = bus.call(Method::GET, path, Some(&bob), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("bob"), "{body}");
    assert_eq!(
        bus.status(Method::GET, path, Some(&alice)).await,
        StatusCode::OK
    );
    assert_eq!(
        bus.status(Method::GET, path, Some(ADMIN)).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn sending_acking_and_heartbeats_act_only_as_the_tokens_agent() {
    let bus = Bus::start();
    let alice = bus.register("alice").await;
    let bob = bus.register("bob").await;

    assert_eq!(bus.send("alice", &alice, "bob").await, StatusCode::OK);
    assert_eq!(bus.send("alice", &bob, "bob").await, StatusCode::FORBIDDEN);
    assert_eq!(bus.send("system", &bob, "bob").await, StatusCode::FORBIDDEN);
    assert_eq!(bus.send("system", ADMIN, "bob").await, StatusCode::OK);
    let (status, _, _) = bus
        .call(
            Method::POST,
            "/api/v1/messages?sender=alice",
            None,
            Some(json!({ "recipient": "bob", "content": "hi" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, leased, _) = bus
        .call(
            Method::GET,
            "/api/v1/messages/bob?limit=2",
            Some(&bob),
            None,
        )
        .await;
    let ids: Vec<String> = leased
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{leased}");
    let ack = format!("/api/v1/messages/{}/ack?agent_id=bob", ids[0]);
    assert_eq!(
        bus.status(Method::POST, &ack, Some(&alice)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        bus.status(Method::POST, &ack, Some(&bob)).await,
        StatusCode::OK
    );
    let batch = || Some(json!({ "agent_id": "bob", "message_ids": [ids[1]] }));
    let (status, _, _) = bus
        .call(Method::POST, "/api/v1/messages/ack", Some(&alice), batch())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body, _) = bus
        .call(Method::POST, "/api/v1/messages/ack", Some(&bob), batch())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["acknowledged"], json!([ids[1]]));

    let heartbeat = "/api/v1/agents/bob/heartbeat";
    assert_eq!(
        bus.status(Method::POST, heartbeat, Some(&alice)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        bus.status(Method::POST, heartbeat, Some(&bob)).await,
        StatusCode::OK
    );
    // Deleting another agent is the admin's business.
    assert_eq!(
        bus.status(Method::DELETE, "/api/v1/agents/bob", Some(&alice))
            .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        bus.status(Method::DELETE, "/api/v1/agents/bob", Some(ADMIN))
            .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_queue_api_and_system_operations_need_the_admin_token() {
    let bus = Bus::start();
    let alice = bus.register("alice").await;
    let enqueue = || Some(json!({ "payload": "work" }));
    let path = "/api/v1/queues/jobs/messages";

    let (status, _, _) = bus.call(Method::POST, path, None, enqueue()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body, _) = bus.call(Method::POST, path, Some(&alice), enqueue()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("admin token"),
        "{body}"
    );
    let (status, body, _) = bus.call(Method::POST, path, Some(ADMIN), enqueue()).await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(
        bus.status(Method::GET, "/api/v1/queues", Some(ADMIN)).await,
        StatusCode::OK
    );
    let rules = Some(json!({ "rules": [] }));
    let (status, _, _) = bus
        .call(Method::PUT, "/api/v1/routing/rules", Some(&alice), rules)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        bus.status(
            Method::POST,
            "/api/v1/broadcast?sender=system",
            Some(&alice)
        )
        .await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn read_only_views_need_any_token_and_health_metrics_and_the_page_stay_open() {
    let bus = Bus::start();
    let alice = bus.register("alice").await;
    for open in ["/health", "/openapi.json", "/metrics", "/"] {
        let response = bus.http.get(bus.server.url(open)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{open}");
    }
    for view in [
        "/api/v1/agents",
        "/api/v1/stats",
        "/api/v1/metrics/current",
        "/api/v1/alerts",
    ] {
        assert_eq!(
            bus.status(Method::GET, view, None).await,
            StatusCode::UNAUTHORIZED,
            "{view}"
        );
        assert_eq!(
            bus.status(Method::GET, view, Some(&alice)).await,
            StatusCode::OK,
            "{view}"
        );
        assert_eq!(
            bus.status(Method::GET, view, Some(ADMIN)).await,
            StatusCode::OK,
            "{view}"
        );
    }
}

#[tokio::test]
async fn websockets_take_the_token_as_a_header_or_in_the_query() {
    let bus = Bus::start();
    let alice = bus.register("alice").await;
    let bob = bus.register("bob").await;

    let refused = |url: String| async move {
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status(),
            other => panic!("expected an HTTP refusal, got {:?}", other.map(|_| ())),
        }
    };
    assert_eq!(
        refused(bus.server.ws_url("/ws/alice")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refused(bus.server.ws_url(&format!("/ws/alice?token={bob}"))).await,
        StatusCode::FORBIDDEN
    );

    // `?token=`, as a browser would.
    let url = bus.server.ws_url(&format!("/ws/alice?token={alice}"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(bus.send("bob", &bob, "alice").await, StatusCode::OK);
    let pushed = loop {
        let frame = tokio::time::timeout(FRAME_WAIT, socket.next())
            .await
            .expect("a push within the wait")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            break serde_json::from_str::<Value>(&text).unwrap();
        }
    };
    assert_eq!(pushed["type"], "message", "{pushed}");
    assert_eq!(pushed["content"], "hello", "{pushed}");
    drop(socket);

    // The header, as programs do.
    let mut request = bus.server.ws_url("/ws/bob").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {bob}").parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
}

#[tokio::test]
async fn tokens_survive_a_restart_on_redb() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("redb:{}", dir.path().join("bus.redb").display());
    let mut bus = Bus::on(&storage, &[]);
    let alice = bus.register("alice").await;
    bus.server.restart();
    assert_eq!(
        bus.status(Method::GET, "/api/v1/messages/alice", Some(&alice))
            .await,
        StatusCode::OK
    );
    assert_eq!(
        bus.status(Method::GET, "/api/v1/messages/alice", None)
            .await,
        StatusCode::UNAUTHORIZED
    );
}

/// The token printed on `stderr`, if any.
fn printed_admin_token(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("switchboard admin token: "))
        .map(|token| token.trim().to_string())
}

#[tokio::test]
async fn a_generated_admin_token_is_printed_once_and_works() {
    let workdir = tempfile::tempdir().unwrap();
    let workdir_arg = workdir.path().to_str().unwrap();
    let args = ["--auth", "token", "--workdir", workdir_arg];
    let mut first = ServerProcess::start("memory:", &args);
    let admin = printed_admin_token(&first.stderr())
        .unwrap_or_else(|| panic!("no admin token printed: {}", first.stderr()));
    let http = reqwest::Client::new();
    let queues = http
        .get(first.url("/api/v1/queues"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(queues.status(), StatusCode::OK);
    let kept = std::fs::read_to_string(workdir.path().join(".switchboard/admin-token.sha256"));
    assert!(!kept.unwrap().contains(&admin), "only the hash is kept");
    first.kill9();

    let second = ServerProcess::start("memory:", &args);
    assert_eq!(printed_admin_token(&second.stderr()), None);
    let queues = http
        .get(second.url("/api/v1/queues"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        queues.status(),
        StatusCode::OK,
        "the same token still works"
    );
}

#[test]
fn listening_beyond_loopback_without_auth_is_refused() {
    let (status, _, stderr) = run_to_end(
        &[
            "serve",
            "--storage",
            "memory:",
            "--api-host",
            "0.0.0.0",
            "--api-port",
            "0",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--auth token"), "{stderr}");
    assert!(stderr.contains("--insecure"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one paragraph: {stderr}");
}

#[tokio::test]
async fn listening_beyond_loopback_is_allowed_with_insecure_or_with_auth() {
    let insecure = ServerProcess::start("memory:", &["--api-host", "0.0.0.0", "--insecure"]);
    let health = reqwest::get(insecure.url("/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let token_mode = ServerProcess::start(
        "memory:",
        &[
            "--api-host",
            "0.0.0.0",
            "--auth",
            "token",
            "--admin-token",
            ADMIN,
        ],
    );
    let health = reqwest::get(token_mode.url("/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_cli_prints_the_issued_token_and_the_other_commands_use_it() {
    let bus = Bus::start();
    let server = bus.server.base();
    let (status, out, err) = run_to_end(
        &["register", "--server", &server, "--agent", "carol"],
        Duration::from_secs(30),
    );
    assert!(status.success(), "{err}");
    let token = out
        .lines()
        .find_map(|line| line.strip_prefix("token: "))
        .unwrap_or_else(|| panic!("no token printed: {out}"))
        .to_string();
    assert!(out.contains("Keep this token"), "{out}");

    let send = |token: Option<&str>| {
        let mut args = vec![
            "send",
            "--server",
            &server,
            "--agent",
            "carol",
            "carol",
            "note to self",
        ];
        if let Some(token) = token {
            args.extend(["--token", token]);
        }
        run_to_end(&args, Duration::from_secs(30))
    };
    let (status, _, err) = send(None);
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("--token"), "the failure says how: {err}");
    let (status, _, err) = send(Some(&token));
    assert!(status.success(), "{err}");
}

/// `switchboard agents remove NAME` deletes an agent with its own token or the admin's, and
/// says what to do without one; another agent's token cannot.
#[tokio::test]
async fn the_cli_removes_an_agent_with_its_own_token_or_the_admin_token() {
    let bus = Bus::start();
    let dave = bus.register("dave").await;
    let erin = bus.register("erin").await;
    bus.register("frank").await;
    let server = bus.server.base();
    let remove = |name: &str, token: Option<&str>| {
        let mut args = vec!["agents", "remove", name, "--server", &server];
        if let Some(token) = token {
            args.extend(["--token", token]);
        }
        run_to_end(&args, Duration::from_secs(30))
    };
    let (status, _, err) = remove("dave", None);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("--token"), "the failure says how: {err}");
    let (status, _, err) = remove("dave", Some(&erin));
    assert_eq!(status.code(), Some(1), "{err}");

    let (status, out, err) = remove("dave", Some(&dave));
    assert!(status.success(), "{err}");
    assert!(out.contains("removed agent dave"), "{out}");
    let (status, _, err) = remove("frank", Some(ADMIN));
    assert!(status.success(), "{err}");
    let (_, agents, _) = bus
        .call(Method::GET, "/api/v1/agents", Some(ADMIN), None)
        .await;
    let names: Vec<&str> = agents
        .as_array()
        .unwrap()
        .iter()
        .map(|agent| agent["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["erin"]);
}

/// Bob asks alice (`expects_reply`) as the CLI's `ask` does; returns the question's id.
async fn bob_asks_alice(bus: &Bus, bob: &str) -> String {
    let body = json!({
        "recipient": "alice",
        "content": "approve deploy?",
        "metadata": { "expects_reply": true },
    });
    let (status, sent, _) = bus
        .call(
            Method::POST,
            "/api/v1/messages?sender=bob",
            Some(bob),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    sent["message_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn only_the_agent_a_question_was_sent_to_may_answer_it_with_reply() {
    let bus = Bus::start();
    let bob = bus.register("bob").await;
    bus.register("alice").await;
    let mallory = bus.register("mallory").await;
    let question = bob_asks_alice(&bus, &bob).await;
    let path = format!("/api/v1/messages/{question}/reply?agent_id=mallory");
    let (status, body, _) = bus
        .call(
            Method::POST,
            &path,
            Some(&mallory),
            Some(json!({ "content": "yes" })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("was not sent to you"), "{detail}");
}

#[tokio::test]
async fn a_reply_to_from_an_agent_not_asked_is_no_answer_but_an_inbox_message() {
    let bus = Bus::start();
    let bob = bus.register("bob").await;
    bus.register("alice").await;
    let mallory = bus.register("mallory").await;
    let question = bob_asks_alice(&bus, &bob).await;
    let forged = json!({ "recipient": "bob", "content": "yes", "reply_to": question });
    let (status, body, _) = bus
        .call(
            Method::POST,
            "/api/v1/messages?sender=mallory",
            Some(&mallory),
            Some(forged),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let wait = format!("/api/v1/messages/{question}/reply?agent_id=bob");
    let (status, answer, _) = bus.call(Method::GET, &wait, Some(&bob), None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["reply"],
        Value::Null,
        "mallory's message is no answer"
    );
    let (_, inbox, _) = bus
        .call(Method::GET, "/api/v1/messages/bob", Some(&bob), None)
        .await;
    let senders: Vec<&str> = inbox
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["sender"].as_str().unwrap())
        .collect();
    assert_eq!(senders, ["mallory"], "it is an ordinary message: {inbox}");
}
