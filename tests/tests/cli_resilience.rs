//! Black-box tests of the client commands when the wire misbehaves: a send whose answer is
//! lost is retried with its idempotency key and stored once; a send nobody answers is
//! "outcome unknown", not "cannot reach"; `wait` rides out a server restart; and each outcome
//! has its own exit code.

mod cli_support;

use std::time::Duration;

use cli_support::fake_server::{AnswerLosingProxy, SilentServer};
use cli_support::{wait, Bus};
use serde_json::Value;
use switchboard_tests::redis_server::{RedisMode, RedisServer};

/// Exit codes documented in `--help` and docs/agents.md.
const EXIT_USAGE: i32 = 2;
const EXIT_TIMEOUT: i32 = 3;
const EXIT_UNREACHABLE: i32 = 4;
const EXIT_OUTCOME_UNKNOWN: i32 = 5;

/// `agent`'s pending messages, as JSON (leased by the reading: read them once per test).
async fn pending(bus: &Bus, agent: &str) -> Vec<Value> {
    let run = bus
        .run(&["inbox", "--agent", agent, "--json", "--limit", "50"])
        .await;
    run.ok();
    run.json().as_array().expect("an array").clone()
}

/// Sending twice with the same `--idempotency-key` stores one message and answers its id both
/// times (the second marked deduplicated).
#[tokio::test]
async fn a_send_repeated_with_the_same_idempotency_key_is_stored_once() {
    let bus = Bus::start(&["bob"]).await;
    let send = ["send", "bob", "deploy now", "--agent", "alice"];
    let keyed = [&send[..], &["--idempotency-key", "deploy-42", "--json"]].concat();
    let first = bus.run(&keyed).await;
    first.ok();
    let second = bus.run(&keyed).await;
    second.ok();
    assert_eq!(first.json()["message_id"], second.json()["message_id"]);
    assert_eq!(second.json()["deduplicated"], true);
    assert_eq!(pending(&bus, "bob").await.len(), 1);
}

/// An idempotency key belongs to its sender: bob's send with the key alice used is a new
/// message, not a repeat of hers.
#[tokio::test]
async fn another_senders_send_with_the_same_idempotency_key_is_a_new_message() {
    let bus = Bus::start(&["carol"]).await;
    let send = |sender: &'static str, content: &'static str| {
        [
            "send",
            "carol",
            content,
            "--agent",
            sender,
            "--idempotency-key",
            "k1",
            "--json",
        ]
    };
    let alices = bus.run(&send("alice", "one")).await;
    alices.ok();
    let bobs = bus.run(&send("bob", "two")).await;
    bobs.ok();
    assert_ne!(alices.json()["message_id"], bobs.json()["message_id"]);
    assert_eq!(bobs.json()["deduplicated"], false);
    let contents: Vec<Value> = pending(&bus, "carol")
        .await
        .iter()
        .map(|message| message["content"].clone())
        .collect();
    assert_eq!(contents, ["one", "two"]);
}

/// The same sender reusing a key within the window for other content is told so (409, exit 1)
/// instead of being answered with the first message's id as if the second was sent.
#[tokio::test]
async fn a_key_reused_by_its_sender_for_other_content_is_a_conflict() {
    let bus = Bus::start(&["carol"]).await;
    let keyed = ["--agent", "alice", "--idempotency-key", "k1"];
    let first = bus
        .run(&[&["send", "carol", "one"][..], &keyed].concat())
        .await;
    first.ok();
    let other = bus
        .run(&[&["send", "carol", "two"][..], &keyed].concat())
        .await;
    assert_eq!(other.code, 1, "{other:?}");
    assert!(
        other
            .stderr
            .contains("idempotency key k1 was used for a different message"),
        "{}",
        other.stderr
    );
    assert!(other.stderr.contains("use a new key"), "{}", other.stderr);
    assert_eq!(pending(&bus, "carol").await.len(), 1);
}

/// Longest wait for the server to notice that Redis went away: the owner-lease renewer looks
/// every few seconds; this only bounds a failing test.
const STORAGE_NOTICED_WITHIN: Duration = Duration::from_secs(15);

