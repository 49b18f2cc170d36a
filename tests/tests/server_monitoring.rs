//! Black-box tests of monitoring against the real `switchboard` binary (memory storage):
//! `/metrics` counters move with traffic, the detailed health score, alerts with start and
//! resolve times, the history export, `switchboard stats`, and the dashboard's page and feed.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard_tests::server_harness::{run_to_end, ServerProcess};

/// Longest wait for something the once-a-second sampler does.
const SAMPLER_WAIT: Duration = Duration::from_secs(10);

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

    async fn register(&self, name: &str) {
        let (status, body) = self
            .post("/api/v1/agents/register", json!({ "name": name }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn send(&self, to: &str, content: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/messages?sender=tester",
                json!({ "recipient": to, "content": content }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["message_id"].as_str().unwrap().to_string()
    }

    /// The `/metrics` text.
    async fn metrics(&self) -> String {
        let response = self
            .http
            .get(self.server.url("/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        response.text().await.unwrap()
    }

    /// Polls `path` until `done` holds for its body; panics with the last body after `limit`.
    async fn wait_for(&self, path: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let (status, body) = self.get(path).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if done(&body) {
                return body;
            }
            assert!(
                started.elapsed() < limit,
                "{path} did not get there in {limit:?}; last body: {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The value of the series `name` (exact name with labels) in an exposition, if present.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            (series == name).then(|| value.parse().ok())?
        })
}

/// Sends, leases and acks: the message counters and the latency histogram count each step.
#[tokio::test]
async fn metrics_counters_move_after_traffic() {
    let api = Api::start();
    let before = api.metrics().await;
    for counter in [
        "switchboard_messages_sent_total",
        "switchboard_messages_delivered_total",
        "switchboard_messages_acked_total",
    ] {
        assert!(
            before.contains(&format!("# TYPE {counter} counter")),
            "{counter} is not declared a counter:\n{before}"
        );
        assert_eq!(metric(&before, counter), Some(0.0), "{counter}");
    }
    assert!(before.contains("# TYPE switchboard_message_ack_latency_seconds histogram"));

    api.register("alice").await;
    for n in 0..3 {
        api.send("alice", &format!("job {n}")).await;
    }
    let (status, leased) = api.get("/api/v1/messages/alice?limit=10").await;
    assert_eq!(status, StatusCode::OK);
    for message in leased.as_array().unwrap() {
        let id = message["id"].as_str().unwrap();
        let (status, _) = api
            .post(
                &format!("/api/v1/messages/{id}/ack?agent_id=alice"),
                json!(null),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    let after = api.metrics().await;
    assert_eq!(metric(&after, "switchboard_messages_sent_total"), Some(3.0));
    assert_eq!(
        metric(&after, "switchboard_messages_delivered_total"),
        Some(3.0)
    );
    assert_eq!(
        metric(&after, "switchboard_messages_first_delivered_total"),
        Some(3.0)
    );
    assert_eq!(
        metric(&after, "switchboard_messages_acked_total"),
        Some(3.0)
    );
    assert_eq!(
        metric(&after, "switchboard_message_ack_latency_seconds_count"),
        Some(3.0)
    );
    assert_eq!(
        metric(&after, "switchboard_send_duration_seconds_count"),
        Some(3.0)
    );
    assert_eq!(metric(&after, "switchboard_agents_registered"), Some(1.0));
    assert!(metric(&after, "switchboard_storage_commits_total").unwrap() > 0.0);
    assert!(metric(&after, "process_resident_memory_bytes").unwrap() > 0.0);
}

/// A send to nobody is a client error and a routing failure; scraping is not counted.
#[tokio::test]
async fn rejected_requests_and_routing_failures_are_counted() {
    let api = Api::start();
    let errors = r#"switchboard_http_requests_total{outcome="client_error"}"#;
    assert_eq!(metric(&api.metrics().await, errors), Some(0.0));
    let (status, _) = api
        .post(
            "/api/v1/messages",
            json!({ "recipient": "nobody", "content": "hi" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let text = api.metrics().await;
    assert_eq!(metric(&text, errors), Some(1.0));
    assert_eq!(
        metric(&text, "switchboard_routing_failures_total"),
        Some(1.0)
    );
    let ok = r#"switchboard_http_requests_total{outcome="success"}"#;
    assert_eq!(metric(&text, ok), Some(0.0), "scrapes are not counted");
}

/// No agents registered means none unavailable: only the original's 5 points for fewer than
/// three agents are lost. Three available agents make a perfect score.
#[tokio::test]
async fn detailed_health_scores_the_four_components() {
    let api = Api::start();
    let (status, empty) = api.get("/api/v1/health/detailed").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["score"], 95.0, "{empty}");
    assert_eq!(empty["status"], "healthy");
    assert_eq!(empty["components"]["agents"]["score"], 20.0);
    assert_eq!(empty["components"]["queue"]["max"], 25.0);
    assert_eq!(
        empty["issues"],
        json!(["0 agents registered, fewer than 3"])
    );

    for name in ["alice", "bob", "carol"] {
        api.register(name).await;
    }
    let (_, full) = api.get("/api/v1/health/detailed").await;
    assert_eq!(full["score"], 100.0, "{full}");
    assert_eq!(full["status"], "healthy");
    assert!(full["issues"].as_array().unwrap().is_empty());
}

/// Waits until the sampler has judged the alerts on at least `seconds` of samples.
async fn wait_for_samples(api: &Api, seconds: f64) {
    api.wait_for("/api/v1/metrics/current", SAMPLER_WAIT, |body| {
        body["errors"]["window_seconds"].as_f64().unwrap() >= seconds
    })
    .await;
}

/// A server just started, with no agents and no traffic, has nothing to alert about: no
/// alert, a healthy score, and an availability of 1 (none of no agents is unavailable).
#[tokio::test]
async fn a_fresh_idle_server_has_no_active_alerts() {
    let api = Api::start();
    wait_for_samples(&api, 6.0).await;
    let (_, alerts) = api.get("/api/v1/alerts").await;
    assert_eq!(alerts["active"], json!([]), "{alerts}");
    assert_eq!(alerts["resolved"], json!([]), "{alerts}");
    let (_, health) = api.get("/api/v1/health/detailed").await;
    assert_eq!(health["status"], "healthy", "{health}");
    let text = api.metrics().await;
    assert_eq!(
        metric(&text, "switchboard_agent_availability_ratio"),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, r#"switchboard_alerts_active{severity="warning"}"#),
        Some(0.0)
    );
}

/// Agents restored from storage at a restart are on their way back, not unavailable: the
/// restart raises no availability alert.
#[tokio::test]
async fn a_restart_with_registered_agents_raises_no_availability_alert() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("switchboard.redb");
    let mut api = Api {
        server: ServerProcess::start(&format!("redb:{}", file.display()), &[]),
        http: reqwest::Client::new(),
    };
    api.register("alice").await;
    api.server.restart();
    wait_for_samples(&api, 3.0).await;
    let (_, alerts) = api.get("/api/v1/alerts").await;
    assert_eq!(alerts["active"], json!([]), "{alerts}");
    let (_, current) = api.get("/api/v1/metrics/current").await;
    assert_eq!(current["agents"]["returning"], 1, "{current}");
    assert_eq!(current["agents"]["availability"], 1.0, "{current}");
}

/// Twenty dead letters cost the health score and raise a warning that names them.
#[tokio::test]
async fn dead_letters_lower_the_health_score_and_raise_an_alert() {
    let api = Api::start();
    api.register("alice").await;
    for n in 0..20 {
        let (status, body) = api
            .post(
                "/api/v1/messages?sender=tester",
                json!({ "recipient": "alice", "content": format!("job {n}"), "max_attempts": 1 }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, leased) = api.get("/api/v1/messages/alice?limit=20").await;
    for message in leased.as_array().unwrap() {
        let id = message["id"].as_str().unwrap();
        let (status, body) = api
            .post(
                &format!("/api/v1/messages/{id}/nack?agent_id=alice"),
                json!(null),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, health) = api.get("/api/v1/health/detailed").await;
    // One agent: 20 of 25 agent points; 20 dead letters: 15 of the queue's 25.
    assert_eq!(health["score"], 80.0, "{health}");
    assert!(
        health["issues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|issue| issue.as_str().unwrap().starts_with("20 dead letters")),
        "{health}"
    );
    let dead_letter_alert = |body: &Value| {
        body["active"]
            .as_array()
            .unwrap()
            .iter()
            .find(|alert| alert["rule"] == "dead_letters")
            .cloned()
    };
    let alerts = api
        .wait_for("/api/v1/alerts", SAMPLER_WAIT, |body| {
            dead_letter_alert(body).is_some()
        })
        .await;
    // Dead letters are failures of the error rate too, which may alert on its own.
    let alert = dead_letter_alert(&alerts).unwrap();
    assert_eq!(alert["severity"], "warning");
    assert_eq!(alert["value"], 20.0);
}

/// Alice asks bob a question (`metadata.expects_reply`) and bob answers. Returns the
/// question's id once the answer waits in alice's reply queue.
async fn ask_and_answer(api: &Api) -> String {
    api.register("alice").await;
    api.register("bob").await;
    let (status, sent) = api
        .post(
            "/api/v1/messages?sender=alice",
            json!({ "recipient": "bob", "content": "which port?",
                    "metadata": { "expects_reply": true } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    let question = sent["message_id"].as_str().unwrap().to_string();
    let (_, leased) = api.get("/api/v1/messages/bob?limit=1").await;
    assert_eq!(leased[0]["id"], question.as_str());
    let (status, _) = api
        .post(
            &format!("/api/v1/messages/{question}/ack?agent_id=bob"),
            json!(null),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, reply) = api
        .post(
            "/api/v1/messages?sender=bob",
            json!({ "recipient": "alice", "content": "8080", "reply_to": question }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    question
}

/// An ask and its answer are two acks: the question acked by bob, the answer taken by alice.
#[tokio::test]
async fn acked_total_counts_both_acks_of_an_ask_and_its_reply() {
    let api = Api::start();
    let question = ask_and_answer(&api).await;
    let (status, answer) = api
        .get(&format!(
            "/api/v1/messages/{question}/reply?agent_id=alice&wait_seconds=5"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["reply"]["content"], "8080", "{answer}");
    let text = api.metrics().await;
    assert_eq!(metric(&text, "switchboard_messages_acked_total"), Some(2.0));
    assert_eq!(
        metric(&text, "switchboard_message_ack_latency_seconds_count"),
        Some(2.0)
    );
}

/// A reply waiting in the asker's reply queue is not one of the user's queues; its message
/// still counts in the depths.
#[tokio::test]
async fn reply_queues_are_not_listed_among_the_users_queues() {
    let api = Api::start();
    ask_and_answer(&api).await;
    let (_, current) = api.get("/api/v1/metrics/current").await;
    let queues = &current["queues"];
    assert_eq!(queues["other"], json!([]), "{queues}");
    assert_eq!(queues["ready"], 1, "the waiting reply: {queues}");
}

/// The encoder ends every HELP text with a period: the texts must not bring their own.
#[tokio::test]
async fn no_help_text_ends_in_two_periods() {
    let api = Api::start();
    let text = api.metrics().await;
    let helps: Vec<&str> = text.lines().filter(|l| l.starts_with("# HELP ")).collect();
    assert!(helps.len() > 20, "{text}");
    for help in helps {
        assert!(
            help.ends_with('.') && !help.ends_with(".."),
            "{help:?} should end in exactly one period"
        );
    }
}

/// A gauge whose value is a fraction (its HELP reads "a / b") is named `_ratio` and stays
/// within 0..1; there are no `_ratios` or percent gauges.
#[tokio::test]
async fn every_ratio_gauge_ends_in_ratio() {
    let api = Api::start();
    api.register("alice").await;
    let text = api.metrics().await;
    let mut ratios = Vec::new();
    for help in text.lines().filter_map(|l| l.strip_prefix("# HELP ")) {
        let (name, description) = help.split_once(' ').unwrap();
        let is_gauge = text.contains(&format!("# TYPE {name} gauge\n"));
        let is_fraction = description.contains(" / ") || description.contains("percent");
        assert!(
            !name.ends_with("_ratios") && !name.contains("percent"),
            "{name}"
        );
        if is_gauge && is_fraction {
            assert!(name.ends_with("_ratio"), "{name}: {description}");
            ratios.push(name.to_string());
        }
        if name.ends_with("_ratio") {
            let value = metric(&text, name).unwrap();
            assert!((0.0..=1.0).contains(&value), "{name} = {value}");
        }
    }
    assert_eq!(
        ratios,
        [
            "switchboard_error_ratio",
            "switchboard_agent_availability_ratio"
        ]
    );
}

/// An agent going offline starts an availability alert; its heartbeat resolves it, and both
/// times are reported.
#[tokio::test]
async fn availability_alert_starts_and_resolves_with_times() {
    let api = Api::start();
    api.register("alice").await;
    let (socket, _) = tokio_tungstenite::connect_async(api.server.ws_url("/ws/alice"))
        .await
        .expect("socket opens");
    drop(socket); // closing the socket marks alice offline

    let rule = "agent_availability_low";
    let active = api
        .wait_for("/api/v1/alerts", SAMPLER_WAIT, |body| {
            body["active"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["rule"] == rule)
        })
        .await;
    let alert = &active["active"][0];
    assert_eq!(alert["severity"], "warning");
    assert!(alert["started_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(alert["resolved_at"], Value::Null);

    let (status, _) = api
        .post("/api/v1/agents/alice/heartbeat", json!(null))
        .await;
    assert_eq!(status, StatusCode::OK);
    let resolved = api
        .wait_for("/api/v1/alerts", SAMPLER_WAIT, |body| {
            body["resolved"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["rule"] == rule)
        })
        .await;
    assert!(
        resolved["active"].as_array().unwrap().is_empty(),
        "{resolved}"
    );
    let alert = &resolved["resolved"][0];
    assert_eq!(alert["started_at"], active["active"][0]["started_at"]);
    assert!(alert["resolved_at"].as_str().unwrap() >= alert["started_at"].as_str().unwrap());
}

/// The export holds the sampled history and refuses windows it does not keep.
#[tokio::test]
async fn metrics_export_returns_history_and_refuses_bad_windows() {
    let api = Api::start();
    let export = api
        .wait_for("/api/v1/metrics/export?hours=1", SAMPLER_WAIT, |body| {
            !body["points"].as_array().unwrap().is_empty()
        })
        .await;
    assert_eq!(export["hours"], 1);
    assert_eq!(export["resolution_seconds"], 10);
    let point = &export["points"][0];
    for field in [
        "timestamp",
        "score",
        "sent_per_second",
        "ack_latency_p99_seconds",
        "queue_size",
    ] {
        assert!(!point[field].is_null(), "{field} missing from {point}");
    }
    for bad in ["hours=0", "hours=25", "hours=soon"] {
        let (status, body) = api.get(&format!("/api/v1/metrics/export?{bad}")).await;
        assert!(status.is_client_error(), "{bad}: {status} {body}");
        assert!(body["detail"].is_string(), "{bad}: {body}");
    }
}

/// `switchboard stats --export` prints the running server's history as JSON; without
/// `--export` it prints a summary.
#[tokio::test]
async fn stats_command_exports_the_running_servers_history() {
    let api = Api::start();
    let base = api.server.base();
    api.wait_for("/api/v1/metrics/export?hours=1", SAMPLER_WAIT, |body| {
        !body["points"].as_array().unwrap().is_empty()
    })
    .await;
    let args = ["stats", "--export", "--hours", "1", "--server", &base];
    let (status, stdout, stderr) = run_to_end(&args, Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    let export: Value = serde_json::from_str(&stdout).expect("the export is JSON");
    assert_eq!(export["hours"], 1);
    assert!(!export["points"].as_array().unwrap().is_empty());

    let (status, stdout, stderr) =
        run_to_end(&["stats", "--server", &base], Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("score"), "{stdout}");
}

/// With no server at the address, `switchboard stats` fails with advice, not a backtrace.
#[test]
fn stats_command_says_clearly_when_no_server_runs() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let (status, _, stderr) = run_to_end(
        &["stats", "--export", "--server", &url],
        Duration::from_secs(30),
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
    assert!(stderr.contains("switchboard serve"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The dashboard is one HTML page at `/` and `/dashboard`.
#[tokio::test]
async fn dashboard_is_served_at_root_and_dashboard() {
    let api = Api::start();
    for path in ["/", "/dashboard"] {
        let response = api.http.get(api.server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        let page = response.text().await.unwrap();
        assert!(page.contains("<canvas") && page.contains("/api/v1/metrics/current"));
    }
}

/// The live feed sends a snapshot at once and another after the next sample.
#[tokio::test]
async fn event_stream_sends_snapshots_every_second() {
    let api = Api::start();
    let mut response = api
        .http
        .get(api.server.url("/api/v1/monitor/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let started = Instant::now();
    let mut text = String::new();
    while text.matches("event: snapshot").count() < 2 {
        assert!(started.elapsed() < SAMPLER_WAIT, "only got: {text}");
        let chunk = tokio::time::timeout(SAMPLER_WAIT, response.chunk())
            .await
            .expect("the stream sends within the wait")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let data = text
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .expect("a data line");
    let snapshot: Value = serde_json::from_str(data).expect("snapshots are JSON");
    assert!(snapshot["health"]["score"].is_number(), "{snapshot}");
}

/// The OpenAPI document lists the monitoring endpoints.
#[tokio::test]
async fn openapi_lists_the_monitoring_endpoints() {
    let api = Api::start();
    let (status, doc) = api.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/metrics",
        "/dashboard",
        "/api/v1/health/detailed",
        "/api/v1/alerts",
        "/api/v1/metrics/export",
        "/api/v1/metrics/current",
        "/api/v1/monitor/events",
    ] {
        assert!(paths.contains_key(path), "missing {path}");
    }
}

/// An open dashboard does not hold up a graceful stop: its event stream ends on shutdown.
#[tokio::test]
async fn open_dashboard_stream_does_not_delay_shutdown() {
    let mut api = Api::start();
    let mut response = api
        .http
        .get(api.server.url("/api/v1/monitor/events"))
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().expect("a first event");
    assert!(String::from_utf8_lossy(&first).contains("event: snapshot"));
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || api.server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        started.elapsed()
    );
}
