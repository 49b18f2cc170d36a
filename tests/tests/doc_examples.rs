//! The shell examples of the README and docs/agents.md, pasted in order into a shell on a
//! fresh server, work: each ```sh block runs with `bash -euo pipefail`, the built `switchboard`
//! on PATH and `SWITCHBOARD_URL` pointing at a new server, and must exit 0.
//!
//! A block that cannot run here (it starts the server itself, needs another program such as
//! `claude`, or loops until stopped) is marked on the line above its fence with
//! `<!-- not run: REASON -->`; every skipped block must give its reason.

use std::path::{Path, PathBuf};
use std::process::Command;

use switchboard_tests::server_harness::{binary, ServerProcess};

/// The marker on the line before a fence that keeps a block from running.
const NOT_RUN_MARKER: &str = "<!-- not run:";

/// One ```sh block of a document.
#[derive(Debug)]
struct Example {
    /// `README.md:LINE`, for messages.
    place: String,
    script: String,
    /// Why it is not run, when it is marked so.
    not_run: Option<String>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// The ```sh blocks of `document`, in order.
fn examples(document: &str) -> Vec<Example> {
    let path = workspace_root().join(document);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        if lines[index].trim_end() != "```sh" {
            index += 1;
            continue;
        }
        let not_run = index
            .checked_sub(1)
            .map(|before| lines[before].trim())
            .and_then(|before| before.strip_prefix(NOT_RUN_MARKER))
            .map(|reason| reason.trim_end_matches("-->").trim().to_string());
        let start = index + 1;
        let end = (start..lines.len())
            .find(|&line| lines[line].trim_end() == "```")
            .unwrap_or_else(|| panic!("{document}:{} opens a block it never closes", index + 1));
        found.push(Example {
            place: format!("{document}:{}", index + 1),
            script: lines[start..end].join("\n"),
            not_run,
        });
        index = end + 1;
    }
    found
}

/// Runs `script` as a person pasting it would, against `server`.
fn run(script: &str, server: &ServerProcess, scratch: &Path) -> std::process::Output {
    let binary_dir = binary()
        .parent()
        .expect("the binary is in a directory")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        binary_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(scratch)
        .env("PATH", path)
        .env("SWITCHBOARD_URL", server.base())
        .env_remove("SWITCHBOARD_AGENT")
        .env_remove("SWITCHBOARD_TOKEN")
        .output()
        .expect("bash runs")
}

/// Every example of the README and then of docs/agents.md, in order, on one fresh server.
#[test]
fn readme_and_agent_guide_examples_work_when_pasted_in_order() {
    let server = ServerProcess::start("memory:", &[]);
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let mut ran = 0;
    for document in ["README.md", "docs/agents.md"] {
        for example in examples(document) {
            if let Some(reason) = &example.not_run {
                assert!(
                    !reason.is_empty(),
                    "{}: a block that is not run says why",
                    example.place
                );
                continue;
            }
            let output = run(&example.script, &server, scratch.path());
            assert!(
                output.status.success(),
                "the example at {} failed ({}):\n{}\nstdout:\n{}\nstderr:\n{}",
                example.place,
                output.status,
                example.script,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            ran += 1;
        }
    }
    assert!(
        ran >= 2,
        "only {ran} examples ran: the documents lost their examples"
    );
}

/// The README's first message goes to an agent that is not registered yet on a fresh
/// server: the error says how to register it with the CLI, not through a REST route.
#[test]
fn sending_to_an_unregistered_agent_says_how_to_register_it() {
    let server = ServerProcess::start("memory:", &[]);
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let output = run(
        "switchboard send bob 'review PR 12'",
        &server,
        scratch.path(),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("switchboard register --agent bob"),
        "{stderr}"
    );
    assert!(!stderr.contains("/api/v1/"), "{stderr}");
}
