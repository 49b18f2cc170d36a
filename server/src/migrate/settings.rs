//! How a migration is asked to run: the flags shared by `switchboard migrate` and
//! `switchboard serve --migrate-now` ([`RunArgs`]), the serve-only flags ([`MigrationArgs`]),
//! the request body of `POST /api/v1/migration/start` ([`StartRequest`]), and the checked
//! settings a run keeps ([`RunSettings`]).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use super::tmux::discover::AGENT_SESSION_DEFAULT;
use super::tmux::TMUX_SOCKET_ENV;

/// Environment variable naming the programs allowed to have text typed into their pane, as
/// `--agent-program` does (comma-separated).
pub const AGENT_PROGRAMS_ENV: &str = "SWITCHBOARD_AGENT_PROGRAMS";

/// Dual-mode length when none is given, in minutes (as the original).
pub const DUAL_MODE_MINUTES_DEFAULT: f64 = 60.0;
/// Longest dual mode, in minutes (one week).
pub const DUAL_MODE_MINUTES_MAX: f64 = 7.0 * 24.0 * 60.0;
/// Agents per batch when none is given (as the original).
pub const BATCH_SIZE_DEFAULT: usize = 2;
/// Most agents in one batch.
pub const BATCH_SIZE_MAX: usize = 100;
/// Time an agent has to acknowledge a check message when none is given, in seconds.
pub const VALIDATION_TIMEOUT_SECONDS_DEFAULT: u64 = 120;
/// Longest time an agent may be given to acknowledge a check message, in seconds.
pub const VALIDATION_TIMEOUT_SECONDS_MAX: u64 = 3600;
/// Most helper script names one run may move aside.
pub const HELPER_SCRIPTS_MAX: usize = 32;
/// The old helper scripts moved aside by the cleanup when none are named.
pub const HELPER_SCRIPTS_DEFAULT: [&str; 2] = ["send-claude-message.sh", "schedule_with_note.sh"];

/// What a server restart does with a migration that had not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartPolicy {
    /// Carry on from the phase it was in (checks in flight get a fresh timeout).
    #[default]
    Resume,
    /// Roll the whole migration back: every agent returns to tmux delivery.
    Rollback,
}

/// Flags describing one run, shared by `migrate` and `serve --migrate-now`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Minutes of dual mode (messages go to the queue and into panes) before batches start;
    /// fractions allowed.
    #[arg(long, value_name = "MINUTES", default_value_t = DUAL_MODE_MINUTES_DEFAULT)]
    pub dual_mode_minutes: f64,
    /// Agents migrated (told and validated) together.
    #[arg(long, value_name = "N", default_value_t = BATCH_SIZE_DEFAULT)]
    pub batch_size: usize,
    /// Seconds an agent has to acknowledge its check message through the queue.
    #[arg(long, value_name = "SECONDS", default_value_t = VALIDATION_TIMEOUT_SECONDS_DEFAULT)]
    pub validation_timeout_seconds: u64,
    /// When one agent of a batch fails validation, roll the whole batch back.
    #[arg(long)]
    pub rollback_whole_batch: bool,
    /// tmux session whose `agent-NAME` windows are agents (`*` for every session).
    #[arg(long, value_name = "SESSION", default_value = AGENT_SESSION_DEFAULT)]
    pub tmux_session: String,
    /// Old helper script to move aside in the cleanup phase (repeatable; default:
    /// send-claude-message.sh and schedule_with_note.sh).
    #[arg(long = "helper-script", value_name = "FILE_NAME")]
    pub helper_scripts: Vec<String>,
    /// Leave the old helper scripts where they are.
    #[arg(long)]
    pub skip_cleanup: bool,
}

