//! `switchboard-loadgen --messages 10000 --agents 50`: end-to-end load against a running
//! switchboard server, with a progress bar and a summary table.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = switchboard_bench::loadgen::Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("cannot start the tokio runtime");
    match runtime.block_on(switchboard_bench::loadgen::run(args)) {
        Ok(report) if report.lost == 0 => std::process::ExitCode::SUCCESS,
        Ok(_) => std::process::ExitCode::from(1),
        Err(error) => {
            eprintln!("switchboard-loadgen: {error}");
            std::process::ExitCode::from(2)
        }
    }
}
