//! Shared by the client-command tests: a running server (memory storage) with registered
//! agents, and a runner for `switchboard <client command>` against it.
//!
//! Each command runs with `SWITCHBOARD_URL` pointing at the test server, without any
//! `SWITCHBOARD_AGENT` from the environment, in an empty temporary directory (so worktree
//! detection finds nothing unless a test sets it up).

#![allow(dead_code)] // each test file uses its own part of this module

pub mod fake_server;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use switchboard_tests::server_harness::{binary, ServerProcess};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

/// Longest a client command may run in these tests.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A finished command: exit code and output.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts exit code 0 and returns self.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "exit {}; stderr:\n{}\nstdout:\n{}",
            self.code, self.stderr, self.stdout
        );
        self
    }

    /// Standard output parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.stdout))
    }
}

/// A server and the means to drive it.
pub struct Bus {
    /// The running server.
    pub server: ServerProcess,
    http: reqwest::Client,
    /// An empty directory the commands run in.
    pub scratch: tempfile::TempDir,
}

impl Bus {
    /// Starts a server on memory storage and registers `agents`.
    pub async fn start(agents: &[&str]) -> Self {
        Self::start_with(agents, &[]).await
    }

    /// Like [`Bus::start`], with extra `serve` flags (`agents` are registered without a
    /// token, so in token mode pass none and register with tokens yourself).
    pub async fn start_with(agents: &[&str], serve_flags: &[&str]) -> Self {
        Self::start_on("memory:", agents, serve_flags).await
    }

    /// Like [`Bus::start_with`], on the storage at `storage` (e.g. `redb:PATH`, to restart).
    pub async fn start_on(storage: &str, agents: &[&str], serve_flags: &[&str]) -> Self {
        let bus = Self {
            server: ServerProcess::start(storage, serve_flags),
            http: reqwest::Client::new(),
            scratch: tempfile::tempdir().expect("a temporary directory"),
        };
        for agent in agents {
            bus.register(agent).await;
        }
        bus
    }

    /// Registers an agent over the API.
    pub async fn register(&self, name: &str) {
        let (status, body) = self
            .post("/api/v1/agents/register", json!({ "name": name }))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// POSTs JSON to the server.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.server.url(path))
            .json(&body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GETs JSON from the server.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.server.url(path))
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The command, set up to talk to this server from the scratch directory.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_in(args, self.scratch.path())
    }

    /// Like [`Bus::command`], run in `dir`.
    pub fn command_in(&self, args: &[&str], dir: &Path) -> Command {
        let mut command = Command::new(binary());
        command
            .args(args)
            .env("SWITCHBOARD_URL", self.server.base())
            .env_remove("SWITCHBOARD_AGENT")
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `switchboard <args>` to the end.
    pub async fn run(&self, args: &[&str]) -> Run {
        finish(self.command(args)).await
    }

    /// Runs `switchboard <args>` with `input` on stdin.
    pub async fn run_with_stdin(&self, args: &[&str], input: &str) -> Run {
        let mut command = self.command(args);
        command.stdin(Stdio::piped());
        let mut child = command.spawn().expect("start switchboard");
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(input.as_bytes())
            .await
            .expect("write stdin");
        drop(stdin);
        wait(child).await
    }

    /// Starts `switchboard <args>` in the background.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).spawn().expect("start switchboard")
    }

    /// Sends `content` from `sender` to `to` with the CLI; returns the message id.
    pub async fn send(&self, sender: &str, to: &str, content: &str) -> String {
        let run = self
            .run(&["send", to, content, "--agent", sender, "--json"])
            .await;
        run.ok();
        run.json()["message_id"]
            .as_str()
            .expect("an id")
            .to_string()
    }

    /// A directory tree `worktrees/<agent>/CLAUDE.md` with a `src/` below; returns `src`.
    pub fn worktree(&self, agent: &str) -> PathBuf {
        let root = self.scratch.path().join("worktrees").join(agent);
        std::fs::create_dir_all(root.join("src")).expect("create the worktree");
        std::fs::write(root.join("CLAUDE.md"), format!("# {agent}\n")).expect("write CLAUDE.md");
        root.join("src")
    }
}

/// Runs a prepared command to the end.
pub async fn finish(mut command: Command) -> Run {
    wait(command.spawn().expect("start switchboard")).await
}

/// Waits for a started command (at most [`COMMAND_TIMEOUT`]).
pub async fn wait(child: Child) -> Run {
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .expect("the command finishes in time")
        .expect("wait for switchboard");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
