//! Black-box tests of clients given several servers (`--server URL,URL`, a hot-standby pair):
//! each command finds the active server past a standby (503 "standby") or a dead URL, follows
//! the active URL a standby names, moves on when the active server is killed mid-wait, keeps a
//! send's idempotency key across the move, and, when no server is active, gives up with exit 4
//! after `--reconnect-timeout`, naming every URL.
//!
//! The real standby mode is built elsewhere; here a stand-in ([`StandbyServer`]) answers as
//! one does.

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::fake_server::{dead_url, AnswerLosingProxy, StandbyServer};
use cli_support::{finish, wait, Bus, Run};
use serde_json::Value;
use switchboard_tests::server_harness::ServerProcess;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Exit code of "cannot reach" (docs/agents.md).
const EXIT_UNREACHABLE: i32 = 4;
/// Exit code of "outcome unknown": a request went out and no answer came back.
const EXIT_OUTCOME_UNKNOWN: i32 = 5;

/// Runs `switchboard <args> --server <servers>` against `bus`'s scratch directory.
async fn run_on(bus: &Bus, servers: &str, args: &[&str]) -> Run {
    let args = [args, &["--server", servers]].concat();
    bus.run(&args).await
}

/// Every plain command given `standby,real` goes to the real server: what it stores is there.
#[tokio::test]
async fn commands_skip_a_standby_listed_first() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let standby = StandbyServer::start(None).await;
    let servers = format!("{},{}", standby.url, bus.server.base());
    let register = run_on(&bus, &servers, &["register", "--agent", "carol"]).await;
    register.ok();
    let sent = run_on(
        &bus,
        &servers,
        &["send", "bob", "hi", "--agent", "alice", "--json"],
    )
    .await;
    let id = sent.ok().json()["message_id"].as_str().unwrap().to_string();
    let agents = run_on(&bus, &servers, &["agents", "--json"]).await;
    let names: Vec<Value> = agents
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].clone())
        .collect();
    assert!(names.contains(&Value::from("carol")), "{names:?}");
    run_on(&bus, &servers, &["status", &id]).await.ok();
    let inbox = run_on(&bus, &servers, &["inbox", "--agent", "bob", "--json"]).await;
    assert_eq!(inbox.ok().json()[0]["id"], id.as_str());
    run_on(&bus, &servers, &["nack", &id, "--agent", "bob"])
        .await
        .ok();
    let waited = run_on(
        &bus,
        &servers,
        &["wait", "--agent", "bob", "--timeout", "10", "--json"],
    )
    .await;
    assert_eq!(waited.ok().json()["id"], id.as_str());
    run_on(&bus, &servers, &["ack", &id, "--agent", "bob"])
        .await
        .ok();
    let (status, receipt) = bus.get(&format!("/api/v1/messages/{id}/status")).await;
    assert_eq!(
        (status, receipt["state"].as_str()),
        (200, Some("acked")),
        "{receipt}"
    );
    assert!(standby.asked() > 0, "the standby was asked first");
}

/// The hook (which never fails) delivers through the list as well.
#[tokio::test]
async fn the_hook_skips_a_standby_listed_first() {
    let bus = Bus::start(&["bob"]).await;
    let standby = StandbyServer::start(None).await;
    let servers = format!("{},{}", standby.url, bus.server.base());
    bus.send("alice", "bob", "read me at the turn").await;
    let hook = run_on(
        &bus,
        &servers,
        &["hook", "--agent", "bob", "--event", "user-prompt-submit"],
    )
    .await;
    hook.ok();
    assert!(hook.stdout.contains("read me at the turn"), "{hook:?}");
}

/// `ask` waits for its reply through the list, and `reply` answers through it.
#[tokio::test]
async fn ask_and_reply_skip_a_standby_listed_first() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let standby = StandbyServer::start(None).await;
    let servers = format!("{},{}", standby.url, bus.server.base());
    let ask_args = [
        "ask",
        "bob",
        "ready?",
        "--agent",
        "alice",
        "--timeout",
        "30",
        "--json",
        "--server",
        &servers,
    ];
    let asking = bus.spawn(&ask_args);
    let question = run_on(
        &bus,
        &servers,
        &["wait", "--agent", "bob", "--timeout", "30", "--json"],
    )
    .await;
    let question_id = question.ok().json()["id"].as_str().unwrap().to_string();
    run_on(
        &bus,
        &servers,
        &["reply", &question_id, "yes", "--agent", "bob"],
    )
    .await
    .ok();
    let asked = wait(asking).await;
    assert_eq!(asked.ok().json()["reply"]["content"], "yes");
}

