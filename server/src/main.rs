//! The `switchboard` binary: parses the command line and hands it to [`switchboard_server::cli`].

use clap::Parser;

/// mimalloc instead of the system allocator: the server allocates and frees many small
/// buffers per message (frames, JSON, Redis commands), and glibc's malloc was a fifth of its
/// CPU under load. Built without transparent huge pages (`no_thp`): mimalloc returns freed
/// memory to the OS after a second, and each page it touches again was then a 2 MiB huge page
/// the kernel had to zero, 6% of the server's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    switchboard_server::cli::run(switchboard_server::cli::Cli::parse())
}
