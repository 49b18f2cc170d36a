//! Whole migrations against the real server binary and a private tmux server: the test plays
//! the agents (reading and acking through the REST API) while `switchboard migrate` runs, and
//! reads what each pane's program received.

mod tmux_lab;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard_tests::server_harness::{run_to_end, ServerProcess};
use tmux_lab::play::Players;
use tmux_lab::{ReaderPane, TmuxLab};

const PANE_TIMEOUT: Duration = Duration::from_secs(15);
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A lab with agent windows `agent-NAME` in session `agent-hive`, plus a window that is not
/// an agent, and a workdir holding the old send script.
fn lab_with_agents(names: &[&str]) -> (TmuxLab, Vec<ReaderPane>, ReaderPane) {
    let lab = TmuxLab::new();
    let panes = names
        .iter()
        .map(|name| lab.reader("agent-hive", &format!("agent-{name}")))
        .collect();
    let bystander = lab.reader("agent-hive", "editor");
    std::fs::write(lab.dir().join("send-claude-message.sh"), "#!/bin/sh\nold\n").unwrap();
    (lab, panes, bystander)
}

fn start_server(lab: &TmuxLab) -> ServerProcess {
    let workdir = lab.dir().display().to_string();
    ServerProcess::start(
        "memory:",
        &[
            "--enable-migration",
            "--tmux-socket",
            &lab.socket,
            "--workdir",
            &workdir,
        ],
    )
}

async fn get(url: String) -> Value {
    reqwest::get(&url).await.unwrap().json().await.unwrap()
}