/// `tail` opens its feed on the active server, past the standby.
#[tokio::test]
async fn tail_skips_a_standby_listed_first() {
    let bus = Bus::start(&["bob"]).await;
    let standby = StandbyServer::start(None).await;
    let servers = format!("{},{}", standby.url, bus.server.base());
    let mut tail = bus.spawn(&["tail", "--count", "1", "--json", "--server", &servers]);
    // The feed is open once tail says what it watches.
    let mut stderr = BufReader::new(tail.stderr.take().expect("piped stderr")).lines();
    while let Some(line) = stderr.next_line().await.expect("read tail's stderr") {
        if line.starts_with("watching") {
            break;
        }
    }
    let id = bus.send("alice", "bob", "seen live").await;
    let tailed = wait(tail).await;
    let event: Value = serde_json::from_str(tailed.ok().stdout.trim()).expect("one JSON event");
    assert_eq!(event["message_id"], id.as_str());
}

/// A standby that names the active server sends the client there, even when that server is
/// not in the list.
#[tokio::test]
async fn a_standby_naming_the_active_server_sends_the_client_there() {
    let bus = Bus::start(&["bob"]).await;
    let standby = StandbyServer::start(Some(&bus.server.base())).await;
    let servers = format!("{},{}", standby.url, dead_url());
    let sent = run_on(
        &bus,
        &servers,
        &[
            "send",
            "bob",
            "via the named one",
            "--agent",
            "alice",
            "--json",
        ],
    )
    .await;
    let id = sent.ok().json()["message_id"].clone();
    let (status, receipt) = bus
        .get(&format!("/api/v1/messages/{}/status", id.as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{receipt}");
}

/// A dead URL listed first is skipped: send, inbox and wait work against the live second one.
#[tokio::test]
async fn commands_skip_a_dead_url_listed_first() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let servers = format!("{},{}", dead_url(), bus.server.base());
    let sent = run_on(
        &bus,
        &servers,
        &["send", "bob", "one", "--agent", "alice", "--json"],
    )
    .await;
    let first = sent.ok().json()["message_id"].clone();
    run_on(&bus, &servers, &["send", "bob", "two", "--agent", "alice"])
        .await
        .ok();
    let inbox = run_on(
        &bus,
        &servers,
        &["inbox", "--agent", "bob", "--limit", "1", "--json", "--ack"],
    )
    .await;
    assert_eq!(inbox.ok().json()[0]["id"], first);
    let waited = run_on(
        &bus,
        &servers,
        &["wait", "--agent", "bob", "--timeout", "10", "--json"],
    )
    .await;
    assert_eq!(waited.ok().json()["content"], "two");
}

/// `SWITCHBOARD_URL` with commas is the same list as `--server`.
#[tokio::test]
async fn switchboard_url_with_commas_works_like_server() {
    let bus = Bus::start(&["bob"]).await;
    let standby = StandbyServer::start(None).await;
    let servers = format!("{},{},{}", dead_url(), standby.url, bus.server.base());
    let mut command = bus.command(&["send", "bob", "from the env", "--agent", "alice", "--json"]);
    command.env("SWITCHBOARD_URL", &servers);
    let sent = finish(command).await;
    sent.ok();
    let mut command = bus.command(&["inbox", "--agent", "bob", "--json"]);
    command.env("SWITCHBOARD_URL", &servers);
    let inbox = finish(command).await;
    assert_eq!(inbox.ok().json()[0]["content"], "from the env");
}

/// Longest a test gives a command that must give up after a 2 s reconnect timeout; only bounds
/// a failing test.
const GIVES_UP_WITHIN: Duration = Duration::from_secs(30);

/// No listed server is active (one dead, one standby): the command keeps looking for
/// `--reconnect-timeout`, then exits 4 naming each URL and what it said.
#[tokio::test]
async fn with_no_active_server_a_command_exits_4_naming_every_url() {
    let bus = Bus::start(&[]).await;
    let standby = StandbyServer::start(None).await;
    let dead = dead_url();
    let servers = format!("{dead},{}", standby.url);
    for args in [
        &["send", "bob", "hi", "--agent", "alice"][..],
        &["wait", "--agent", "bob"],
    ] {
        let started = Instant::now();
        let args = [args, &["--reconnect-timeout", "2"]].concat();
        let run = run_on(&bus, &servers, &args).await;
        assert!(
            started.elapsed() < GIVES_UP_WITHIN,
            "{args:?} took {:?}",
            started.elapsed()
        );
        assert!(
            started.elapsed() >= Duration::from_secs(2),
            "{args:?} kept looking: {run:?}"
        );
        assert_eq!(run.code, EXIT_UNREACHABLE, "{args:?}: {run:?}");
        assert!(run.stderr.contains(&format!("{dead} (")), "{}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("{} (a hot standby", standby.url)),
            "{}",
            run.stderr
        );
    }
}

/// Every listed URL is dead: exit 4 after the reconnect timeout, each URL named.
#[tokio::test]
async fn with_every_url_dead_a_command_exits_4_naming_each() {
    let bus = Bus::start(&[]).await;
    let (first, second) = (dead_url(), dead_url());
    let servers = format!("{first},{second}");
    let run = run_on(&bus, &servers, &["agents", "--reconnect-timeout", "1"]).await;
    assert_eq!(run.code, EXIT_UNREACHABLE, "{run:?}");
    assert!(
        run.stderr.contains(&first) && run.stderr.contains(&second),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("cannot reach an active switchboard server"),
        "{}",
        run.stderr
    );
}

/// The active server takes the send and dies before answering: the retry goes to the next
/// server with the same idempotency key, which answers the first copy's id, and the command
/// succeeds with one message stored (the storage is shared, as a standby's is).
#[tokio::test]
async fn a_send_whose_server_died_before_answering_is_retried_on_the_next_with_its_key() {
    let bus = Bus::start(&["bob"]).await;
    let dying = AnswerLosingProxy::dying(bus.server.address()).await;
    let servers = format!("{},{}", dying.url, bus.server.base());
    let sent = run_on(
        &bus,
        &servers,
        &["send", "bob", "only once", "--agent", "alice", "--json"],
    )
    .await;
    sent.ok();
    assert_eq!(
        sent.json()["deduplicated"],
        true,
        "the retry found the first copy"
    );
    let inbox = run_on(&bus, &servers, &["inbox", "--agent", "bob", "--json"]).await;
    let messages = inbox.ok().json();
    assert_eq!(messages.as_array().map(Vec::len), Some(1), "{messages}");
}

/// The active server takes the send and dies before answering, and no other server becomes
/// active: the message may be stored, so the answer is "outcome unknown" (exit 5) naming the
/// key, not "cannot reach".
#[tokio::test]
async fn a_send_unanswered_before_every_server_went_away_is_outcome_unknown() {
    let bus = Bus::start(&["bob"]).await;
    let dying = AnswerLosingProxy::dying(bus.server.address()).await;
    let servers = format!("{},{}", dying.url, dead_url());
    let args = [
        "send",
        "bob",
        "maybe",
        "--agent",
        "alice",
        "--reconnect-timeout",
        "1",
    ];
    let sent = run_on(&bus, &servers, &args).await;
    assert_eq!(sent.code, EXIT_OUTCOME_UNKNOWN, "{sent:?}");
    assert!(sent.stderr.contains("outcome unknown"), "{}", sent.stderr);
    assert!(
        sent.stderr.contains("--idempotency-key sb-"),
        "{}",
        sent.stderr
    );
}

/// `wait --server A,B` long-polls A; A is killed: the wait moves to B and prints the message
/// B holds for the agent.
#[tokio::test]
async fn wait_moves_to_the_next_server_when_the_active_one_is_killed() {
    let mut first = Bus::start(&["bob"]).await;
    let second = ServerProcess::start("memory:", &[]);
    let http = reqwest::Client::new();
    let register = http
        .post(second.url("/api/v1/agents/register"))
        .json(&serde_json::json!({ "name": "bob" }))
        .send()
        .await
        .expect("the second server answers");
    assert!(register.status().is_success());
    let sent: Value = http
        .post(second.url("/api/v1/messages?sender=alice"))
        .json(&serde_json::json!({ "recipient": "bob", "content": "held by the second" }))
        .send()
        .await
        .expect("the second server answers")
        .json()
        .await
        .expect("JSON");
    let servers = format!("{},{}", first.server.base(), second.base());
    let registered = last_seen(&first, "bob").await;
    let waiting = first.spawn(&[
        "wait",
        "--agent",
        "bob",
        "--timeout",
        "120",
        "--json",
        "--server",
        &servers,
    ]);
    // The wait's long poll has reached the first server when bob's last sign of life moves.
    let deadline = Instant::now() + Duration::from_secs(30);
    while last_seen(&first, "bob").await == registered {
        assert!(
            Instant::now() < deadline,
            "the wait never polled the first server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.server.kill9();
    let run = wait(waiting).await;
    run.ok();
    assert_eq!(run.json()["id"], sent["message_id"]);
    assert_eq!(run.json()["content"], "held by the second");
    assert!(
        run.stderr
            .contains(&format!("now talking to {}", second.base())),
        "{}",
        run.stderr
    );
}

async fn last_seen(bus: &Bus, agent: &str) -> Value {
    let (status, body) = bus.get(&format!("/api/v1/agents/{agent}")).await;
    assert_eq!(status, 200, "{body}");
    body["last_seen"].clone()
}

/// `migrate --follow` given `standby,real` asks the real server (which has no migration to
/// follow, and says so), not the standby.
#[tokio::test]
async fn migrate_skips_a_standby_listed_first() {
    let bus = Bus::start(&[]).await;
    let standby = StandbyServer::start(None).await;
    let servers = format!("{},{}", standby.url, bus.server.base());
    let run = run_on(&bus, &servers, &["migrate", "--follow"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("no migration to follow"),
        "{}",
        run.stderr
    );
}

/// `stats` given `standby,real` shows the real server's numbers.
#[tokio::test]
async fn stats_skips_a_standby_listed_first() {
    let bus = Bus::start(&[]).await;
    let standby = StandbyServer::start(None).await;
    let servers = format!("{},{}", standby.url, bus.server.base());
    let run = run_on(&bus, &servers, &["stats"]).await;
    run.ok();
    assert!(
        run.stdout
            .contains(&format!("switchboard at {}", bus.server.base())),
        "{}",
        run.stdout
    );
}