/// Flags of `switchboard serve` about migration (flattened into its arguments).
#[derive(Debug, Clone, Args)]
pub struct MigrationArgs {
    /// Start a tmux migration as soon as the server listens, with the run flags below
    /// (implies --enable-migration).
    #[arg(long)]
    pub migrate_now: bool,
    /// tmux server socket name, as `tmux -L NAME` (default: the user's default server).
    #[arg(long, env = TMUX_SOCKET_ENV, value_name = "NAME")]
    pub tmux_socket: Option<String>,
    /// What a restart does with an unfinished migration.
    #[arg(long, value_enum, default_value_t = RestartPolicy::Resume)]
    pub migration_on_restart: RestartPolicy,
    /// Program allowed to have messages typed into its pane (repeatable, or comma-separated;
    /// replaces the default list: claude, codex, aider, gemini, goose, opencode,
    /// cursor-agent, amp, qwen, cat). A shell is never typed into, even when named here.
    #[arg(
        long = "agent-program",
        env = AGENT_PROGRAMS_ENV,
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub agent_programs: Vec<String>,
    /// How a `--migrate-now` migration runs.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Body of `POST /api/v1/migration/start`. Missing fields take the defaults of [`RunArgs`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct StartRequest {
    /// Minutes of dual mode (default 60).
    pub dual_mode_minutes: Option<f64>,
    /// Agents per batch (default 2).
    pub batch_size: Option<usize>,
    /// Seconds to acknowledge a check message (default 120).
    pub validation_timeout_seconds: Option<u64>,
    /// Roll a whole batch back when one of its agents fails.
    pub rollback_whole_batch: bool,
    /// Agents' session (default agent-hive; `*` for all).
    pub tmux_session: Option<String>,
    /// tmux socket name (default: the server's `--tmux-socket`).
    pub tmux_socket: Option<String>,
    /// Helper scripts to move aside (default: send-claude-message.sh, schedule_with_note.sh).
    pub helper_scripts: Vec<String>,
    /// Leave helper scripts alone.
    pub skip_cleanup: bool,
    /// Only answer with the plan.
    pub dry_run: bool,
}

impl From<&RunArgs> for StartRequest {
    fn from(args: &RunArgs) -> Self {
        Self {
            dual_mode_minutes: Some(args.dual_mode_minutes),
            batch_size: Some(args.batch_size),
            validation_timeout_seconds: Some(args.validation_timeout_seconds),
            rollback_whole_batch: args.rollback_whole_batch,
            tmux_session: Some(args.tmux_session.clone()),
            tmux_socket: None,
            helper_scripts: args.helper_scripts.clone(),
            skip_cleanup: args.skip_cleanup,
            dry_run: false,
        }
    }
}

/// The checked settings a run keeps (and persists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Minutes of dual mode.
    pub dual_mode_minutes: f64,
    /// Agents per batch.
    pub batch_size: usize,
    /// Seconds to acknowledge a check message.
    pub validation_timeout_seconds: u64,
    /// Roll a whole batch back when one of its agents fails.
    pub rollback_whole_batch: bool,
    /// Agents' session.
    pub tmux_session: String,
    /// tmux socket name (`None`: the default server). Kept so a restart talks to the same
    /// tmux server whatever its flags.
    pub tmux_socket: Option<String>,
    /// Helper scripts to move aside.
    pub helper_scripts: Vec<String>,
    /// Leave helper scripts alone.
    pub skip_cleanup: bool,
    /// Where worktrees and helper scripts are looked for, and the report is written.
    pub workdir: PathBuf,
    /// The server's URL, as agents are told to reach it.
    pub server_url: String,
}

