//! Who the caller is and which server it talks to: `--server` / `SWITCHBOARD_URL` (one URL, or
//! a comma-separated list of a hot-standby pair: see [`super::servers`]), and
//! `--agent` / `SWITCHBOARD_AGENT`, else the agent whose worktree holds the current directory
//! (the nearest directory upwards holding a `CLAUDE.md` or `AGENTS.md`, named like the agent,
//! as discovery names it).

use std::path::Path;
use std::time::Duration;

use clap::Args;

use super::api::{Client, ClientError, REQUEST_TIMEOUT_SECONDS_DEFAULT, SERVER_URL_DEFAULT};
use super::credentials::Credentials;
use super::Failure;

/// Files that mark a directory as an agent's worktree (as agent discovery reads them).
pub const WORKTREE_MARKERS: [&str; 2] = ["CLAUDE.md", "AGENTS.md"];
/// Directories looked at upwards from the current one for a worktree marker.
pub const WORKTREE_SEARCH_DEPTH_MAX: usize = 64;

/// Where the server is and who is asking: flags shared by every client command.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Base URL of the running server; or several, comma-separated (a hot-standby pair): the
    /// client finds the active one, skipping unreachable servers and standbys, and follows it
    /// when it changes.
    #[arg(long, env = "SWITCHBOARD_URL", default_value = SERVER_URL_DEFAULT,
          value_name = "URL[,URL...]")]
    pub server: String,
    /// Your agent name. Default: SWITCHBOARD_AGENT, else the worktree you are in (the nearest
    /// directory upwards holding CLAUDE.md or AGENTS.md).
    #[arg(long, env = "SWITCHBOARD_AGENT", value_name = "NAME")]
    pub agent: Option<String>,
    /// `--token` and `--ca-cert`.
    #[command(flatten)]
    pub credentials: Credentials,
    /// Longest wait for the server's answer to one request, in seconds (long polls add their
    /// wait). A send that gets none is retried with its idempotency key.
    #[arg(long, env = "SWITCHBOARD_REQUEST_TIMEOUT", value_name = "SECONDS",
          default_value_t = REQUEST_TIMEOUT_SECONDS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,
    /// How long wait, inbox, ask and tail keep reconnecting to a server that went away (a
    /// restart), and how long any command given several servers looks for the active one,
    /// before they give up (exit 4), in seconds.
    #[arg(long, env = "SWITCHBOARD_RECONNECT_TIMEOUT", value_name = "SECONDS",
          default_value_t = super::retry::RECONNECT_SECONDS_DEFAULT)]
    pub reconnect_timeout: u64,
}

impl Connection {
    /// A client of the server, presenting the token.
    pub fn client(&self) -> Result<Client, ClientError> {
        Ok(
            Client::with_credentials(&self.server, &self.credentials)?.with_patience(
                Duration::from_secs(self.request_timeout),
                Duration::from_secs(self.reconnect_timeout),
            ),
        )
    }

    /// The caller's agent name, if it can be told.
    pub fn identity(&self) -> Option<String> {
        let named = self
            .agent
            .as_deref()
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_string);
        named.or_else(|| {
            let here = std::env::current_dir().ok()?;
            worktree_agent(&here)
        })
    }

    /// The caller's agent name, or a failure saying how to give one.
    pub fn require_identity(&self) -> Result<String, Failure> {
        self.identity().ok_or_else(|| {
            Failure::usage(
                "who are you? Name your agent with --agent NAME or SWITCHBOARD_AGENT=NAME, or \
                 run this inside the agent's worktree (a directory holding CLAUDE.md or \
                 AGENTS.md)",
            )
        })
    }
}

/// The agent whose worktree holds `start`: the name of the nearest directory at or above it
/// that holds one of [`WORKTREE_MARKERS`].
pub fn worktree_agent(start: &Path) -> Option<String> {
    start
        .ancestors()
        .take(WORKTREE_SEARCH_DEPTH_MAX)
        .find(|dir| WORKTREE_MARKERS.iter().any(|file| dir.join(file).is_file()))
        .and_then(|dir| dir.file_name())
        .map(|name| name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_directory_with_a_marker_names_the_agent() {
        let root = std::env::temp_dir().join(format!("sb-identity-{}", std::process::id()));
        let worktree = root.join("worktrees").join("frontend");
        let deep = worktree.join("src").join("components");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(worktree.join("AGENTS.md"), "# frontend").unwrap();
        assert_eq!(worktree_agent(&deep).as_deref(), Some("frontend"));
        assert_eq!(worktree_agent(&worktree).as_deref(), Some("frontend"));
        assert_eq!(worktree_agent(&root.join("worktrees")), None);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
