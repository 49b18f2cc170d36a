//! A migration never types into a pane whose terminal a shell reads: not a dual-mode copy, not
//! its own `[SWITCHBOARD]` notices. Such a delivery is `refused`, recorded in the migration
//! report and in the message's delivery receipt, and the message stays in the queue; a `cat`
//! pane next to it gets the same text verbatim. Real server binary, real tmux (private socket),
//! a real `bash` at its prompt.

mod tmux_lab;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard_tests::server_harness::{run_to_end, ServerProcess};
use tmux_lab::play::Players;
use tmux_lab::{ReaderPane, TmuxLab};

const PANE_TIMEOUT: Duration = Duration::from_secs(15);
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// A message a shell would run three commands from: `touch x`, `touch y` and `touch z`.
const SHELL_BAIT: &str = "$(touch x) ; touch y\ntouch z";

/// Agent `shell` (a bash pane working in `cwd`) and agent `reader` (a cat pane), in the
/// agents' session.
struct Lab {
    lab: TmuxLab,
    cwd: tempfile::TempDir,
    shell: String,
    reader: ReaderPane,
}

fn lab() -> Lab {
    let lab = TmuxLab::new();
    let cwd = tempfile::tempdir().unwrap();
    let shell = lab.shell("agent-hive", "agent-shell", cwd.path());
    let reader = lab.reader("agent-hive", "agent-reader");
    Lab {
        lab,
        cwd,
        shell,
        reader,
    }
}

impl Lab {
    fn server(&self) -> ServerProcess {
        let workdir = self.lab.dir().display().to_string();
        ServerProcess::start(
            "memory:",
            &[
                "--enable-migration",
                "--tmux-socket",
                &self.lab.socket,
                "--workdir",
                &workdir,
            ],
        )
    }

