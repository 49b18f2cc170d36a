//! Black-box tests of agent discovery against the real `switchboard` binary started with
//! `--workdir` on realistic trees built in temporary directories: worktree roots holding
//! CLAUDE.md / AGENTS.md, front matter, agent.yml and config.json, and a real git repository
//! with `git worktree add`. Ids stay stable across rescans, registrations and restarts; a
//! vanished worktree marks its agent gone without losing its messages.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use switchboard_tests::server_harness::{run_to_end, ServerProcess};

struct Api {
    server: ServerProcess,
    http: reqwest::Client,
}

impl Api {
    fn start(storage: &str, workdir: &Path, extra: &[&str]) -> Self {
        let workdir = workdir.display().to_string();
        let mut args = vec!["--workdir", workdir.as_str()];
        args.extend_from_slice(extra);
        Self {
            server: ServerProcess::start(storage, &args),
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

    async fn get(&self, path: &str) -> Value {
        let response = self.http.get(self.server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn agents(&self) -> Vec<Value> {
        self.get("/api/v1/agents").await.as_array().unwrap().clone()
    }

    async fn agent(&self, name: &str) -> Value {
        self.get(&format!("/api/v1/agents/{name}")).await
    }

    async fn discover(&self) -> Value {
        let (status, report) = self.post("/api/v1/agents/discover", Value::Null).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        report
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A project with three agents in the two default roots and one directory that is not one.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join("worktrees/tester/CLAUDE.md"),
        "# Tester agent\n\nYou own quality: run the test suites and report.\n",
    );
    write(
        &root.join("worktrees/deployer/CLAUDE.md"),
        "---\ncapabilities: [integration, release]\nrole: deployer\n---\n# Deployer\nA quality-minded agent.\n",
    );
    write(
        &root.join("new-worktrees/writer/AGENTS.md"),
        "# Writer\nDocumentation for everything.\n",
    );
    write(
        &root.join("new-worktrees/writer/agent.yml"),
        "capabilities:\n  - documentation\nmetadata:\n  team: docs\n",
    );
    write(&root.join("worktrees/scratch/notes.txt"), "not an agent\n");
    dir
}

fn capability_sources(agent: &Value) -> Vec<(String, String)> {
    agent["discovery"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                format!(
                    "{}:{}",
                    c["source"].as_str().unwrap(),
                    c["file"].as_str().unwrap()
                ),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Every worktree with an agent file is an agent named after its directory, offline until it
/// shows up, with capabilities from keywords or its declarations and their provenance.
#[tokio::test]
async fn worktrees_become_agents_with_capability_provenance() {
    let dir = project();
    let api = Api::start("memory:", dir.path(), &[]);
    let names: Vec<String> = api
        .agents()
        .await
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["deployer", "tester", "writer"]);
    let tester = api.agent("tester").await;
    assert_eq!(tester["status"], "offline");
    assert_eq!(tester["capabilities"], json!(["general", "quality"]));
    assert_eq!(tester["discovery"]["found_by"], "worktree_root");
    assert_eq!(tester["discovery"]["capabilities"][1]["keyword"], "quality");
    let deployer = api.agent("deployer").await;
    assert_eq!(
        capability_sources(&deployer),
        pairs(&[
            ("integration", "declared:CLAUDE.md"),
            ("release", "declared:CLAUDE.md"),
            ("deployer", "role:CLAUDE.md"),
        ]),
        "front matter wins over the keywords of the body"
    );
    let writer = api.agent("writer").await;
    assert_eq!(writer["discovery"]["agent_file"], "AGENTS.md");
    assert_eq!(
        capability_sources(&writer),
        pairs(&[("documentation", "declared:agent.yml")])
    );
    assert_eq!(writer["metadata"]["team"], "docs");
}

fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .output()
        .expect("git is installed");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Linked worktrees that `git worktree list` reports are agents too, wherever they live;
/// the main checkout is not.
#[tokio::test]
async fn linked_git_worktrees_are_discovered() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    write(&repo.join("CLAUDE.md"), "# The project agent\n");
    git(&repo, &["add", "CLAUDE.md"]);
    git(&repo, &["commit", "-q", "-m", "init"]);
    let elsewhere = dir.path().join("analyst");
    git(
        &repo,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "analyst",
            elsewhere.to_str().unwrap(),
        ],
    );
    // The checked-out CLAUDE.md says "agent": rewrite it for this agent.
    write(
        &elsewhere.join("CLAUDE.md"),
        "# Analyst\nIntelligence and analysis.\n",
    );
    let api = Api::start("memory:", &repo, &[]);
    let agents = api.agents().await;
    assert_eq!(agents.len(), 1, "only the linked worktree: {agents:?}");
    let analyst = &agents[0];
    assert_eq!(analyst["name"], "analyst");
    assert_eq!(analyst["discovery"]["found_by"], "git_worktree");
    assert_eq!(analyst["capabilities"], json!(["intelligence"]));
    // A worktree added while the server runs is found by the next scan.
    let second = dir.path().join("second");
    git(
        &repo,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "second",
            second.to_str().unwrap(),
        ],
    );
    let report = api.discover().await;
    let changes: Vec<(&str, &str)> = report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["change"].as_str().unwrap()))
        .collect();
    assert_eq!(changes, [("analyst", "unchanged"), ("second", "created")]);
}