impl RunSettings {
    /// Checks `request`; `default_socket` is the server's `--tmux-socket`. The error is a
    /// sentence naming the field.
    pub fn check(
        request: &StartRequest,
        default_socket: Option<String>,
        workdir: PathBuf,
        server_url: String,
    ) -> Result<Self, String> {
        let dual_mode_minutes = request
            .dual_mode_minutes
            .unwrap_or(DUAL_MODE_MINUTES_DEFAULT);
        if !dual_mode_minutes.is_finite()
            || !(0.0..=DUAL_MODE_MINUTES_MAX).contains(&dual_mode_minutes)
        {
            return Err(format!(
                "dual_mode_minutes must be between 0 and {DUAL_MODE_MINUTES_MAX}"
            ));
        }
        let batch_size = request.batch_size.unwrap_or(BATCH_SIZE_DEFAULT);
        if !(1..=BATCH_SIZE_MAX).contains(&batch_size) {
            return Err(format!("batch_size must be between 1 and {BATCH_SIZE_MAX}"));
        }
        let validation_timeout_seconds = request
            .validation_timeout_seconds
            .unwrap_or(VALIDATION_TIMEOUT_SECONDS_DEFAULT);
        if !(1..=VALIDATION_TIMEOUT_SECONDS_MAX).contains(&validation_timeout_seconds) {
            return Err(format!(
                "validation_timeout_seconds must be between 1 and {VALIDATION_TIMEOUT_SECONDS_MAX}"
            ));
        }
        let helper_scripts = if request.helper_scripts.is_empty() {
            HELPER_SCRIPTS_DEFAULT
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            request.helper_scripts.clone()
        };
        if helper_scripts.len() > HELPER_SCRIPTS_MAX {
            return Err(format!("at most {HELPER_SCRIPTS_MAX} helper scripts"));
        }
        if let Some(bad) = helper_scripts
            .iter()
            .find(|name| name.is_empty() || name.contains('/') || name.starts_with('.'))
        {
            return Err(format!(
                "helper script {bad:?} must be a plain file name (no `/`, not hidden)"
            ));
        }
        let tmux_session = request
            .tmux_session
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| AGENT_SESSION_DEFAULT.to_string());
        Ok(Self {
            dual_mode_minutes,
            batch_size,
            validation_timeout_seconds,
            rollback_whole_batch: request.rollback_whole_batch,
            tmux_session,
            tmux_socket: request
                .tmux_socket
                .clone()
                .filter(|s| !s.trim().is_empty())
                .or(default_socket),
            helper_scripts,
            skip_cleanup: request.skip_cleanup,
            workdir,
            server_url,
        })
    }

    /// Dual mode's length in milliseconds.
    pub fn dual_mode_ms(&self) -> u64 {
        (self.dual_mode_minutes * 60_000.0).round() as u64
    }

    /// The check timeout in milliseconds.
    pub fn validation_timeout_ms(&self) -> u64 {
        self.validation_timeout_seconds * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(request: StartRequest) -> Result<RunSettings, String> {
        RunSettings::check(&request, Some("sock".into()), ".".into(), "http://x".into())
    }

    #[test]
    fn defaults_are_the_originals() {
        let settings = check(StartRequest::default()).unwrap();
        assert_eq!(settings.dual_mode_minutes, 60.0);
        assert_eq!(settings.batch_size, 2);
        assert_eq!(settings.tmux_session, "agent-hive");
        assert_eq!(settings.tmux_socket.as_deref(), Some("sock"));
        assert_eq!(settings.helper_scripts.len(), 2);
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_field_named() {
        let bad = |request: StartRequest, field: &str| {
            let error = check(request).unwrap_err();
            assert!(error.contains(field), "{error}");
        };
        bad(
            StartRequest {
                batch_size: Some(0),
                ..Default::default()
            },
            "batch_size",
        );
        bad(
            StartRequest {
                dual_mode_minutes: Some(f64::NAN),
                ..Default::default()
            },
            "dual_mode_minutes",
        );
        bad(
            StartRequest {
                validation_timeout_seconds: Some(0),
                ..Default::default()
            },
            "validation_timeout_seconds",
        );
        bad(
            StartRequest {
                helper_scripts: vec!["../x".into()],
                ..Default::default()
            },
            "helper script",
        );
    }
}
