//! The tmux adapter: every tmux command switchboard runs goes through [`Tmux`], on the tmux
//! server chosen by `--tmux-socket` (`tmux -L NAME`), so tests and operators can point it at
//! a private server and never touch the user's own.
//!
//! - [`target`]: panes addressed by `%pane_id`; `session:window` targets resolved against
//!   `list-panes`, with a missing target an error (never tmux's fallback to the active pane).
//! - [`discover`]: which panes are agents.
//! - [`mod@deliver`]: typing a message into a pane safely, and checking that it was submitted.
//! - [`foreground`]: which program reads a pane; shells and non-agents are never typed into.
//! - `sanitize`: control characters made harmless before anything is typed.

pub mod deliver;
pub mod discover;
pub mod foreground;
mod sanitize;
pub mod target;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

pub use deliver::{deliver, DeliveryOptions, DeliveryOutcome};
pub use foreground::PanePolicy;
pub use sanitize::sanitize;
pub use target::{PaneId, PaneInfo, Target};

/// Environment variable naming the tmux server socket, as `--tmux-socket` does.
pub const TMUX_SOCKET_ENV: &str = "SWITCHBOARD_TMUX_SOCKET";
/// Longest one tmux command may run before it is killed and reported as failed.
pub const TMUX_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// What running tmux can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TmuxError {
    /// The `tmux` program could not be started.
    #[error("cannot run tmux ({0}); install it (e.g. `apt-get install tmux`)")]
    NotInstalled(String),
    /// No tmux server listens on the socket.
    #[error("no tmux server is running on {0}")]
    NoServer(String),
    /// A command took longer than [`TMUX_COMMAND_TIMEOUT`].
    #[error("`tmux {0}` took longer than {TMUX_COMMAND_TIMEOUT:?}")]
    Timeout(String),
    /// A command exited unsuccessfully.
    #[error("`tmux {command}` failed: {stderr}")]
    Failed {
        /// The subcommand.
        command: String,
        /// What tmux said.
        stderr: String,
    },
    /// The pane does not exist (any more).
    #[error("pane {0} does not exist")]
    NoSuchPane(String),
    /// No pane, or more than one, matches a `session:window` target.
    #[error("{0}")]
    BadTarget(String),
}

/// A tmux server: the program and the socket name (`-L`). Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmux {
    program: PathBuf,
    socket: Option<String>,
}

impl Tmux {
    /// The tmux server on socket `socket` (`tmux -L socket`), or the default server when `None`.
    pub fn new(socket: Option<String>) -> Self {
        Self {
            program: PathBuf::from("tmux"),
            socket: socket.filter(|name| !name.trim().is_empty()),
        }
    }

    /// The socket name, if one was chosen.
    pub fn socket(&self) -> Option<&str> {
        self.socket.as_deref()
    }

    /// How the server is named in messages: `tmux -L NAME` or `the default tmux server`.
    pub fn describe(&self) -> String {
        match &self.socket {
            Some(name) => format!("tmux -L {name}"),
            None => "the default tmux server".into(),
        }
    }

    /// Runs `tmux [-L socket] args...` and returns its stdout.
    pub async fn run(&self, args: &[&str]) -> Result<String, TmuxError> {
        self.run_with_input(args, None).await
    }

    /// Like [`Tmux::run`], writing `input` to the command's stdin (for `load-buffer -`).
    pub async fn run_with_input(
        &self,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> Result<String, TmuxError> {
        let command_name = args.first().copied().unwrap_or_default().to_string();
        let mut command = tokio::process::Command::new(&self.program);
        if let Some(socket) = &self.socket {
            command.arg("-L").arg(socket);
        }
        command
            .args(args)
            // Inside a tmux pane, TMUX names the *user's* server; never let it leak in.
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|error| TmuxError::NotInstalled(error.to_string()))?;
        let run = async {
            if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
                stdin.write_all(bytes).await?;
                stdin.shutdown().await?;
            }
            child.wait_with_output().await
        };
        let output = tokio::time::timeout(TMUX_COMMAND_TIMEOUT, run)
            .await
            .map_err(|_| TmuxError::Timeout(command_name.clone()))?
            .map_err(|error| TmuxError::Failed {
                command: command_name.clone(),
                stderr: error.to_string(),
            })?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if stderr.contains("no server running")
            || stderr.contains("error connecting to")
            || stderr.contains("server exited unexpectedly")
        {
            return Err(TmuxError::NoServer(self.describe()));
        }
        if stderr.contains("can't find pane") {
            return Err(TmuxError::NoSuchPane(stderr));
        }
        Err(TmuxError::Failed {
            command: command_name,
            stderr,
        })
    }
}