/// While storage is known down the server refuses a send up front: the client says it was
/// refused and nothing was stored (exit 4), not "outcome unknown" (exit 5).
#[tokio::test]
async fn a_send_refused_because_storage_is_down_says_nothing_was_stored() {
    let mut redis = RedisServer::start(RedisMode::Aof { fsync: "always" });
    let bus = Bus::start_on(&format!("{}/0", redis.url()), &["a1"], &[]).await;
    redis.kill();
    let started = std::time::Instant::now();
    while bus.get("/health").await.0 != 503 {
        assert!(
            started.elapsed() < STORAGE_NOTICED_WITHIN,
            "/health did not turn 503"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = bus.run(&["send", "a1", "hi", "--agent", "a1"]).await;
    assert_eq!(run.code, EXIT_UNREACHABLE, "{run:?}");
    assert!(
        run.stderr
            .contains("switchboard refused the message, nothing was stored: storage unavailable"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was stored"), "{}", run.stderr);
    assert!(!run.stderr.contains("outcome unknown"), "{}", run.stderr);
}

/// The server stores a send but its answer is lost on the way back: the client tries again
/// with the same idempotency key, gets the first message's id, and bob has one message.
#[tokio::test]
async fn a_send_whose_answer_was_lost_is_retried_and_stored_once() {
    let bus = Bus::start(&["bob"]).await;
    let proxy = AnswerLosingProxy::start(bus.server.address()).await;
    let run = bus
        .run(&[
            "send",
            "bob",
            "only once",
            "--agent",
            "alice",
            "--json",
            "--server",
            &proxy.url,
        ])
        .await;
    run.ok();
    let sent = run.json();
    assert_eq!(sent["deduplicated"], true, "the retry found the first copy");
    let messages = pending(&bus, "bob").await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["id"], sent["message_id"]);
}

/// A server that takes the request and never answers: the send is retried with one key, then
/// reported as "outcome unknown" (exit 5) naming that key, never as "cannot reach".
#[tokio::test]
async fn a_send_that_gets_no_answer_is_outcome_unknown_not_unreachable() {
    let bus = Bus::start(&[]).await;
    let silent = SilentServer::start().await;
    let run = bus
        .run(&[
            "send",
            "bob",
            "hello?",
            "--agent",
            "alice",
            "--server",
            &silent.url,
            "--request-timeout",
            "1",
        ])
        .await;
    assert_eq!(run.code, EXIT_OUTCOME_UNKNOWN, "{run:?}");
    assert!(run.stderr.contains("outcome unknown"), "{}", run.stderr);
    assert!(!run.stderr.contains("cannot reach"), "{}", run.stderr);
    let keys: Vec<String> = silent
        .bodies()
        .iter()
        .map(|body| {
            let body: Value = serde_json::from_str(body).expect("a JSON body");
            body["dedup_key"].as_str().expect("a dedup key").to_string()
        })
        .collect();
    assert!(keys.len() > 1, "retried: {keys:?}");
    assert!(keys.iter().all(|key| *key == keys[0]), "{keys:?}");
    assert!(
        run.stderr
            .contains(&format!("--idempotency-key {}", keys[0])),
        "{}",
        run.stderr
    );
}

/// Nothing listens at the URL: "cannot reach" with its own exit code, distinct from a usage
/// error and from a timeout.
#[tokio::test]
async fn exit_codes_tell_usage_timeout_and_unreachable_apart() {
    let bus = Bus::start(&["bob"]).await;
    let usage = bus.run(&["wait", "--agent", "bob", "--no-such-flag"]).await;
    assert_eq!(usage.code, EXIT_USAGE, "{usage:?}");
    let timed_out = bus.run(&["wait", "--agent", "bob", "--timeout", "1"]).await;
    assert_eq!(timed_out.code, EXIT_TIMEOUT, "{timed_out:?}");
    let unreachable = bus
        .run(&["send", "bob", "hi", "--server", "http://127.0.0.1:1"])
        .await;
    assert_eq!(unreachable.code, EXIT_UNREACHABLE, "{unreachable:?}");
    assert!(
        unreachable.stderr.contains("cannot reach"),
        "{}",
        unreachable.stderr
    );
}

/// `--help`, top-level and of `wait`, lists the exit codes.
#[tokio::test]
async fn help_lists_the_exit_codes() {
    let bus = Bus::start(&[]).await;
    for args in [&["--help"][..], &["wait", "--help"]] {
        let help = bus.run(args).await;
        help.ok();
        for line in [
            "Exit codes",
            "3  timed out",
            "4  cannot reach",
            "5  outcome unknown",
        ] {
            assert!(help.stdout.contains(line), "{args:?}: {}", help.stdout);
        }
    }
}

/// The server restarts (same storage, same port) while `wait` long-polls: the wait reconnects
/// and returns the message sent after the restart, exit 0 — so a `while msg=$(switchboard
/// wait)` loop keeps going.
#[tokio::test]
async fn wait_rides_out_a_server_restart() {
    let data = tempfile::tempdir().expect("a temporary directory");
    let storage = format!("redb:{}", data.path().join("bus.redb").display());
    let mut bus = Bus::start_on(&storage, &["bob"], &[]).await;
    let registered = last_seen(&bus, "bob").await;
    let waiting = bus.spawn(&["wait", "--agent", "bob", "--timeout", "120", "--json"]);
    // The wait's long poll has reached the server when bob's last sign of life moves.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while last_seen(&bus, "bob").await == registered {
        assert!(
            std::time::Instant::now() < deadline,
            "the wait never polled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bus.server.restart_on_same_port();
    let id = bus.send("alice", "bob", "after the restart").await;
    let run = wait(waiting).await;
    run.ok();
    assert_eq!(run.json()["id"], id.as_str());
    assert_eq!(run.json()["content"], "after the restart");
    assert!(run.stderr.contains("reconnected"), "{}", run.stderr);
}

async fn last_seen(bus: &Bus, agent: &str) -> Value {
    let (status, body) = bus.get(&format!("/api/v1/agents/{agent}")).await;
    assert_eq!(status, 200, "{body}");
    body["last_seen"].clone()
}
