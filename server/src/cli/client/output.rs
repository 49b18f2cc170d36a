//! How client commands print: aligned tables and message blocks for people, JSON for
//! programs.

use serde::Serialize;

use crate::api::wire::{InboxMessage, Priority};

/// Widest a table cell is printed, in characters; longer cells end with `…`.
pub const CELL_CHARS_MAX: usize = 60;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("wire values always serialize")
    );
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
    let single_line = cell.replace('\n', " ");
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
    for line in message.content.lines() {
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
    fn clock_is_the_time_of_day() {
        assert_eq!(clock("2024-05-01T12:34:56.789Z"), "12:34:56");
        assert_eq!(clock("soon"), "soon");
    }
}
