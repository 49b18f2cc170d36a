//! `switchboard mcp --agent NAME`: a Model Context Protocol server on stdio (the `rmcp`
//! crate) that gives a model switchboard as tools — `send_message`, `check_inbox`,
//! `ack_message`, `wait_for_message`, `ask`, `reply`, `list_agents`, `message_status` — acting
//! as agent NAME against a running server over HTTP (the same client as the CLI commands).
//!
//! Setup for Claude Code: `claude mcp add switchboard -- switchboard mcp --agent NAME`
//! (see `docs/agents.md` for other MCP clients). Stdout carries the protocol only; logs go to
//! stderr.

mod params;
mod tools;

use std::process::ExitCode;

use clap::Args;
use rmcp::ServiceExt;

use crate::cli::client::identity::Connection;

/// Flags of `switchboard mcp`.
#[derive(Debug, Clone, Args)]
pub struct McpArgs {
    #[command(flatten)]
    pub connection: Connection,
}

/// Serves MCP on stdin/stdout until the client closes stdin; exit 1 when it cannot start.
pub fn run(args: McpArgs) -> ExitCode {
    let Some(agent) = args.connection.identity() else {
        eprintln!(
            "switchboard mcp: who is the agent? Pass --agent NAME (or SWITCHBOARD_AGENT), or start \
             it inside the agent's worktree (a directory holding CLAUDE.md or AGENTS.md)"
        );
        return ExitCode::from(1);
    };
    let client = match args.connection.client() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("switchboard mcp: {error}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard mcp: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let server = tools::SwitchboardTools::new(client, agent);
    let served = runtime.block_on(async move {
        let running = server
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|error| error.to_string())?;
        running.waiting().await.map_err(|error| error.to_string())
    });
    match served {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard mcp: {error}");
            ExitCode::from(1)
        }
    }
}
