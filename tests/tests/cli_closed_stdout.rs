//! The operator commands (`stats`, `discover`, `migrate --dry-run`, `tmux-send`, `loadgen`,
//! `--help`, `--version`) with a stdout whose reader has left (`switchboard stats | true`) end
//! quietly, as Unix tools do: no panic, no backtrace, not Rust's panic exit code 101, and
//! nothing on stderr (the reader left; there is nobody to tell). The client commands' closed
//! pipe is tested in `cli_people.rs`.

mod tmux_lab;

use std::process::Stdio;
use std::time::Duration;

use switchboard_tests::server_harness::{binary, ServerProcess};
use tmux_lab::TmuxLab;
use tokio::process::Command;

/// The exit code of a Rust program that panicked.
const PANIC_EXIT_CODE: i32 = 101;
/// Longest a command may run in this test.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// How a command ended.
#[derive(Debug)]
struct Ended {
    code: Option<i32>,
    stderr: String,
}

/// Runs `switchboard <args>` with stdout the write end of a pipe whose only reader, `true`,
/// has already exited.
async fn run_with_closed_stdout(args: &[&str]) -> Ended {
    let mut reader = std::process::Command::new("true")
        .stdin(Stdio::piped())
        .spawn()
        .expect("start true");
    let writer = reader.stdin.take().expect("piped stdin");
    reader.wait().expect("true exits");
    let child = Command::new(binary())
        .args(args)
        .env_remove("SWITCHBOARD_URL")
        .env_remove("SWITCHBOARD_AGENT")
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start switchboard");
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("switchboard {args:?} did not finish in time"))
        .expect("wait for switchboard");
    Ended {
        code: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_into_a_closed_pipe_exit_quietly() {
    let lab = TmuxLab::new();
    let pane = lab.reader("agent-hive", "agent-alpha");
    let workdir = lab.dir().display().to_string();
    let server = ServerProcess::start(
        "memory:",
        &[
            "--enable-migration",
            "--tmux-socket",
            &lab.socket,
            "--workdir",
            &workdir,
        ],
    );
    let base = server.base();
    let at_server = ["--server", base.as_str()];
    let commands: Vec<Vec<&str>> = vec![
        [&["stats"][..], &at_server].concat(),
        [&["stats", "--json"][..], &at_server].concat(),
        [&["discover"][..], &at_server].concat(),
        [&["discover", "--json"][..], &at_server].concat(),
        [&["migrate", "--dry-run"][..], &at_server].concat(),
        // `alpha` is not registered: the text is typed into its pane, then reported.
        [
            &["tmux-send", "--tmux-socket", &lab.socket][..],
            &at_server,
            &["agent-hive:agent-alpha", "hello"],
        ]
        .concat(),
        [
            &[
                "loadgen",
                "--messages",
                "20",
                "--agents",
                "2",
                "--producers",
                "2",
            ][..],
            &at_server,
        ]
        .concat(),
        vec!["--help"],
        vec!["--version"],
    ];
    let mut loud = Vec::new();
    for args in &commands {
        let ended = run_with_closed_stdout(args).await;
        let quiet = ended.code.is_some_and(|code| code != PANIC_EXIT_CODE)
            && !ended.stderr.contains("panicked")
            && ended.stderr.trim().is_empty();
        if !quiet {
            loud.push(format!("switchboard {}: {ended:?}", args.join(" ")));
        }
    }
    assert!(loud.is_empty(), "not quiet:\n{}", loud.join("\n"));
    // The tmux-send above got as far as printing: its text reached the pane.
    assert_eq!(pane.wait_lines(1, COMMAND_TIMEOUT), ["hello"]);
}
