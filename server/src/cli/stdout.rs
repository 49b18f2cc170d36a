//! Standard output for every command but `serve`: a reader that went away
//! (`switchboard stats | head -1`, `switchboard agents | true`) ends the command quietly, as
//! Unix tools do, where `println!` would panic (Rust ignores SIGPIPE, so the write fails with
//! a broken pipe and `println!` turns that into a panic, exit 101, backtrace on stderr).
//!
//! The client commands print through `client::output`, which writes here; the operator
//! commands (stats, discover, migrate, tmux-send, loadgen) call [`print`] and end with
//! [`fail`], which says nothing for a reader that left.

use std::io::Write;
use std::process::ExitCode;

/// Why standard output could not be written.
#[derive(Debug)]
pub enum StdoutError {
    /// The reader closed its end: nobody is left to tell, so the command ends quietly.
    ReaderGone,
    /// Any other failure (a full disk behind a redirect), worth a message.
    Failed(std::io::Error),
}

/// Writes `text` to stdout as it is, and flushes.
pub fn write(text: &str) -> Result<(), StdoutError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::BrokenPipe => StdoutError::ReaderGone,
            _ => StdoutError::Failed(error),
        })
}

/// [`write`] for the operator commands, whose failures are one paragraph: an empty one when
/// the reader left (see [`fail`]).
pub fn print(text: &str) -> Result<(), String> {
    write(text).map_err(|error| match error {
        StdoutError::ReaderGone => String::new(),
        StdoutError::Failed(error) => {
            format!("switchboard: cannot write to standard output: {error}")
        }
    })
}

/// Ends an operator command that failed: its paragraph on stderr (nothing when it is empty,
/// the reader of stdout having left), exit code 1.
pub fn fail(paragraph: &str) -> ExitCode {
    if !paragraph.is_empty() {
        eprintln!("{paragraph}");
    }
    ExitCode::from(1)
}
