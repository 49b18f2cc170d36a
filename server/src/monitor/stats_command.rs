//! `switchboard stats`: asks a running server for its numbers. Without flags it prints a short
//! summary (health, throughput, latency, errors, agents, queues, alerts); with `--export` it
//! prints the history of the last `--hours` hours as JSON (to stdout or `--output FILE`), the
//! body of `GET /api/v1/metrics/export`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use super::history::HISTORY_HOURS_MAX;
use crate::cli::server_http::ServerHttp;
use crate::cli::stdout::{fail, print};

/// Server asked when neither `--server` nor `SWITCHBOARD_URL` names one.
pub const SERVER_URL_DEFAULT: &str = "http://127.0.0.1:8080";
/// Longest wait for the server's answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// What to do when no server answers.
const START_HINT: &str = "Is `switchboard serve` running there? Start it, or name the right \
                          server with --server URL[,URL...] (or SWITCHBOARD_URL).";

/// Flags of `switchboard stats`.
#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// Base URL of the running server; or several, comma-separated (a hot-standby pair): the
    /// active one is asked.
    #[arg(long, env = "SWITCHBOARD_URL", default_value = SERVER_URL_DEFAULT,
          value_name = "URL[,URL...]")]
    pub server: String,
    /// `--token` (the admin token, or an agent's) and `--ca-cert`.
    #[command(flatten)]
    pub credentials: crate::cli::client::credentials::Credentials,
    /// Print the metrics history as JSON instead of a summary.
    #[arg(long)]
    pub export: bool,
    /// Hours of history to export, 1 to 24.
    #[arg(long, default_value_t = HISTORY_HOURS_MAX,
          value_parser = clap::value_parser!(u64).range(1..=HISTORY_HOURS_MAX))]
    pub hours: u64,
    /// Write the export to this file instead of standard output.
    #[arg(long, value_name = "FILE", requires = "export")]
    pub output: Option<PathBuf>,
    /// Print the current numbers as JSON for programs (`GET /api/v1/metrics/current`)
    /// instead of the summary.
    #[arg(long, conflicts_with = "export")]
    pub json: bool,
}

/// Runs `switchboard stats`; exit code 1 with one paragraph on stderr when it cannot.
pub fn run(args: StatsArgs) -> ExitCode {
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
    match runtime.block_on(stats(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(paragraph) => fail(&paragraph),
    }
}

async fn stats(args: &StatsArgs) -> Result<(), String> {
    let server = ServerHttp::new(&args.server, &args.credentials, REQUEST_TIMEOUT, START_HINT)?;
    if args.export {
        let path = format!("/api/v1/metrics/export?hours={}", args.hours);
        let body = server.get(&path).await?;
        let text = serde_json::to_string_pretty(&body).expect("JSON values always serialize");
        return match &args.output {
            Some(path) => std::fs::write(path, text + "\n")
                .map_err(|error| format!("switchboard: cannot write {}: {error}", path.display())),
            None => print(&(text + "\n")),
        };
    }
    let snapshot = server.get("/api/v1/metrics/current").await?;
    if args.json {
        let text = serde_json::to_string_pretty(&snapshot).expect("JSON values always serialize");
        return print(&(text + "\n"));
    }
    print(&summary(&server.base(), &snapshot))
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

fn millis(seconds: &Value) -> String {
    format!("{:.1} ms", number(seconds) * 1000.0)
}

/// The human summary of a snapshot.
fn summary(base: &str, s: &Value) -> String {
    let health = &s["health"];
    let mut out = format!(
        "switchboard at {base}: {} (score {:.1}), up {} s\n",
        health["status"].as_str().unwrap_or("?"),
        number(&health["score"]),
        s["uptime_seconds"]
    );
    let t = &s["throughput"];
    let totals = &s["totals"];
    out += &format!(
        "  throughput  sent {:.1}/s, delivered {:.1}/s, acked {:.1}/s\n",
        number(&t["sent_per_second"]),
        number(&t["delivered_per_second"]),
        number(&t["acked_per_second"])
    );
    out += &format!(
        "  totals      sent {}, delivered {}, acked {}, dead-lettered {}\n",
        totals["sent"], totals["delivered"], totals["acked"], totals["dead_lettered"]
    );
    let ack = &s["latency"]["ack"];
    out += &format!(
        "  latency     send→ack p50 {}, p95 {}, p99 {} ({} acks in 5 min)\n",
        millis(&ack["p50_seconds"]),
        millis(&ack["p95_seconds"]),
        millis(&ack["p99_seconds"]),
        ack["count"]
    );
    let e = &s["errors"];
    out += &format!(
        "  errors      error rate {:.1} %, routing success {:.1} %\n",
        number(&e["error_rate"]) * 100.0,
        number(&e["routing_success_rate"]) * 100.0
    );
    out += &format!(
        "  agents      {} of {} available\n",
        s["agents"]["available"], s["agents"]["total"]
    );
    let q = &s["queues"];
    out += &format!(
        "  queues      {} ready, {} delayed, {} leased, {} dead\n",
        q["ready"], q["delayed"], q["leased"], q["dead"]
    );
    let active = s["alerts"]["active"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if active.is_empty() {
        out += "  alerts      none active\n";
    }
    for alert in &active {
        out += &format!(
            "  alert       {}: {} (since {})\n",
            alert["severity"].as_str().unwrap_or("?"),
            alert["message"].as_str().unwrap_or("?"),
            alert["started_at"].as_str().unwrap_or("?")
        );
    }
    for issue in health["issues"].as_array().into_iter().flatten() {
        out += &format!("  issue       {}\n", issue.as_str().unwrap_or("?"));
    }
    out
}
