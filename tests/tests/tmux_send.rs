//! `switchboard tmux-send TARGET MESSAGE...`, the drop-in for `send-claude-message.sh`, when
//! the queue cannot take the message: it types into the pane itself (safely), or with
//! `--no-fallback` refuses; a target that is not a pane is an error and nothing is typed
//! anywhere; a pane whose terminal a shell reads is never typed into; a send that went out
//! unanswered is not typed too (it may be queued already). (Sending through the
//! queue in dual mode is tested in `migration_run.rs` and `migration_shell_panes.rs`.)

mod cli_support;
mod tmux_lab;

use std::time::Duration;

use cli_support::fake_server::{SilentServer, StandbyServer};
use serde_json::Value;
use switchboard_tests::server_harness::run_to_end;
use tmux_lab::TmuxLab;

/// A URL where no server listens.
const NO_SERVER: &str = "http://127.0.0.1:9";
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// Exit code of a send whose outcome is unknown (as `switchboard send`'s).
const EXIT_OUTCOME_UNKNOWN: i32 = 5;

fn tmux_send(lab: &TmuxLab, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "tmux-send",
        "--server",
        NO_SERVER,
        "--tmux-socket",
        &lab.socket,
    ];
    args.extend_from_slice(extra);
    let (status, out, err) = run_to_end(&args, RUN_TIMEOUT);
    (status.success(), out, err)
}

#[test]
fn without_a_server_the_message_is_typed_into_the_pane_literally_once() {
    let lab = TmuxLab::new();
    let pane = lab.reader("agent-hive", "agent-alpha");
    let (ok, out, err) = tmux_send(
        &lab,
        &["agent-hive:agent-alpha", "-n", "run", "C-c", "now;"],
    );
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("typed into pane"), "{out}");
    assert_eq!(
        pane.wait_lines(1, Duration::from_secs(10)),
        vec!["-n run C-c now;"]
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(pane.lines().len(), 1);
}

#[test]
fn with_no_fallback_nothing_is_typed() {
    let lab = TmuxLab::new();
    let pane = lab.reader("agent-hive", "agent-alpha");
    let (ok, _out, err) = tmux_send(&lab, &["--no-fallback", "agent-hive:agent-alpha", "hi"]);
    assert!(!ok);
    assert!(err.contains("--no-fallback"), "{err}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(pane.lines().is_empty(), "{:?}", pane.lines());
}

#[test]
fn a_target_that_is_not_a_pane_is_an_error_and_nothing_is_typed_anywhere() {
    let lab = TmuxLab::new();
    let active = lab.reader("agent-hive", "agent-alpha");
    let (ok, _out, err) = tmux_send(&lab, &["agent-hive:agent-nobody", "hello"]);
    assert!(!ok);
    assert!(err.contains("nothing was sent"), "{err}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(active.lines().is_empty(), "{:?}", active.lines());
}

#[test]
fn a_pane_running_a_shell_gets_nothing_typed() {
    let lab = TmuxLab::new();
    let cwd = tempfile::tempdir().unwrap();
    let shell = lab.shell("agent-hive", "agent-alpha", cwd.path());
    let (ok, out, err) = tmux_send(
        &lab,
        &["agent-hive:agent-alpha", "$(touch x) ; touch y\ntouch z"],
    );
    assert!(!ok, "{out}");
    assert!(err.contains("refused: pane runs a shell (bash)"), "{err}");
    // Typed directly: once the shell has run it, it has run anything typed before.
    lab.tmux(&["send-keys", "-t", &shell, "-l", "touch synced"]);
    lab.tmux(&["send-keys", "-t", &shell, "Enter"]);
    let started = std::time::Instant::now();
    while !cwd.path().join("synced").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            lab.screen(&shell)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for file in ["x", "y", "z"] {
        assert!(
            !cwd.path().join(file).exists(),
            "the shell ran `touch {file}`"
        );
    }
}

/// The server is up (it answers the migration status) but never answers the send: the message
/// may be queued, so typing it too could deliver it twice. Nothing is typed; the send was
/// retried with one idempotency key; the command says "outcome unknown" and exits 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_outcome_is_unknown_types_nothing_and_exits_5() {
    let lab = TmuxLab::new();
    let pane = lab.reader("agent-hive", "agent-alpha");
    let server = SilentServer::answering_gets(r#"{"run": null}"#).await;
    let args: Vec<String> = [
        "tmux-send",
        "--server",
        &server.url,
        "--tmux-socket",
        &lab.socket,
        "--request-timeout",
        "1",
        "agent-hive:agent-alpha",
        "hello",
    ]
    .map(String::from)
    .to_vec();
    let (status, out, err) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_to_end(&args, RUN_TIMEOUT)
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(EXIT_OUTCOME_UNKNOWN), "{out}\n{err}");
    assert!(err.contains("outcome unknown"), "{err}");
    assert!(err.contains("Nothing was typed into the pane"), "{err}");
    assert!(!out.contains("typed into pane"), "{out}");
    assert!(pane.lines().is_empty(), "{:?}", pane.lines());
    let keys: Vec<String> = server
        .bodies()
        .iter()
        .map(|body| {
            let body: Value = serde_json::from_str(body).expect("a JSON body");
            assert_eq!(body["recipient"], "alpha", "{body}");
            body["dedup_key"].as_str().expect("a dedup key").to_string()
        })
        .collect();
    assert!(keys.len() > 1, "retried: {keys:?}");
    assert!(keys.iter().all(|key| key == &keys[0]), "one key: {keys:?}");
    assert!(
        err.contains(&keys[0]),
        "names the key to repeat with: {err}"
    );
}

/// Given `standby,real`, tmux-send finds the agent and sends through the queue of the real
/// server; nothing is typed into the pane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_listed_first_is_skipped_and_the_message_goes_through_the_queue() {
    let lab = TmuxLab::new();
    let pane = lab.reader("agent-hive", "agent-alpha");
    let bus = cli_support::Bus::start(&["alpha"]).await;
    let standby = StandbyServer::start(None).await;
    let servers = format!("{},{}", standby.url, bus.server.base());
    let args: Vec<String> = [
        "tmux-send",
        "--server",
        &servers,
        "--tmux-socket",
        &lab.socket,
        "--no-fallback",
        "agent-hive:agent-alpha",
        "through the queue",
    ]
    .map(String::from)
    .to_vec();
    let (status, out, err) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_to_end(&args, RUN_TIMEOUT)
    })
    .await
    .unwrap();
    assert!(status.success(), "{out}\n{err}");
    assert!(out.contains("sent to alpha through the queue"), "{out}");
    let inbox = bus.run(&["inbox", "--agent", "alpha", "--json"]).await;
    assert_eq!(inbox.ok().json()[0]["content"], "through the queue");
    assert!(pane.lines().is_empty(), "{:?}", pane.lines());
}
