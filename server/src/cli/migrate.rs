//! `switchboard migrate`: starts a tmux migration on a running server and follows it, phase
//! by phase (discovery → dual mode → batches → validation → cleanup), then writes
//! `migration_report.json` and prints its summary. The server does the work (it owns the
//! queue and the state, and survives this command): Ctrl-C only stops watching.
//!
//! Other modes: `--dry-run` prints the plan; `--follow` watches a run already going;
//! `--proceed` ends dual mode now; `--rollback` rolls the whole migration back.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use crate::cli::server_http::ServerHttp;
use crate::cli::stdout::{fail, print};
use crate::migrate::model::{MigrationRun, Phase};
use crate::migrate::report::{self, Report, REPORT_FILE};
use crate::migrate::settings::{RunArgs, StartRequest};
use crate::migrate::tmux::TMUX_SOCKET_ENV;
use crate::monitor::stats_command::SERVER_URL_DEFAULT;
use crate::time::iso8601;

/// How often the status is asked for while following.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Longest wait for one answer of the server.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// What to do when no server answers, for `migrate` and `tmux-send`.
pub(crate) const START_HINT: &str = "Start it with `switchboard serve --enable-migration`, or \
                                     point --server (SWITCHBOARD_URL) at it.";

/// The running server (the active one of `--server URL[,URL...]`), over HTTP.
pub(crate) fn server(
    servers: &str,
    credentials: &crate::cli::client::credentials::Credentials,
) -> Result<ServerHttp, String> {
    ServerHttp::new(servers, credentials, REQUEST_TIMEOUT, START_HINT)
}

/// Flags of `switchboard migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Base URL of the running server (started with --enable-migration); or several,
    /// comma-separated (a hot-standby pair): the active one is used.
    #[arg(long, env = "SWITCHBOARD_URL", default_value = SERVER_URL_DEFAULT,
          value_name = "URL[,URL...]")]
    pub server: String,
    /// `--token` (the admin token) and `--ca-cert`.
    #[command(flatten)]
    pub credentials: crate::cli::client::credentials::Credentials,
    /// tmux server socket name (`tmux -L NAME`); default: the server's --tmux-socket.
    #[arg(long, env = TMUX_SOCKET_ENV, value_name = "NAME")]
    pub tmux_socket: Option<String>,
    /// Print the plan (agents, batches, scripts to move) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Follow the migration already running instead of starting one.
    #[arg(long, conflicts_with = "dry_run")]
    pub follow: bool,
    /// End dual mode now, so the batches start.
    #[arg(long, conflicts_with_all = ["dry_run", "rollback"])]
    pub proceed: bool,
    /// Roll the whole migration back: every agent returns to tmux delivery and is told so.
    #[arg(long, conflicts_with = "dry_run")]
    pub rollback: bool,
    /// Why, with --rollback (shown to the agents and in the report).
    #[arg(long, requires = "rollback")]
    pub reason: Option<String>,
    /// Where to write the report.
    #[arg(long, value_name = "FILE", default_value = REPORT_FILE)]
    pub report: PathBuf,
    /// How the run goes.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Runs `switchboard migrate`. Exit code 0 when the migration completed (even with some agents
/// rolled back), 1 when it was rolled back, failed, or could not be started.
pub fn run(args: MigrateArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(migrate(&args)) {
        Ok(code) => code,
        Err(paragraph) => fail(&paragraph),
    }
}

