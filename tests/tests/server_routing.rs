//! Black-box tests of routing against the real `switchboard` binary: `auto` and
//! `capability:NAME` recipients land in the right agent's inbox, messages with no online
//! candidate wait and reach the first matching agent that comes online, custom rules work and
//! survive restarts, and the numbers show in `/api/v1/stats`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard_tests::server_harness::{run_to_end, ServerProcess};

struct Api {
    server: ServerProcess,
    http: reqwest::Client,
}

impl Api {
    fn start(storage: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--no-discovery"];
        args.extend_from_slice(extra);
        Self {
            server: ServerProcess::start(storage, &args),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, self.server.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, body).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, Value::Null).await
    }

    async fn register(&self, name: &str, capabilities: &[&str]) -> String {
        let (status, body) = self
            .post(
                "/api/v1/agents/register",
                json!({ "name": name, "capabilities": capabilities }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["agent_id"].as_str().unwrap().to_string()
    }

    /// Sends and returns the send response.
    async fn send(&self, recipient: &str, content: &str) -> Value {
        self.send_with(json!({ "recipient": recipient, "content": content }))
            .await
    }

    async fn send_with(&self, body: Value) -> Value {
        let (status, reply) = self.post("/api/v1/messages?sender=lead", body).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        reply
    }

    /// Contents leased from `agent`'s inbox (long-polling `wait` seconds for the first).
    async fn inbox(&self, agent: &str, wait: u64) -> Vec<Value> {
        let (status, body) = self
            .get(&format!(
                "/api/v1/messages/{agent}?limit=100&wait_seconds={wait}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().unwrap().clone()
    }
}

fn contents(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect()
}

/// `auto` follows the original's rules: test work to the quality agent, docs to the writer,
/// and the response says which agent, rule and strategy.
#[tokio::test]
async fn auto_messages_reach_the_agent_the_content_asks_for() {
    let api = Api::start("memory:", &[]);
    api.register("tester", &["quality"]).await;
    api.register("writer", &["documentation"]).await;
    let reply = api.send("auto", "please run the integration tests").await;
    assert_eq!(reply["routed_to"], "tester");
    assert_eq!(reply["recipient"], "tester");
    assert_eq!(reply["rule"], "quality");
    assert_eq!(reply["strategy"], "round_robin");
    let reply = api.send("auto", "update the README for the new flag").await;
    assert_eq!(reply["routed_to"], "writer");
    assert_eq!(reply["rule"], "documentation");
    assert_eq!(
        contents(&api.inbox("tester", 0).await),
        ["please run the integration tests"]
    );
    let writer = api.inbox("writer", 0).await;
    assert_eq!(contents(&writer), ["update the README for the new flag"]);
    assert_eq!(writer[0]["metadata"]["routing"]["rule"], "documentation");
}

/// Urgent content goes to orchestration with its priority raised to critical.
#[tokio::test]
async fn urgent_auto_messages_are_boosted_to_critical() {
    let api = Api::start("memory:", &[]);
    api.register("lead-agent", &["orchestration"]).await;
    let reply = api.send("auto", "URGENT: the build is broken").await;
    assert_eq!(reply["rule"], "urgent");
    let messages = api.inbox("lead-agent", 0).await;
    assert_eq!(messages[0]["priority"], "critical");
}

/// `capability:NAME` takes turns among the agents with that capability, and only them.
#[tokio::test]
async fn capability_messages_take_turns_among_matching_agents() {
    let api = Api::start("memory:", &[]);
    api.register("q-one", &["quality"]).await;
    api.register("q-two", &["quality"]).await;
    api.register("docs", &["documentation"]).await;
    let mut routed = Vec::new();
    for index in 0..4 {
        let reply = api
            .send("capability:quality", &format!("job {index}"))
            .await;
        routed.push(reply["routed_to"].as_str().unwrap().to_string());
    }
    assert_eq!(routed, ["q-one", "q-two", "q-one", "q-two"]);
    assert_eq!(contents(&api.inbox("q-one", 0).await), ["job 0", "job 2"]);
    assert_eq!(contents(&api.inbox("q-two", 0).await), ["job 1", "job 3"]);
    assert!(api.inbox("docs", 0).await.is_empty());
}

/// With no agent of the capability online the message waits (it is not dropped and not sent
/// to another agent), and the first matching agent to register gets it.
#[tokio::test]
async fn a_waiting_message_is_delivered_to_the_first_matching_agent_to_register() {
    let api = Api::start("memory:", &[]);
    api.register("bystander", &["documentation"]).await;
    let reply = api.send("capability:integration", "deploy build 42").await;
    assert_eq!(reply["routed_to"], Value::Null);
    assert_eq!(reply["waiting_queue"], "capability:integration");
    assert_eq!(reply["recipient"], "capability:integration");
    let (_, stats) = api.get("/api/v1/stats").await;
    assert_eq!(stats["routing"]["waiting"]["capability:integration"], 1);
    assert!(api.inbox("bystander", 0).await.is_empty());
    api.register("deployer", &["integration"]).await;
    let delivered = api.inbox("deployer", 5).await;
    assert_eq!(contents(&delivered), ["deploy build 42"]);
    assert!(delivered[0]["metadata"]["routing"]["queued_message_id"].is_string());
    let (_, stats) = api.get("/api/v1/stats").await;
    assert_eq!(stats["routing"]["messages_handed_over"], 1);
    assert!(stats["routing"]["waiting"].as_object().unwrap().is_empty());
}

/// An agent that went offline (its socket closed) is not chosen; the message waits until the
/// agent is back (here: a heartbeat), then reaches it.
#[tokio::test]
async fn a_waiting_message_reaches_an_agent_when_its_heartbeat_brings_it_online() {
    let api = Api::start("memory:", &[]);
    api.register("tester", &["quality"]).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(api.server.ws_url("/ws/tester"))
        .await
        .unwrap();
    socket.close(None).await.unwrap();
    drop(socket);
    let offline = async {
        loop {
            let (_, agent) = api.get("/api/v1/agents/tester").await;
            if agent["status"] == "offline" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), offline)
        .await
        .expect("the closed socket makes the agent offline");
    let reply = api.send("capability:quality", "flaky test in ci").await;
    assert_eq!(reply["routed_to"], Value::Null, "{reply}");
    let (status, _) = api
        .post("/api/v1/agents/tester/heartbeat", Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        contents(&api.inbox("tester", 5).await),
        ["flaky test in ci"]
    );
}

/// Custom rules set over the API route `auto` (regex and keywords); an invalid regex is a
/// 422 naming the rule, and the rules in force do not change.
#[tokio::test]
async fn custom_rules_route_and_invalid_ones_are_refused() {
    let api = Api::start("memory:", &[]);
    api.register("triager", &["triage"]).await;
    api.register("dba", &[]).await;
    let rules = json!({ "rules": [
        { "name": "tickets", "regex": "(?i)\\bjira-\\d+", "capability": "triage" },
        { "name": "database", "keywords": ["postgres"], "agents": ["dba"], "strategy": "least_loaded" }
    ]});
    let (status, body) = api
        .call(reqwest::Method::PUT, "/api/v1/routing/rules", rules)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["source"], "api");
    let reply = api.send("auto", "please look at JIRA-1234").await;
    assert_eq!(
        (&reply["routed_to"], &reply["rule"]),
        (&json!("triager"), &json!("tickets"))
    );
    let reply = api.send("auto", "Postgres vacuum is stuck").await;
    assert_eq!(reply["routed_to"], "dba");
    assert_eq!(reply["strategy"], "least_loaded");
    let (status, body) = api
        .post(
            "/api/v1/messages",
            json!({"recipient": "auto", "content": "hello"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let bad = json!([{ "name": "broken", "regex": "(unclosed" }]);
    let (status, body) = api
        .call(reqwest::Method::PUT, "/api/v1/routing/rules", bad)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("broken") && detail.contains("regex"),
        "{detail}"
    );
    let (_, shown) = api.get("/api/v1/routing/rules").await;
    assert_eq!(shown["rules"][0]["name"], "tickets");
}

/// Rules set over the API without a rules file are kept in storage across a restart.
#[tokio::test]
async fn rules_set_over_the_api_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("redb:{}", dir.path().join("data.redb").display());
    let mut api = Api::start(&storage, &[]);
    let (_, defaults) = api.get("/api/v1/routing/rules").await;
    assert_eq!(defaults["source"], "defaults");
    assert_eq!(defaults["rules"].as_array().unwrap().len(), 7);
    let rules = json!([{ "name": "only", "keywords": ["x"], "capability": "y" }]);
    let (status, _) = api
        .call(reqwest::Method::PUT, "/api/v1/routing/rules", rules)
        .await;
    assert_eq!(status, StatusCode::OK);
    api.server.restart();
    let (_, shown) = api.get("/api/v1/routing/rules").await;
    assert_eq!(shown["source"], "api");
    assert_eq!(shown["rules"][0]["name"], "only");
    assert_eq!(shown["rules"].as_array().unwrap().len(), 1);
}

/// `--routing-rules FILE` is loaded at start, rewritten by a PUT, and read again on restart.
#[tokio::test]
async fn the_rules_file_is_loaded_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(
        &file,
        "capability_strategy: least_loaded\nrules:\n  - name: reviews\n    keywords: [review]\n    capability: quality\n",
    )
    .unwrap();
    let file_arg = file.display().to_string();
    let mut api = Api::start("memory:", &["--routing-rules", &file_arg]);
    api.register("reviewer", &["quality"]).await;
    let (_, shown) = api.get("/api/v1/routing/rules").await;
    assert_eq!(shown["source"], format!("file:{file_arg}"));
    assert_eq!(shown["capability_strategy"], "least_loaded");
    let reply = api.send("auto", "please review my change").await;
    assert_eq!(
        (&reply["rule"], &reply["routed_to"]),
        (&json!("reviews"), &json!("reviewer"))
    );
    let rules = json!([{ "name": "renamed", "keywords": ["review"], "capability": "quality" }]);
    let (status, _) = api
        .call(reqwest::Method::PUT, "/api/v1/routing/rules", rules)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(std::fs::read_to_string(&file).unwrap().contains("renamed"));
    api.server.restart();
    let (_, shown) = api.get("/api/v1/routing/rules").await;
    assert_eq!(shown["rules"][0]["name"], "renamed");
}

/// A broken rules file stops the server at start with a message naming the file.
#[test]
fn a_broken_rules_file_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.json");
    std::fs::write(&file, r#"[{"name": "bad", "regex": "(("}]"#).unwrap();
    let file_arg = file.display().to_string();
    let error =
        ServerProcess::try_start("memory:", &["--no-discovery", "--routing-rules", &file_arg])
            .expect_err("the server must refuse a broken rules file");
    assert!(
        error.contains("rules.json") && error.contains("bad"),
        "{error}"
    );
}

/// Routing numbers show in `/api/v1/stats`: routed, rule hits, failures, decision time.
#[tokio::test]
async fn routing_metrics_are_in_stats() {
    let api = Api::start("memory:", &[]);
    api.register("tester", &["quality"]).await;
    api.send("auto", "write a test").await;
    api.send("capability:quality", "another").await;
    api.send("capability:nobody", "waits").await;
    let (_, stats) = api.get("/api/v1/stats").await;
    let routing = &stats["routing"];
    assert_eq!(routing["messages_routed"], 2, "{routing}");
    assert_eq!(routing["messages_queued"], 1);
    assert_eq!(routing["rule_hits"]["quality"], 1);
    assert!(routing["average_routing_time_ms"].as_f64().unwrap() > 0.0);
}

/// Broadcast to `capability:NAME` reaches every agent with it, once each, unrouted.
#[tokio::test]
async fn broadcast_targets_a_capability() {
    let api = Api::start("memory:", &[]);
    api.register("q-one", &["quality"]).await;
    api.register("q-two", &["quality", "documentation"]).await;
    api.register("docs", &["documentation"]).await;
    let (status, reply) = api
        .post(
            "/api/v1/broadcast?sender=lead",
            json!({ "recipients": ["capability:quality", "q-two"], "content": "freeze" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["target_agent_names"], json!(["q-one", "q-two"]));
    for agent in ["q-one", "q-two"] {
        let messages = api.inbox(agent, 0).await;
        assert_eq!(contents(&messages), ["freeze"]);
        assert!(messages[0]["metadata"]["broadcast_id"].is_string());
        assert!(messages[0]["metadata"].get("routing").is_none());
    }
    assert!(api.inbox("docs", 0).await.is_empty());
}

/// `auto` and `capability:...` cannot be agent names, so recipients stay unambiguous.
#[tokio::test]
async fn routing_recipients_are_reserved_names() {
    let api = Api::start("memory:", &[]);
    for name in ["auto", "capability:quality"] {
        let (status, body) = api
            .post("/api/v1/agents/register", json!({ "name": name }))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("reserved"));
    }
}

/// `capability:NAME` that no agent has still stores the message, and the answer says it waits
/// for that capability, suggesting the close ones agents have; its status says what it waits
/// for instead of blaming a restart.
#[tokio::test]
async fn a_capability_no_agent_has_is_named_in_the_answer_and_the_status() {
    let api = Api::start("memory:", &[]);
    api.register("tester", &["quality"]).await;
    let reply = api.send("capability:qualty", "review this").await;
    assert_eq!(reply["status"], "sent");
    assert_eq!(reply["waiting_for_capability"], "qualty", "{reply}");
    let note = reply["note"].as_str().unwrap_or_default();
    assert!(note.contains("no agent has capability"), "{reply}");
    assert!(note.contains("Did you mean `quality`?"), "{reply}");
    let id = reply["message_id"].as_str().unwrap();
    let (status, receipt) = api.get(&format!("/api/v1/messages/{id}/status")).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["state"], "waiting", "{receipt}");
    assert_eq!(receipt["waiting_for"], "an agent with capability qualty");
    assert_eq!(receipt["history_complete"], true);
}

/// `switchboard send` prints the server's note under the `sent` line, and `switchboard status`
/// says what the message waits for.
#[tokio::test]
async fn the_cli_says_when_a_message_waits_for_a_capability_no_agent_has() {
    let api = Api::start("memory:", &[]);
    api.register("tester", &["quality"]).await;
    let server = api.server.base();
    let (status, out, err) = run_to_end(
        &[
            "send",
            "--server",
            &server,
            "--agent",
            "lead",
            "capability:qualty",
            "review this",
        ],
        Duration::from_secs(30),
    );
    assert!(status.success(), "{err}");
    assert!(
        out.contains("note: no agent has capability \"qualty\""),
        "{out}"
    );
    assert!(out.contains("Did you mean `quality`?"), "{out}");
    let id = out.split_whitespace().nth(1).unwrap();
    let (status, out, err) = run_to_end(
        &["status", id, "--server", &server],
        Duration::from_secs(30),
    );
    assert!(status.success(), "{err}");
    assert!(
        out.contains("waiting for an agent with capability qualty"),
        "{out}"
    );
    assert!(!out.contains("restarted"), "{out}");
}

/// `auto` matching a rule whose capability no agent has falls back to the next matching rule
/// (by default the catch-all: any online agent), and says so.
#[tokio::test]
async fn auto_falls_back_past_a_capability_no_agent_has() {
    let api = Api::start("memory:", &[]);
    api.register("generalist", &["general"]).await;
    let reply = api.send("auto", "please review the tests").await;
    assert_eq!(reply["rule"], "any-agent", "{reply}");
    assert_eq!(reply["routed_to"], "generalist");
    assert!(
        reply["note"]
            .as_str()
            .unwrap_or_default()
            .contains("fell back"),
        "{reply}"
    );
    assert_eq!(
        contents(&api.inbox("generalist", 0).await),
        ["please review the tests"]
    );
}