    /// Makes the shell (typed directly, not through switchboard) create `synced` and waits for
    /// it: anything typed into it before has been run by then. Then asserts that none of the
    /// bait's files exist.
    fn assert_the_shell_ran_nothing(&self) {
        let dir = self.cwd.path();
        self.lab
            .tmux(&["send-keys", "-t", &self.shell, "-l", "touch synced"]);
        self.lab.tmux(&["send-keys", "-t", &self.shell, "Enter"]);
        let started = Instant::now();
        while !dir.join("synced").exists() {
            assert!(
                started.elapsed() < PANE_TIMEOUT,
                "{}",
                self.lab.screen(&self.shell)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        for file in ["x", "y", "z"] {
            assert!(!exists(dir, file), "the shell ran `touch {file}`");
        }
    }
}

fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
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

async fn wait_until(server: &ServerProcess, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let status = get(server.url("/api/v1/migration/status")).await;
        if done(&status) {
            return status;
        }
        assert!(
            started.elapsed() < RUN_TIMEOUT,
            "{what} never happened; status: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn switchboard(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, out, err) = run_to_end(&args, RUN_TIMEOUT);
        (status.success(), out, err)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dual_mode_copies_are_refused_for_a_shell_pane_and_reach_a_cat_pane_verbatim() {
    let lab = lab();
    let server = lab.server();
    let base = server.base();
    let (status, body) = post(
        format!("{base}/api/v1/migration/start"),
        json!({"dual_mode_minutes": 30}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    wait_until(&server, "dual mode", |s| s["phase"] == "dual_mode").await;
    let mut ids = Vec::new();
    for recipient in ["shell", "reader"] {
        let (status, sent) = post(
            format!("{base}/api/v1/messages?sender=alice"),
            json!({"recipient": recipient, "content": SHELL_BAIT}),
        )
        .await;
        assert_eq!(status, 200, "{sent}");
        ids.push(sent["message_id"].as_str().unwrap().to_string());
    }
    let lines = lab.reader.wait_lines(2, PANE_TIMEOUT);
    assert_eq!(
        lines,
        vec!["[DUAL MODE] From alice: $(touch x) ; touch y", "touch z"]
    );
    let status = wait_until(&server, "both pane copies", |s| {
        s["run"]["dual_mode"]["tally"]["sent"] == 2
    })
    .await;
    let tally = &status["run"]["dual_mode"]["tally"];
    assert_eq!(
        (&tally["refused"], &tally["delivered"]),
        (&json!(1), &json!(1))
    );
    lab.assert_the_shell_ran_nothing();
    let screen = lab.lab.screen(&lab.shell);
    assert!(!screen.contains("DUAL MODE"), "typed into bash:\n{screen}");
    // The receipt says why, and the message waits in the queue.
    let receipt = get(format!("{base}/api/v1/messages/{}/status", ids[0])).await;
    assert_eq!(receipt["state"], "queued", "{receipt:#}");
    let refusal = receipt["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|stage| stage["stage"] == "pane_refused")
        .unwrap_or_else(|| panic!("no pane_refused stage: {receipt:#}"));
    let reason = refusal["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("refused: pane runs a shell (bash)"),
        "{reason}"
    );
    // So does the report.
    let report = get(format!("{base}/api/v1/migration/report")).await;
    let refused = report["refused_deliveries"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0]["agent"], "shell");
    assert_eq!(
        refused[0]["what"],
        format!("dual-mode copy of message {}", ids[0])
    );
    assert!(refused[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("pane runs a shell (bash)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_migrations_own_notices_are_never_typed_into_a_shell_pane() {
    let lab = lab();
    let server = lab.server();
    // `shell` never acks, so it is told twice: the instructions, then the rollback notice.
    let _players = Players::start(&server.base(), &["reader"], &["shell"]);
    let report = lab.lab.dir().join("report.json");
    let (ok, out, err) = switchboard(vec![
        "migrate".into(),
        "--server".into(),
        server.base(),
        "--dual-mode-minutes".into(),
        "0".into(),
        "--validation-timeout-seconds".into(),
        "3".into(),
        "--skip-cleanup".into(),
        "--report".into(),
        report.display().to_string(),
    ])
    .await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("not typed into panes (2)"), "{out}");
    let lines = lab.reader.wait_for("[SWITCHBOARD]", PANE_TIMEOUT);
    assert_eq!(lines.len(), 1, "the reader is told once: {lines:?}");
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let refused: Vec<(&str, &str)> = report["refused_deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["agent"].as_str().unwrap(), r["what"].as_str().unwrap()))
        .collect();
    assert_eq!(
        refused,
        vec![("shell", "instructions"), ("shell", "rollback notice")]
    );
    lab.assert_the_shell_ran_nothing();
    let screen = lab.lab.screen(&lab.shell);
    assert!(
        !screen.contains("SWITCHBOARD"),
        "typed into bash:\n{screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dry_run_warns_that_a_shell_pane_will_get_nothing_typed() {
    let lab = lab();
    let server = lab.server();
    let (ok, out, err) = switchboard(vec![
        "migrate".into(),
        "--server".into(),
        server.base(),
        "--dry-run".into(),
    ])
    .await;
    assert!(ok, "{out}\n{err}");
    let warning = format!(
        "shell (pane {}): refused: pane runs a shell (bash)",
        lab.shell
    );
    assert!(out.contains(&warning), "no {warning:?} in:\n{out}");
    assert!(out.contains("warning: refused: pane runs a shell"), "{out}");
    assert!(
        !out.contains("reader (pane"),
        "the cat pane gets no warning:\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_agent_program_replaces_the_allowed_programs() {
    let lab = lab();
    let workdir = lab.lab.dir().display().to_string();
    let server = ServerProcess::start(
        "memory:",
        &[
            "--enable-migration",
            "--tmux-socket",
            &lab.lab.socket,
            "--workdir",
            &workdir,
            "--agent-program",
            "claude,codex",
        ],
    );
    let (ok, out, err) = switchboard(vec![
        "migrate".into(),
        "--server".into(),
        server.base(),
        "--dry-run".into(),
    ])
    .await;
    assert!(ok, "{out}\n{err}");
    let warning = format!(
        "reader (pane {}): refused: pane runs cat, which is not an agent program (allowed: \
         claude, codex",
        lab.reader.pane_id
    );
    assert!(out.contains(&warning), "no {warning:?} in:\n{out}");
}
