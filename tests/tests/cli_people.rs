//! Black-box tests of what the client commands tell people, against the real binary: errors
//! they can act on (no server, unknown agent, no identity), the agent taken from the worktree,
//! `agents`, `status` and `tail` output, `hook` (silent when empty or when the server is
//! down, always exit 0), and a stdout closed by its reader (a quiet exit, never a panic).

mod cli_support;

use std::process::Stdio;
use std::time::Duration;

use cli_support::{finish, wait, Bus};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// No server at the URL: exit 4 and a sentence saying how to start one.
#[tokio::test]
async fn unreachable_server_says_how_to_start_it() {
    let bus = Bus::start(&[]).await;
    let run = bus.run(&["agents", "--server", "http://127.0.0.1:1"]).await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.stderr
            .contains("cannot reach switchboard at http://127.0.0.1:1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("start it with `switchboard serve`"),
        "{}",
        run.stderr
    );
}

/// A misspelt agent name: exit 1, and the registered names that are close.
#[tokio::test]
async fn unknown_agent_gets_similar_names_suggested() {
    let bus = Bus::start(&["frontend", "backend", "docs"]).await;
    let run = bus.run(&["send", "fronted", "hi", "--agent", "docs"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("no agent named `fronted`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Did you mean `frontend`?"),
        "{}",
        run.stderr
    );
    let inbox = bus.run(&["inbox", "--agent", "bakend"]).await;
    assert_eq!(inbox.code, 1);
    assert!(
        inbox.stderr.contains("Did you mean `backend`?"),
        "{}",
        inbox.stderr
    );
}

/// Without --agent, SWITCHBOARD_AGENT or a worktree, commands that need an identity say how
/// to give one.
#[tokio::test]
async fn missing_identity_says_how_to_name_the_agent() {
    let bus = Bus::start(&["bob"]).await;
    let run = bus.run(&["inbox"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("--agent NAME"), "{}", run.stderr);
    assert!(run.stderr.contains("CLAUDE.md"), "{}", run.stderr);
}

/// Inside `worktrees/bob/src`, the commands act as agent `bob`; SWITCHBOARD_AGENT wins.
#[tokio::test]
async fn identity_defaults_to_the_worktree_agent() {
    let bus = Bus::start(&["bob", "alice"]).await;
    bus.send("carol", "bob", "for bob").await;
    bus.send("carol", "alice", "for alice").await;
    let inside = bus.worktree("bob");
    let run = finish(bus.command_in(&["inbox", "--json"], &inside)).await;
    run.ok();
    assert_eq!(run.json()[0]["content"], "for bob");
    let mut command = bus.command_in(&["inbox", "--json"], &inside);
    command.env("SWITCHBOARD_AGENT", "alice");
    let run = finish(command).await;
    run.ok();
    assert_eq!(run.json()[0]["content"], "for alice");
}

/// `agents` prints a table for people and the API's array for programs.
#[tokio::test]
async fn agents_prints_a_table_and_json() {
    let bus = Bus::start(&["frontend", "backend"]).await;
    let table = bus.run(&["agents"]).await;
    table.ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{}", table.stdout);
    assert!(lines[0].contains("STATUS") && lines[0].contains("CAPABILITIES"));
    assert!(
        lines[1].starts_with("backend "),
        "sorted by name: {}",
        table.stdout
    );
    assert!(lines[2].starts_with("frontend "), "{}", table.stdout);
    let json = bus.run(&["agents", "--json"]).await;
    json.ok();
    let agents = json.json();
    assert_eq!(agents.as_array().unwrap().len(), 2);
    assert!(agents[0]["id"].is_string() && agents[0]["status"].is_string());
}

/// `status` shows each stage of a message with its details, for people and programs.
#[tokio::test]
async fn status_shows_the_stages_of_a_message() {
    let bus = Bus::start(&["bob"]).await;
    let id = bus.send("alice", "bob", "track me").await;
    bus.run(&["inbox", "--agent", "bob", "--ack"]).await.ok();
    let text = bus.run(&["status", &id]).await;
    text.ok();
    assert!(
        text.stdout
            .starts_with(&format!("message {id}: alice → bob, acked")),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("to bob, attempt 1, via rest"),
        "{}",
        text.stdout
    );
    let json = bus.run(&["status", &id, "--json"]).await;
    let stages: Vec<String> = json.json()["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stages, ["queued", "delivered", "acked"]);
    let unknown = bus.run(&["status", "nope"]).await;
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("no message nope"),
        "{}",
        unknown.stderr
    );
}

/// `tail` shows live traffic: a message queued, delivered and acked, one JSON line each.
#[tokio::test]
async fn tail_follows_live_traffic() {
    let bus = Bus::start(&["bob"]).await;
    let mut tail = bus
        .command(&["tail", "--json", "--count", "3"])
        .spawn()
        .expect("start tail");
    let stderr = tail.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("tail reports it is watching")
        .expect("read stderr");
    assert!(ready
        .unwrap_or_default()
        .starts_with("watching all traffic"));
    let id = bus.send("alice", "bob", "watched").await;
    bus.run(&["inbox", "--agent", "bob", "--ack"]).await.ok();
    let run = wait(tail).await;
    run.ok();
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let stages: Vec<&str> = events
        .iter()
        .map(|e| e["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["queued", "delivered", "acked"]);
    assert!(events.iter().all(|e| e["message_id"] == id.as_str()));
    assert_eq!(events[0]["preview"], "watched");
    assert_eq!(events[1]["agent"], "bob");
}

/// `hook` prints pending messages for the agent's context and acks them; with nothing pending
/// it prints nothing.
#[tokio::test]
async fn hook_prints_pending_messages_once() {
    let bus = Bus::start(&["bob"]).await;
    let id = bus.send("alice", "bob", "deploy is blocked").await;
    let first = bus.run(&["hook", "--agent", "bob"]).await;
    first.ok();
    assert!(
        first
            .stdout
            .starts_with("[switchboard] 1 new message for bob"),
        "{}",
        first.stdout
    );
    assert!(first.stdout.contains(&id) && first.stdout.contains("deploy is blocked"));
    let status = bus.run(&["status", &id, "--json"]).await;
    assert_eq!(status.json()["state"], "acked");
    let second = bus.run(&["hook", "--agent", "bob"]).await;
    second.ok();
    assert_eq!(second.stdout, "", "nothing pending, nothing printed");
}

/// As a `Stop` hook (event read from the JSON on stdin) it answers with a block decision
/// carrying the messages, and stays quiet when the stop already continued once.
#[tokio::test]
async fn hook_answers_a_stop_event_with_a_block_decision() {
    let bus = Bus::start(&["bob"]).await;
    bus.send("alice", "bob", "one more thing").await;
    let looping = bus
        .run_with_stdin(
            &["hook", "--agent", "bob"],
            r#"{"hook_event_name":"Stop","stop_hook_active":true}"#,
        )
        .await;
    looping.ok();
    assert_eq!(looping.stdout, "");
    let run = bus
        .run_with_stdin(
            &["hook", "--agent", "bob"],
            r#"{"hook_event_name":"Stop","stop_hook_active":false}"#,
        )
        .await;
    run.ok();
    let decision = run.json();
    assert_eq!(decision["decision"], "block");
    assert!(decision["reason"]
        .as_str()
        .unwrap()
        .contains("one more thing"));
}

/// The hook finds its agent from the `cwd` Claude Code passes on stdin.
#[tokio::test]
async fn hook_takes_the_agent_from_the_cwd_in_its_input() {
    let bus = Bus::start(&["bob"]).await;
    bus.send("alice", "bob", "found you").await;
    let inside = bus.worktree("bob");
    let input = serde_json::json!({ "hook_event_name": "UserPromptSubmit", "cwd": inside });
    let mut command = bus.command(&["hook"]);
    command.stdin(Stdio::piped());
    let mut child = command.spawn().expect("start hook");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let run = wait(child).await;
    run.ok();
    assert!(run.stdout.contains("found you"), "{run:?}");
}

/// A hook must never break the agent: server down, or an agent unknown, is exit 0 with
/// nothing on stdout and a note on stderr.
#[tokio::test]
async fn hook_is_silent_and_succeeds_when_it_cannot_deliver() {
    let bus = Bus::start(&["bob"]).await;
    let down = bus
        .run(&["hook", "--agent", "bob", "--server", "http://127.0.0.1:1"])
        .await;
    assert_eq!(down.code, 0, "{down:?}");
    assert_eq!(down.stdout, "");
    assert!(down.stderr.contains("nothing delivered"), "{}", down.stderr);
    let unknown = bus.run(&["hook", "--agent", "nobody"]).await;
    assert_eq!(unknown.code, 0, "{unknown:?}");
    assert_eq!(unknown.stdout, "");
}

/// Runs `switchboard <args>` with stdout a pipe whose reader is already gone.
async fn run_with_closed_stdout(bus: &Bus, args: &[&str]) -> cli_support::Run {
    // The write end of a pipe whose only reader, `true`, has exited.
    let mut reader = std::process::Command::new("true")
        .stdin(Stdio::piped())
        .spawn()
        .expect("start true");
    let writer = reader.stdin.take().expect("piped stdin");
    reader.wait().expect("true exits");
    let mut command = bus.command(args);
    command.stdout(Stdio::from(writer));
    finish(command).await
}

/// `switchboard agents | true`: the reader left, so the command ends quietly — no panic, no
/// backtrace, not Rust's panic code 101.
#[tokio::test]
async fn agents_into_a_closed_pipe_exits_quietly() {
    let bus = Bus::start(&["bob"]).await;
    let run = run_with_closed_stdout(&bus, &["agents"]).await;
    assert_ne!(run.code, 101, "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(run.stderr, "", "nothing to say: the reader left");
}

/// A hook whose stdout is closed still exits 0 without a panic, and acks nothing it could not
/// show: the message is delivered next time.
#[tokio::test]
async fn hook_into_a_closed_pipe_exits_0_and_acks_nothing() {
    let bus = Bus::start(&["bob"]).await;
    let id = bus.send("alice", "bob", "keep me").await;
    let run = run_with_closed_stdout(&bus, &["hook", "--agent", "bob"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let status = bus.run(&["status", &id, "--json"]).await;
    status.ok();
    assert_ne!(status.json()["state"], "acked", "{}", status.stdout);
}
