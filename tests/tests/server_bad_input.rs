//! Every class of bad input gets a 4xx with a JSON `{"detail": ...}` naming the problem, never
//! a 500 or a dropped connection: malformed JSON, missing or empty fields, unknown priority,
//! bad query values, oversize bodies (413), unknown agents, messages and routes (404).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard_tests::server_harness::ServerProcess;

async fn started() -> (ServerProcess, reqwest::Client) {
    let server = ServerProcess::start("memory:", &[]);
    let http = reqwest::Client::new();
    let response = http
        .post(server.url("/api/v1/agents/register"))
        .json(&json!({ "name": "alice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    (server, http)
}

/// Sends a raw body; returns the status and the `detail` text (panicking if it is absent).
async fn raw(
    http: &reqwest::Client,
    method: &str,
    url: String,
    body: &str,
) -> (StatusCode, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let response = http
        .request(method, url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {text:?}"));
    let detail = body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("status {status}: no detail in {body}"))
        .to_string();
    (status, detail)
}

fn assert_client_error(
    case: &str,
    status: StatusCode,
    detail: &str,
    expected: StatusCode,
    mentions: &str,
) {
    assert_eq!(status, expected, "{case}: {detail}");
    assert!(
        detail.to_lowercase().contains(&mentions.to_lowercase()),
        "{case}: detail {detail:?} does not mention {mentions:?}"
    );
}

#[tokio::test]
async fn malformed_json_is_a_422_naming_the_parse_error() {
    let (server, http) = started().await;
    let url = server.url("/api/v1/messages");
    let (status, detail) = raw(&http, "POST", url.clone(), r#"{"recipient": "alice""#).await;
    assert_client_error(
        "truncated",
        status,
        &detail,
        StatusCode::UNPROCESSABLE_ENTITY,
        "EOF",
    );
    let (status, detail) = raw(&http, "POST", url, "not json").await;
    assert_client_error(
        "garbage",
        status,
        &detail,
        StatusCode::UNPROCESSABLE_ENTITY,
        "expected",
    );
}

#[tokio::test]
async fn missing_and_empty_fields_are_422_naming_the_field() {
    let (server, http) = started().await;
    let url = server.url("/api/v1/messages");
    let cases = [
        (r#"{"content": "hi"}"#, "recipient"),
        (r#"{"recipient": "alice"}"#, "content"),
        (
            r#"{"recipient": "alice", "content": "   "}"#,
            "content must not be empty",
        ),
        (
            r#"{"recipient": "", "content": "hi"}"#,
            "recipient must not be empty",
        ),
        (
            r#"{"recipient": "alice", "content": "hi", "expires_in_hours": -1}"#,
            "expires_in_hours",
        ),
        (
            r#"{"recipient": "alice", "content": "hi", "max_attempts": 0}"#,
            "max_attempts",
        ),
        (r#"{"recipient": "alice", "content": 5}"#, "content"),
    ];
    for (body, mentions) in cases {
        let (status, detail) = raw(&http, "POST", url.clone(), body).await;
        assert_client_error(
            body,
            status,
            &detail,
            StatusCode::UNPROCESSABLE_ENTITY,
            mentions,
        );
    }
    let register = server.url("/api/v1/agents/register");
    let (status, detail) = raw(&http, "POST", register.clone(), r#"{"name": ""}"#).await;
    assert_client_error(
        "empty name",
        status,
        &detail,
        StatusCode::UNPROCESSABLE_ENTITY,
        "name",
    );
    let (status, detail) = raw(&http, "POST", register, r#"{"capabilities": []}"#).await;
    assert_client_error(
        "no name",
        status,
        &detail,
        StatusCode::UNPROCESSABLE_ENTITY,
        "name",
    );
}

#[tokio::test]
async fn unknown_priority_is_a_422_listing_the_valid_ones() {
    let (server, http) = started().await;
    let body = r#"{"recipient": "alice", "content": "hi", "priority": "urgent"}"#;
    let (status, detail) = raw(&http, "POST", server.url("/api/v1/messages"), body).await;
    assert_client_error(
        "priority",
        status,
        &detail,
        StatusCode::UNPROCESSABLE_ENTITY,
        "critical",
    );
}

#[tokio::test]
async fn bad_query_values_are_422() {
    let (server, http) = started().await;
    let cases = [
        ("/api/v1/agents?status=sleeping", "status"),
        ("/api/v1/messages/alice?limit=lots", "limit"),
        ("/api/v1/messages/alice?limit=0", "limit"),
        ("/api/v1/messages/alice?wait_seconds=999", "wait_seconds"),
        ("/api/v1/messages/alice?lease_seconds=0", "lease_seconds"),
    ];
    for (path, mentions) in cases {
        let (status, detail) = raw(&http, "GET", server.url(path), "").await;
        assert_client_error(
            path,
            status,
            &detail,
            StatusCode::UNPROCESSABLE_ENTITY,
            mentions,
        );
    }
    let (status, detail) = raw(&http, "POST", server.url("/api/v1/messages/x/ack"), "").await;
    assert_client_error(
        "ack without agent_id",
        status,
        &detail,
        StatusCode::UNPROCESSABLE_ENTITY,
        "agent_id",
    );
}

#[tokio::test]
async fn oversize_body_is_a_413_with_a_json_detail() {
    let (server, http) = started().await;
    let content = "a".repeat(2 * 1024 * 1024);
    let body = json!({ "recipient": "alice", "content": content }).to_string();
    let (status, detail) = raw(&http, "POST", server.url("/api/v1/messages"), &body).await;
    assert_client_error(
        "2 MiB",
        status,
        &detail,
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than",
    );
}

/// A request declaring a body over 1 MiB is answered 413 at once, before any body is sent:
/// no `100 Continue` invites the body, and the client is not held until the request times
/// out (raw TCP, so that nothing between the test and the server handles `Expect`).
#[tokio::test]
async fn declared_oversize_body_is_refused_at_once_without_100_continue() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server, _) = started().await;
    let mut socket = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/messages HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        server.address(),
        2 * 1024 * 1024
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // The server closes the connection after its answer; the bound only stops a test of a
    // server that waits for the body (it used to wait for the 30 s request timeout).
    let read = tokio::time::timeout(Duration::from_secs(15), socket.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(
        read.is_ok(),
        "no complete answer within 15 s; so far: {answer:?}"
    );
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "413 first, no 100 Continue: {answer:?}"
    );
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON: {answer:?}"));
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("larger than"), "{body}");
}

#[tokio::test]
async fn unknown_agents_messages_and_routes_are_404() {
    let (server, http) = started().await;
    let cases = [
        (
            "POST",
            "/api/v1/messages",
            r#"{"recipient": "nobody", "content": "hi"}"#,
            "Agent not found: nobody",
        ),
        ("GET", "/api/v1/messages/nobody", "", "Agent not found"),
        ("GET", "/api/v1/agents/nobody", "", "Agent not found"),
        (
            "POST",
            "/api/v1/agents/nobody/heartbeat",
            "",
            "Agent not found",
        ),
        ("DELETE", "/api/v1/agents/nobody", "", "Agent not found"),
        (
            "POST",
            "/api/v1/messages/0190a0a0-0000-7000-8000-000000000000/ack?agent_id=alice",
            "",
            "Message not found",
        ),
        (
            "POST",
            "/api/v1/messages/not-an-id/ack?agent_id=alice",
            "",
            "Message not found",
        ),
        (
            "POST",
            "/api/v1/messages/not-an-id/ack?agent_id=nobody",
            "",
            "Agent not found",
        ),
        ("GET", "/api/v1/queues/nothing-here", "", "no queue"),
        ("GET", "/api/v1/no/such/route", "", "no route"),
    ];
    for (method, path, body, mentions) in cases {
        let (status, detail) = raw(&http, method, server.url(path), body).await;
        assert_client_error(path, status, &detail, StatusCode::NOT_FOUND, mentions);
    }
}

#[tokio::test]
async fn queue_api_bad_input_is_4xx() {
    let (server, http) = started().await;
    let cases = [
        (
            "POST",
            "/api/v1/queues/jobs/messages",
            r#"[]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "no message",
        ),
        (
            "POST",
            "/api/v1/queues/jobs/messages",
            r#"{"priority": 1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "payload",
        ),
        (
            "POST",
            "/api/v1/queues/jobs/messages",
            r#"{"payload": "x", "priority": 300}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "priority",
        ),
        (
            "POST",
            "/api/v1/queues/bad%20name/messages",
            r#"{"payload": "x"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "queue name",
        ),
        (
            "POST",
            "/api/v1/queues/jobs/ack",
            r#"{"id": "x"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "lease_token",
        ),
        (
            "POST",
            "/api/v1/queues/jobs/ack",
            r#"{"id": "nope", "lease_token": "00"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "message id",
        ),
        (
            "POST",
            "/api/v1/queues/jobs/lease",
            r#"{"max": 0}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "max",
        ),
        (
            "PUT",
            "/api/v1/queues/jobs",
            r#"{"max_attempts": 0}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "max_attempts",
        ),
        (
            "POST",
            "/api/v1/queues/_registry/messages",
            r#"{"payload": "x"}"#,
            StatusCode::FORBIDDEN,
            "reserved",
        ),
    ];
    for (method, path, body, expected, mentions) in cases {
        let (status, detail) = raw(&http, method, server.url(path), body).await;
        assert_client_error(
            &format!("{method} {path} {body}"),
            status,
            &detail,
            expected,
            mentions,
        );
    }
}

/// A sender over its token bucket gets 429 with Retry-After.
#[tokio::test]
async fn sender_over_its_rate_limit_gets_429_with_retry_after() {
    let server = ServerProcess::start("memory:", &["--rate-per-sender", "1", "--rate-burst", "2"]);
    let http = reqwest::Client::new();
    http.post(server.url("/api/v1/agents/register"))
        .json(&json!({ "name": "alice" }))
        .send()
        .await
        .unwrap();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let response = http
            .post(server.url("/api/v1/messages?sender=chatty"))
            .json(&json!({ "recipient": "alice", "content": "hi" }))
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = response.headers().get("retry-after").cloned();
            let body: Value = response.json().await.unwrap();
            assert!(body["detail"].as_str().unwrap().contains("chatty"));
        }
    }
    assert_eq!(&statuses[..2], [StatusCode::OK, StatusCode::OK]);
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some(), "429 without Retry-After");
    let other = http
        .post(server.url("/api/v1/messages?sender=quiet"))
        .json(&json!({ "recipient": "alice", "content": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK, "buckets are per sender");
}