async fn migrate(args: &MigrateArgs) -> Result<ExitCode, String> {
    let server = server(&args.server, &args.credentials)?;
    if args.rollback {
        let body = json!({ "reason": args.reason });
        server.post("/api/v1/migration/rollback", body).await?;
        print("The migration was rolled back; every agent is on tmux delivery again.\n")?;
        finish(&server, args).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.proceed {
        server.post("/api/v1/migration/proceed", json!({})).await?;
        print("Dual mode ends now; the batches start.\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.follow {
        let mut request = StartRequest::from(&args.run);
        request.tmux_socket = args.tmux_socket.clone();
        request.dry_run = args.dry_run;
        let body = serde_json::to_value(&request).expect("a start request always serializes");
        let answer = server.post("/api/v1/migration/start", body).await?;
        if args.dry_run {
            print(answer["text"].as_str().unwrap_or_default())?;
            return Ok(ExitCode::SUCCESS);
        }
        print(&format!(
            "Migration {} started on {}. Ctrl-C stops watching; the migration goes on in the \
             server (watch again with --follow, roll back with --rollback).\n",
            answer["migration_id"].as_str().unwrap_or("?"),
            server.base()
        ))?;
    }
    let phase = follow(&server).await?;
    finish(&server, args).await?;
    Ok(if phase == Phase::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints each new event until the run is final; returns the final phase.
async fn follow(server: &ServerHttp) -> Result<Phase, String> {
    let live = std::io::stdout().is_terminal();
    let mut printed = 0;
    loop {
        let status = server.get("/api/v1/migration/status").await?;
        let Some(run) = status.get("run").filter(|run| !run.is_null()) else {
            return Err("switchboard: the server has no migration to follow".into());
        };
        let run: MigrationRun = serde_json::from_value(run.clone())
            .map_err(|error| format!("switchboard: unreadable migration status: {error}"))?;
        if live {
            // Clear the countdown line before printing events over it.
            print("\r\x1b[K")?;
        }
        let already = printed;
        for event in run.events.iter().filter(|event| event.seq > already) {
            print(&format!("{}  {}\n", &iso8601(event.at)[11..19], event.text))?;
            printed = event.seq;
        }
        if run.phase.is_final() {
            return Ok(run.phase);
        }
        if live {
            print(&progress_line(&run, now_ms()))?;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// One line saying where the run is: `[3/5] batches: batch 2/4 — 3 migrated, 1 rolled back`.
fn progress_line(run: &MigrationRun, now: u64) -> String {
    let step = run.phase.step().unwrap_or(Phase::STEPS);
    let migrated = run.agents.iter().filter(|a| !a.uses_tmux()).count();
    let rolled_back = run
        .agents
        .iter()
        .filter(|a| {
            matches!(
                a.stage,
                crate::migrate::model::AgentStage::RolledBack { .. }
            )
        })
        .count();
    let detail = match run.phase {
        Phase::DualMode => {
            let left = run.dual_mode_until.unwrap_or(now).saturating_sub(now) / 1000;
            format!(
                "{}m{:02}s left (end it now with --proceed)",
                left / 60,
                left % 60
            )
        }
        Phase::Batches => format!(
            "batch {}/{}",
            run.current_batch.map_or(0, |b| b + 1),
            run.batches_total
        ),
        _ => String::new(),
    };
    format!(
        "[{step}/{}] {} {detail} — {} agent(s), {migrated} migrated, {rolled_back} rolled back",
        Phase::STEPS,
        run.phase.name(),
        run.agents.len()
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Fetches the report, writes it to `--report`, and prints the summary.
async fn finish(server: &ServerHttp, args: &MigrateArgs) -> Result<(), String> {
    let body = server.get("/api/v1/migration/report").await?;
    let report: Report = serde_json::from_value(body)
        .map_err(|error| format!("switchboard: unreadable migration report: {error}"))?;
    report::write(&report, &args.report).map_err(|error| {
        format!(
            "switchboard: cannot write the report to {}: {error}",
            args.report.display()
        )
    })?;
    print(&report.summary())?;
    print(&format!("Report written to {}\n", args.report.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::settings::RunSettings;

    #[test]
    fn the_progress_line_counts_down_dual_mode() {
        let settings = RunSettings::check(
            &StartRequest::default(),
            None,
            ".".into(),
            "http://x".into(),
        )
        .unwrap();
        let mut run = MigrationRun::new("id".into(), settings, 0);
        run.phase = Phase::DualMode;
        run.dual_mode_until = Some(125_000);
        let line = progress_line(&run, 0);
        assert!(line.starts_with("[2/5] dual_mode 2m05s left"), "{line}");
    }
}
