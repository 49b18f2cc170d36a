//! `switchboard-loadgen --messages 10000 --agents 50`: end-to-end load against a running
//! switchboard server, with a progress bar and a summary table. The same as
//! `switchboard loadgen` (the load generator lives in the server crate); kept for scripts and
//! the README's figures.

use clap::Parser;

/// `switchboard-loadgen`'s command line: `switchboard loadgen`'s options.
#[derive(Debug, Parser)]
#[command(
    name = "switchboard-loadgen",
    version,
    about = "End-to-end load test of a running switchboard server"
)]
struct Cli {
    #[command(flatten)]
    args: switchboard_server::cli::loadgen::Args,
}

fn main() -> std::process::ExitCode {
    switchboard_server::cli::loadgen::main(Cli::parse().args)
}
