//! A server restart in the middle of a migration (`kill -9`, on redb so the state survives):
//! with `--migration-on-restart resume` the run carries on where it stopped and completes;
//! with `rollback` every agent returns to tmux delivery and is told so in its pane.

mod tmux_lab;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard_tests::server_harness::ServerProcess;
use tmux_lab::play::Players;
use tmux_lab::TmuxLab;

const PANE_TIMEOUT: Duration = Duration::from_secs(15);
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

async fn status(server: &ServerProcess) -> Value {
    reqwest::get(server.url("/api/v1/migration/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until `done` holds for the status.
async fn wait_status(server: &ServerProcess, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let status = status(server).await;
        if done(&status) {
            return status;
        }
        assert!(
            started.elapsed() < RUN_TIMEOUT,
            "{what} never happened: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn stage(status: &Value, name: &str) -> String {
    status["run"]["agents"]
        .as_array()
        .and_then(|agents| agents.iter().find(|a| a["name"] == name))
        .map(|agent| agent["stage"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// Starts a migration of agents alpha and beta (one per batch) that nobody acks yet, and
/// kills the server while alpha waits for its check to be acknowledged.
async fn kill_during_batches(
    lab: &TmuxLab,
    policy: &str,
) -> (ServerProcess, Vec<tmux_lab::ReaderPane>) {
    let panes = vec![
        lab.reader("agent-hive", "agent-alpha"),
        lab.reader("agent-hive", "agent-beta"),
    ];
    let storage = format!("redb:{}", lab.dir().join("switchboard.redb").display());
    let workdir = lab.dir().display().to_string();
    let mut server = ServerProcess::start(
        &storage,
        &[
            "--enable-migration",
            "--tmux-socket",
            &lab.socket,
            "--workdir",
            &workdir,
            "--migration-on-restart",
            policy,
        ],
    );
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/migration/start"))
        .json(&json!({"dual_mode_minutes": 0, "batch_size": 1, "validation_timeout_seconds": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    wait_status(&server, "alpha validating", |s| {
        s["phase"] == "batches" && stage(s, "alpha") == "validating"
    })
    .await;
    panes[0].wait_for("Your messages are moving", PANE_TIMEOUT);
    server.restart();
    (server, panes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_mid_migration_resumes_where_it_stopped() {
    let lab = TmuxLab::new();
    let (server, panes) = kill_during_batches(&lab, "resume").await;
    let resumed = status(&server).await;
    assert_eq!(resumed["run"]["resumed"], 1, "{resumed:#}");
    assert_eq!(stage(&resumed, "alpha"), "validating");
    // The agents start reading now, on the restarted server.
    let _players = Players::start(&server.base(), &["alpha", "beta"], &[]);
    let done = wait_status(&server, "completion", |s| s["phase"] == "completed").await;
    assert_eq!(stage(&done, "alpha"), "migrated");
    assert_eq!(stage(&done, "beta"), "migrated");
    // alpha's check survived the restart: it was told once, not twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let told = panes[0]
        .lines()
        .iter()
        .filter(|l| l.contains("Your messages are moving"))
        .count();
    assert_eq!(told, 1, "{:?}", panes[0].lines());
    let report: Value =
        serde_json::from_slice(&std::fs::read(lab.dir().join("migration_report.json")).unwrap())
            .unwrap();
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["resumed"], 1);
    assert_eq!(report["migrated"], json!(["alpha", "beta"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_mid_migration_with_the_rollback_policy_rolls_everyone_back() {
    let lab = TmuxLab::new();
    let (server, panes) = kill_during_batches(&lab, "rollback").await;
    let rolled_back = wait_status(&server, "rollback", |s| s["phase"] == "rolled_back").await;
    assert_eq!(stage(&rolled_back, "alpha"), "rolled_back");
    assert_eq!(stage(&rolled_back, "beta"), "rolled_back");
    for pane in &panes {
        pane.wait_for(
            "migration to the message queue was rolled back",
            PANE_TIMEOUT,
        );
    }
    // Messages reach the panes again.
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/messages?sender=lead"))
        .json(&json!({"recipient": "beta", "content": "still there?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    panes[1].wait_for("From lead: still there?", PANE_TIMEOUT);
    let report: Value =
        serde_json::from_slice(&std::fs::read(lab.dir().join("migration_report.json")).unwrap())
            .unwrap();
    assert_eq!(report["outcome"], "rolled_back");
    assert!(report["rollback_reason"]
        .as_str()
        .unwrap()
        .contains("server restarted"));
}