async fn post(url: String, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn wait_phase(server: &ServerProcess, phase: &str) -> Value {
    let started = Instant::now();
    loop {
        let status = get(server.url("/api/v1/migration/status")).await;
        if status["phase"] == phase {
            return status;
        }
        assert!(
            started.elapsed() < RUN_TIMEOUT,
            "phase {phase} not reached; status: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `switchboard <args>` on a blocking thread.
async fn switchboard(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, out, err) = run_to_end(&args, RUN_TIMEOUT);
        (status.success(), out, err)
    })
    .await
    .unwrap()
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|line| line.contains(needle)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_agent_validates_and_the_migration_completes_with_a_report() {
    let (lab, panes, bystander) = lab_with_agents(&["alpha", "beta", "gamma"]);
    let server = start_server(&lab);
    let _players = Players::start(&server.base(), &["alpha", "beta", "gamma"], &[]);
    let report = lab.dir().join("report.json");
    let (ok, out, err) = switchboard(vec![
        "migrate".into(),
        "--server".into(),
        server.base(),
        "--dual-mode-minutes".into(),
        "0.02".into(),
        "--batch-size".into(),
        "2".into(),
        "--validation-timeout-seconds".into(),
        "30".into(),
        "--report".into(),
        report.display().to_string(),
    ])
    .await;
    assert!(ok, "migrate failed\nstdout:\n{out}\nstderr:\n{err}");
    for phase in [
        "[1/5] discovery",
        "[2/5] dual_mode",
        "[3/5] batches",
        "[4/5] validation",
        "[5/5] cleanup",
    ] {
        assert!(out.contains(phase), "no {phase:?} in the progress:\n{out}");
    }
    assert!(out.contains("migrated (3): alpha, beta, gamma"), "{out}");
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["migrated"], json!(["alpha", "beta", "gamma"]));
    assert_eq!(report["rolled_back"], json!([]));
    assert_eq!(report["agents_discovered"].as_array().unwrap().len(), 3);
    let checks = report["validation"].as_array().unwrap();
    assert_eq!(
        checks.len(),
        6,
        "a batch and a final check per agent: {checks:#?}"
    );
    assert!(
        checks.iter().all(|c| c["result"] == "acknowledged"),
        "{checks:#?}"
    );
    assert!(report["started_at"].is_string() && report["ended_at"].is_string());
    let moved = report["cleanup"].as_array().unwrap();
    assert_eq!(moved.len(), 1, "{moved:#?}");
    assert!(lab
        .dir()
        .join("send-claude-message.sh.pre-switchboard")
        .exists());
    // Each agent was told once, in its pane, how to use the queue; the bystander never.
    for pane in &panes {
        let lines = pane.wait_for("[SWITCHBOARD]", PANE_TIMEOUT);
        assert_eq!(count(&lines, "Your messages are moving"), 1, "{lines:?}");
    }
    assert!(bystander.lines().is_empty(), "{:?}", bystander.lines());
    let status = get(server.url("/api/v1/migration/status")).await;
    assert_eq!(status["phase"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_instructions_typed_into_panes_show_the_switchboard_cli_not_curl() {
    let (lab, panes, _bystander) = lab_with_agents(&["alpha"]);
    let server = start_server(&lab);
    let _players = Players::start(&server.base(), &["alpha"], &[]);
    let (status, body) = post(
        server.url("/api/v1/migration/start"),
        json!({"dual_mode_minutes": 0, "skip_cleanup": true}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let lines = panes[0].wait_for("[SWITCHBOARD]", PANE_TIMEOUT);
    let told = lines.iter().find(|l| l.contains("[SWITCHBOARD]")).unwrap();
    let connection = format!("--server {} --agent alpha", server.base());
    for command in [
        format!("switchboard inbox {connection} --ack"),
        format!("switchboard wait {connection} --ack"),
        format!("switchboard send {connection} RECIPIENT"),
    ] {
        assert!(told.contains(&command), "no {command:?} in {told}");
    }
    assert!(!told.contains("curl"), "{told}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_that_never_acks_is_rolled_back_and_the_others_migrate() {
    let (lab, panes, _bystander) = lab_with_agents(&["alpha", "beta", "gamma"]);
    let server = start_server(&lab);
    // gamma reads its messages but never acknowledges them.
    let _players = Players::start(&server.base(), &["alpha", "beta"], &["gamma"]);
    let report = lab.dir().join("report.json");
    let (ok, out, err) = switchboard(vec![
        "migrate".into(),
        "--server".into(),
        server.base(),
        "--dual-mode-minutes".into(),
        "0".into(),
        "--batch-size".into(),
        "3".into(),
        "--validation-timeout-seconds".into(),
        "3".into(),
        "--report".into(),
        report.display().to_string(),
    ])
    .await;
    assert!(ok, "a partial migration still completes\n{out}\n{err}");
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["migrated"], json!(["alpha", "beta"]));
    let rolled_back = report["rolled_back"].as_array().unwrap();
    assert_eq!(rolled_back.len(), 1, "{rolled_back:#?}");
    assert_eq!(rolled_back[0]["name"], "gamma");
    let reason = rolled_back[0]["reason"].as_str().unwrap();
    assert!(reason.contains("no acknowledgement"), "{reason}");
    assert!(out.contains("gamma: validation failed"), "{out}");
    // gamma was told in its pane, and now gets its messages there; alpha only in the queue.
    let gamma = &panes[2];
    gamma.wait_for("You stay on tmux delivery", PANE_TIMEOUT);
    let base = server.base();
    for recipient in ["gamma", "alpha"] {
        let (status, _) = post(
            format!("{base}/api/v1/messages?sender=lead"),
            json!({"recipient": recipient, "content": format!("after for {recipient}")}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let lines = gamma.wait_for("From lead: after for gamma", PANE_TIMEOUT);
    assert!(
        !lines.iter().any(|l| l.contains("[DUAL MODE] From lead")),
        "no dual-mode prefix after the run: {lines:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        count(&panes[0].lines(), "after for alpha"),
        0,
        "alpha is on the queue only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dual_mode_types_messages_into_panes_tmux_send_works_and_rollback_restores_tmux() {
    let (lab, panes, _bystander) = lab_with_agents(&["alpha", "beta"]);
    let server = start_server(&lab);
    let base = server.base();
    let (status, started) = post(
        format!("{base}/api/v1/migration/start"),
        json!({"dual_mode_minutes": 30, "batch_size": 1}),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    wait_phase(&server, "dual_mode").await;
    // A message to a not-yet-migrated agent: enqueued and typed into its pane.
    let (status, sent) = post(
        format!("{base}/api/v1/messages?sender=lead"),
        json!({"recipient": "alpha", "content": "run the tests"}),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    panes[0].wait_for("[DUAL MODE] From lead: run the tests", PANE_TIMEOUT);
    let queued = get(format!("{base}/api/v1/messages/alpha")).await;
    assert_eq!(queued[0]["content"], "run the tests");
    assert_eq!(queued[0]["id"], sent["message_id"]);
    // The drop-in for send-claude-message.sh, with its arguments.
    let (ok, out, err) = switchboard(vec![
        "tmux-send".into(),
        "--server".into(),
        base.clone(),
        "--tmux-socket".into(),
        lab.socket.clone(),
        "agent-hive:agent-beta".into(),
        "hello".into(),
        "beta".into(),
    ])
    .await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("sent to beta through the queue"), "{out}");
    let beta_lines = panes[1].wait_for("[DUAL MODE] From tmux-send: hello beta", PANE_TIMEOUT);
    assert_eq!(
        count(&beta_lines, "hello beta"),
        1,
        "typed once: {beta_lines:?}"
    );
    let queued = get(format!("{base}/api/v1/messages/beta")).await;
    assert_eq!(queued[0]["content"], "hello beta");
    // Both outcomes are recorded.
    let started = Instant::now();
    loop {
        let status = get(server.url("/api/v1/migration/status")).await;
        let tally = &status["run"]["dual_mode"]["tally"];
        if tally["sent"] == 2 {
            assert_eq!(tally["delivered"], 2, "{tally}");
            break;
        }
        assert!(started.elapsed() < PANE_TIMEOUT, "{tally}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Whole rollback: every pane is told, and tmux delivery is back.
    let report = lab.dir().join("report.json");
    let (ok, out, err) = switchboard(vec![
        "migrate".into(),
        "--server".into(),
        base.clone(),
        "--rollback".into(),
        "--reason".into(),
        "testing rollback".into(),
        "--report".into(),
        report.display().to_string(),
    ])
    .await;
    assert!(ok, "{out}\n{err}");
    for pane in &panes {
        pane.wait_for(
            "migration to the message queue was rolled back (testing rollback)",
            PANE_TIMEOUT,
        );
    }
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["outcome"], "rolled_back");
    assert_eq!(report["rolled_back"].as_array().unwrap().len(), 2);
    assert_eq!(report["dual_mode"]["sent"], 2);
    post(
        format!("{base}/api/v1/messages?sender=lead"),
        json!({"recipient": "alpha", "content": "back on tmux"}),
    )
    .await;
    panes[0].wait_for("From lead: back on tmux", PANE_TIMEOUT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let (lab, mut panes, _bystander) = lab_with_agents(&["alpha", "beta", "gamma"]);
    // An agent found by its worktree (a CLAUDE.md inside), in another session.
    let worktree = lab.dir().join("worktrees").join("delta");
    std::fs::create_dir_all(&worktree).unwrap();
    std::fs::write(worktree.join("CLAUDE.md"), "# delta\n").unwrap();
    panes.push(lab.reader_in("dev", "shell", &worktree));
    let server = start_server(&lab);
    let (ok, out, err) = switchboard(vec![
        "migrate".into(),
        "--server".into(),
        server.base(),
        "--batch-size".into(),
        "2".into(),
        "--dry-run".into(),
    ])
    .await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("4 agent(s) in 2 batch(es)"), "{out}");
    assert!(out.contains("batch 1/2: alpha, beta"), "{out}");
    assert!(out.contains("batch 2/2: delta, gamma"), "{out}");
    assert!(out.contains("(in its worktree)"), "{out}");
    assert!(out.contains("send-claude-message.sh"), "{out}");
    let status = get(server.url("/api/v1/migration/status")).await;
    assert_eq!(status["phase"], "idle");
    assert!(lab.dir().join("send-claude-message.sh").exists());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(panes.iter().all(|pane| pane.lines().is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_without_enable_migration_refuses_to_start_one() {
    let lab = TmuxLab::new();
    let server = ServerProcess::start("memory:", &["--tmux-socket", &lab.socket]);
    let (status, body) = post(server.url("/api/v1/migration/start"), json!({})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("--enable-migration"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_with_migrate_now_migrates_at_start_and_writes_the_report_in_the_workdir() {
    let (lab, _panes, _bystander) = lab_with_agents(&["alpha", "beta"]);
    let workdir = lab.dir().display().to_string();
    let server = ServerProcess::start(
        "memory:",
        &[
            "--migrate-now",
            "--dual-mode-minutes",
            "0",
            "--validation-timeout-seconds",
            "30",
            "--tmux-socket",
            &lab.socket,
            "--workdir",
            &workdir,
        ],
    );
    let _players = Players::start(&server.base(), &["alpha", "beta"], &[]);
    let status = wait_phase(&server, "completed").await;
    assert_eq!(
        status["run"]["settings"]["batch_size"], 2,
        "the original's default"
    );
    let report = lab.dir().join("migration_report.json");
    let started = Instant::now();
    while !report.exists() {
        assert!(started.elapsed() < PANE_TIMEOUT, "no report in the workdir");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["migrated"], json!(["alpha", "beta"]));
}
