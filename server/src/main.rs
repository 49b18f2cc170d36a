//! The `switchboard` binary: parses the command line and hands it to [`switchboard_server::cli`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    switchboard_server::cli::run(switchboard_server::cli::Cli::parse())
}
