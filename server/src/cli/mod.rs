//! The command line: one subcommand per job. `serve` runs the server; later issues add client
//! and operator commands beside it.

pub mod client;
pub mod loadgen;
mod migrate;
mod serve;
pub(crate) mod server_http;
pub mod stdout;
mod tmux_send;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::ServeArgs;

/// `switchboard`: message bus for AI coding agents.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about, after_help = client::EXIT_CODES_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the REST + WebSocket server.
    Serve(ServeArgs),
    /// Show a running server's health and numbers, or export its metrics history as JSON.
    Stats(crate::monitor::stats_command::StatsArgs),
    /// Migrate agents from tmux messaging to the queue (discovery, dual mode, batches,
    /// validation, cleanup), following the run on a server started with --enable-migration.
    Migrate(migrate::MigrateArgs),
    /// Drop-in for `send-claude-message.sh session:window MESSAGE`: send through the queue
    /// (typed into the pane too while its agent is in dual mode).
    TmuxSend(tmux_send::TmuxSendArgs),
    /// Ask a running server to rescan its worktrees for agents now, and show what it found.
    Discover(crate::registry::discovery::command::DiscoverArgs),
    /// End-to-end load test of a running server (the same as the `switchboard-loadgen`
    /// binary): registers agents, sends and receives, prints a summary, removes the agents.
    Loadgen(loadgen::Args),
    /// The agent tools: send, inbox, ack, nack, wait, ask, reply, agents, status, tail, hook,
    /// mcp (see [`client`]).
    #[command(flatten)]
    Client(client::ClientCommand),
}

/// Runs the command; the exit code is 0 on success, 1 when it could not do its job (client
/// commands tell more outcomes apart: [`client::EXIT_CODES_HELP`]).
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Stats(args) => crate::monitor::stats_command::run(args),
        Command::Migrate(args) => migrate::run(args),
        Command::TmuxSend(args) => tmux_send::run(args),
        Command::Discover(args) => crate::registry::discovery::command::run(args),
        Command::Loadgen(args) => loadgen::main(args),
        Command::Client(command) => client::run(command),
    }
}
