//! How client commands print: aligned tables and message blocks for people, JSON for
//! programs.
//!
//! Text for people shows what other agents wrote, so it never reaches the terminal raw: every
//! control character but newline and tab (ESC, BEL, CR, ...) and every bidirectional override
//! is shown as an escape (`\x1b`, `\r`, `\u{202e}`), so a message cannot recolour, retitle or
//! overwrite the reader's terminal. JSON carries the exact text (JSON escapes them itself).
//!
//! Everything goes through [`print_text`] or [`print_json`]: a stdout closed by its reader
//! (`switchboard agents | head -1`) ends the command quietly, before anything else it would
//! do after printing (such as acking what it could not show).

use std::borrow::Cow;

use serde::Serialize;

use super::{Failure, EXIT_FAILURE};
use crate::api::wire::{InboxMessage, Priority};
use crate::cli::stdout::StdoutError;

/// Widest a table cell is printed, in characters; longer cells end with `…`.
pub const CELL_CHARS_MAX: usize = 60;

/// Prints `value` as pretty JSON on stdout (exact: no escaping beyond JSON's).
pub fn print_json(value: &impl Serialize) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value).expect("wire values always serialize");
    text.push('\n');
    write_stdout(&text)
}

/// Prints one line of JSON as the server sent it (`tail --json`).
pub fn print_json_line(line: &str) -> Result<(), Failure> {
    write_stdout(&format!("{line}\n"))
}

/// Prints text for people on stdout, control characters escaped (see [`printable`]).
pub fn print_text(text: &str) -> Result<(), Failure> {
    write_stdout(&printable(text))
}

/// Writes to stdout and flushes; a reader that went away is a quiet failure.
fn write_stdout(text: &str) -> Result<(), Failure> {
    crate::cli::stdout::write(text).map_err(|error| match error {
        StdoutError::ReaderGone => Failure {
            message: String::new(),
            code: EXIT_FAILURE,
        },
        StdoutError::Failed(error) => {
            Failure::usage(format!("cannot write to standard output: {error}"))
        }
    })
}

/// `text` with control characters other than newline and tab, and bidirectional overrides,
/// shown as escapes: `\r`, `\x1b` for ASCII ones, `\u{9b}` for others. A `\r\n` line end
/// counts as a newline. Backslashes are left alone, so code in messages reads as written.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            continue;
        }
        if !needs_escape(c) {
            out.push(c);
        } else if c == '\r' {
            out.push_str("\\r");
        } else if c.is_ascii() {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c)
}

/// Characters that reorder the text around them (Trojan Source): shown as escapes too.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
}

/// A table with a header row, columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| clip(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(&cells) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn clip(cell: &str) -> String {
    let single_line = printable(cell).replace(['\n', '\t'], " ");
    if single_line.chars().count() <= CELL_CHARS_MAX {
        return single_line;
    }
    let mut clipped: String = single_line.chars().take(CELL_CHARS_MAX - 1).collect();
    clipped.push('…');
    clipped
}

/// `critical`, `high`, ... as a word.
pub fn priority_word(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "low",
        Priority::Medium => "medium",
        Priority::High => "high",
        Priority::Critical => "critical",
    }
}

/// `12:34:56` of an ISO-8601 time (the whole text when it is not one).
pub fn clock(iso: &str) -> &str {
    iso.get(11..19).unwrap_or(iso)
}

/// One message for people and agents: a header line, then the text indented.
pub fn message_block(message: &InboxMessage) -> String {
    let mut header = format!(
        "● {} from {} · {} · {}",
        message.id,
        message.sender,
        priority_word(message.priority),
        message.created_at
    );
    if let Some(question) = &message.reply_to {
        header.push_str(&format!(" · reply to {question}"));
    }
    if let Some(thread) = message.metadata.get("thread_id").and_then(|v| v.as_str()) {
        header.push_str(&format!(" · thread {thread}"));
    }
    if message.attempts > 1 {
        header.push_str(&format!(
            " · delivery {} of {}",
            message.attempts, message.max_attempts
        ));
    }
    let mut out = header;
    out.push('\n');
    // Escaped before splitting: `lines()` would drop a lone `\r` at the very end.
    for line in printable(&message.content).lines() {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    if crate::receipts::asks::expects_reply(&message.metadata) {
        out.push_str(&format!(
            "    ↳ {} is waiting for your answer: switchboard reply {} \"...\"\n",
            message.sender, message.id
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_line_up() {
        let text = table(
            &["NAME", "STATUS"],
            &[
                vec!["frontend".into(), "online".into()],
                vec!["qa".into(), "offline".into()],
            ],
        );
        assert_eq!(
            text,
            "NAME      STATUS\nfrontend  online\nqa        offline\n"
        );
    }

    #[test]
    fn long_cells_are_clipped() {
        let long = "x".repeat(CELL_CHARS_MAX + 10);
        assert_eq!(clip(&long).chars().count(), CELL_CHARS_MAX);
    }

    #[test]
    fn control_characters_are_shown_escaped_and_newlines_and_tabs_kept() {
        assert_eq!(
            printable("\x1b]0;pwned\x07\x1b[31mred\r"),
            "\\x1b]0;pwned\\x07\\x1b[31mred\\r"
        );
        assert_eq!(printable("a\tb\r\nc\n"), "a\tb\nc\n");
        assert_eq!(
            printable("\u{9b}31m \u{202e}txt"),
            "\\u{9b}31m \\u{202e}txt"
        );
        assert!(matches!(printable("plain ✓"), Cow::Borrowed("plain ✓")));
    }

    #[test]
    fn table_cells_are_escaped_before_they_are_measured() {
        let text = table(&["NAME"], &[vec!["a\x1bb".into()]]);
        assert_eq!(text, "NAME\na\\x1bb\n");
    }

    #[test]
    fn clock_is_the_time_of_day() {
        assert_eq!(clock("2024-05-01T12:34:56.789Z"), "12:34:56");
        assert_eq!(clock("soon"), "soon");
    }
}
