//! `switchboard discover`: asks a running server to rescan its worktrees now
//! (`POST /api/v1/agents/discover`) and prints what it found.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::cli::server_http::ServerHttp;
use crate::cli::stdout::{fail, print};

/// Server asked when neither `--server` nor `SWITCHBOARD_URL` names one.
pub const SERVER_URL_DEFAULT: &str = "http://127.0.0.1:8080";
/// Longest wait for the server's answer (a scan runs git and reads files).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// What to do when no server answers.
const START_HINT: &str =
    "Check that `switchboard serve` is running and that --server (or SWITCHBOARD_URL) names it.";

/// Flags of `switchboard discover`.
#[derive(Debug, Clone, Args)]
pub struct DiscoverArgs {
    /// Base URL of the running server; or several, comma-separated (a hot-standby pair): the
    /// active one is asked.
    #[arg(long, env = "SWITCHBOARD_URL", default_value = SERVER_URL_DEFAULT,
          value_name = "URL[,URL...]")]
    pub server: String,
    /// `--token` (the admin token) and `--ca-cert`.
    #[command(flatten)]
    pub credentials: crate::cli::client::credentials::Credentials,
    /// Print the server's whole report as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs `switchboard discover`; exit code 1 with one paragraph on stderr when it cannot.
pub fn run(args: DiscoverArgs) -> ExitCode {
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
    let printed = runtime.block_on(discover(&args)).and_then(|report| {
        if args.json {
            let text = serde_json::to_string_pretty(&report).expect("JSON values always serialize");
            print(&(text + "\n"))
        } else {
            print(&summary(&report))
        }
    });
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(paragraph) => fail(&paragraph),
    }
}

async fn discover(args: &DiscoverArgs) -> Result<Value, String> {
    let server = ServerHttp::new(&args.server, &args.credentials, REQUEST_TIMEOUT, START_HINT)?;
    server.post("/api/v1/agents/discover", Value::Null).await
}

/// One line per agent (name, what changed, capabilities), then skipped directories.
fn summary(report: &Value) -> String {
    let mut text = String::new();
    let agents = report["agents"].as_array().cloned().unwrap_or_default();
    text.push_str(&format!(
        "{} agents found in {} ms\n",
        agents.len(),
        report["took_ms"]
    ));
    for agent in &agents {
        let capabilities: Vec<&str> = agent["capabilities"]
            .as_array()
            .map(|list| list.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default();
        text.push_str(&format!(
            "  {:<24} {:<9} {}  [{}]\n",
            agent["name"].as_str().unwrap_or("?"),
            agent["change"].as_str().unwrap_or("?"),
            agent["path"].as_str().unwrap_or(""),
            capabilities.join(", ")
        ));
    }
    for skipped in report["skipped"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "  skipped {}: {}\n",
            skipped["path"].as_str().unwrap_or("?"),
            skipped["reason"].as_str().unwrap_or("?")
        ));
    }
    if let Some(error) = report["git_error"].as_str() {
        text.push_str(&format!("  git: {error}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_lists_agents_and_skips() {
        let report = serde_json::json!({
            "took_ms": 3,
            "agents": [{"name": "tester", "change": "created", "path": "/w/tester",
                        "capabilities": [{"name": "quality"}, {"name": "general"}]}],
            "skipped": [{"path": "/w/auto", "reason": "reserved"}]
        });
        let text = summary(&report);
        assert!(text.starts_with("1 agents found in 3 ms\n"), "{text}");
        assert!(
            text.contains("tester") && text.contains("[quality, general]"),
            "{text}"
        );
        assert!(text.contains("skipped /w/auto: reserved"), "{text}");
    }
}