/// Ids do not change on rescans, when the agent registers itself later (its declared
/// capabilities join the discovered ones), or across restarts.
#[tokio::test]
async fn ids_are_stable_across_rescans_registration_and_restarts() {
    let dir = project();
    let data = tempfile::tempdir().unwrap();
    let storage = format!("redb:{}", data.path().join("data.redb").display());
    let mut api = Api::start(&storage, dir.path(), &[]);
    let id = api.agent("tester").await["id"].clone();
    api.discover().await;
    assert_eq!(api.agent("tester").await["id"], id);
    let (status, registered) = api
        .post(
            "/api/v1/agents/register",
            json!({ "name": "tester", "capabilities": ["review"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(registered["agent_id"], id);
    let tester = api.agent("tester").await;
    assert_eq!(tester["status"], "online");
    assert_eq!(
        tester["capabilities"],
        json!(["review", "general", "quality"])
    );
    api.server.restart();
    let tester = api.agent("tester").await;
    assert_eq!(tester["id"], id);
    assert_eq!(
        tester["capabilities"],
        json!(["review", "general", "quality"])
    );
    assert_eq!(api.agents().await.len(), 3, "no duplicates after a restart");
}

/// A worktree that disappears marks its agent gone (not deleted): its messages stay readable,
/// routing skips it, and it comes back with the same id when the worktree does.
#[tokio::test]
async fn a_vanished_worktree_marks_the_agent_gone_and_keeps_its_messages() {
    let dir = project();
    let api = Api::start("memory:", dir.path(), &["--no-discovery-watch"]);
    let id = api.agent("tester").await["id"].clone();
    let (status, _) = api
        .post(
            "/api/v1/messages?sender=lead",
            json!({ "recipient": "tester", "content": "kept while gone" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let saved = dir.path().join("saved-tester");
    std::fs::rename(dir.path().join("worktrees/tester"), &saved).unwrap();
    let report = api.discover().await;
    let gone: Vec<&str> = report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["change"] == "gone")
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(gone, ["tester"]);
    let tester = api.agent("tester").await;
    assert_eq!(tester["discovery"]["gone"], true);
    // Gone agents are not routing candidates, even when online.
    api.post("/api/v1/agents/tester/heartbeat", Value::Null)
        .await;
    let (_, reply) = api
        .post(
            "/api/v1/messages",
            json!({ "recipient": "capability:quality", "content": "run tests" }),
        )
        .await;
    assert_eq!(reply["routed_to"], Value::Null, "{reply}");
    let messages = api.get("/api/v1/messages/tester?limit=10").await;
    assert_eq!(messages[0]["content"], "kept while gone");
    std::fs::rename(&saved, dir.path().join("worktrees/tester")).unwrap();
    let report = api.discover().await;
    let tester_change = report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "tester")
        .unwrap()["change"]
        .clone();
    assert_eq!(tester_change, "returned");
    let tester = api.agent("tester").await;
    assert_eq!(tester["id"], id);
    assert!(tester["discovery"].get("gone").is_none() || tester["discovery"]["gone"] == false);
}

/// With periodic rescans off, a new worktree is still found: the directories are watched.
#[tokio::test]
async fn a_new_worktree_is_found_by_watching() {
    let dir = project();
    let api = Api::start(
        "memory:",
        dir.path(),
        &["--discovery-interval-seconds", "0"],
    );
    assert_eq!(api.agents().await.len(), 3);
    write(
        &dir.path().join("worktrees/late/CLAUDE.md"),
        "# Late\nOrchestration.\n",
    );
    let found = async {
        loop {
            let agents = api.agents().await;
            if let Some(late) = agents.iter().find(|a| a["name"] == "late") {
                return late.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let late = tokio::time::timeout(Duration::from_secs(15), found)
        .await
        .expect("the watcher triggers a rescan");
    assert_eq!(late["capabilities"], json!(["orchestration"]));
}

/// A discovered agent is offline, so a message for its capability waits; when the agent
/// shows up (registers), it gets the message.
#[tokio::test]
async fn a_discovered_agent_gets_waiting_messages_when_it_shows_up() {
    let dir = project();
    let api = Api::start("memory:", dir.path(), &[]);
    let (_, reply) = api
        .post(
            "/api/v1/messages",
            json!({ "recipient": "auto", "content": "please document the new API" }),
        )
        .await;
    assert_eq!(reply["rule"], "documentation");
    assert_eq!(reply["waiting_queue"], "capability:documentation");
    let (status, _) = api
        .post("/api/v1/agents/register", json!({ "name": "writer" }))
        .await;
    assert_eq!(status, StatusCode::OK);
    let messages = api
        .get("/api/v1/messages/writer?limit=10&wait_seconds=5")
        .await;
    assert_eq!(messages[0]["content"], "please document the new API");
}

/// `switchboard discover` asks the running server to rescan and prints what it found.
#[tokio::test]
async fn the_discover_command_asks_the_running_server() {
    let dir = project();
    let api = Api::start("memory:", dir.path(), &["--no-discovery-watch"]);
    write(
        &dir.path().join("worktrees/newcomer/CLAUDE.md"),
        "# Newcomer\n",
    );
    let base = api.server.base();
    let (status, stdout, stderr) = tokio::task::spawn_blocking(move || {
        run_to_end(&["discover", "--server", &base], Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains("newcomer") && stdout.contains("created"),
        "{stdout}"
    );
    assert!(api.agents().await.iter().any(|a| a["name"] == "newcomer"));
}

/// `switchboard discover` without a server says so and exits 1.
#[test]
fn the_discover_command_without_a_server_fails_clearly() {
    let (status, _, stderr) = run_to_end(
        &["discover", "--server", "http://127.0.0.1:9"],
        Duration::from_secs(60),
    );
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("cannot reach the server"), "{stderr}");
}
