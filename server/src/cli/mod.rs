//! The command line: one subcommand per job. `serve` runs the server; later issues add client
//! and operator commands beside it.

mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::ServeArgs;

/// `switchboard`: message bus for AI coding agents.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
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
}

/// Runs the command; the exit code is 0 on success, 1 when it could not do its job.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve::run(args),
    }
}
