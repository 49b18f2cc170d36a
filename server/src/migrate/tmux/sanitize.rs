//! Making text safe to type into a pane: whatever a message holds, it must arrive as text and
//! never act as keystrokes (the original typed raw text after a C-c).

/// Spaces a tab becomes: a tab typed into a pane asks for completion in shells and agent UIs.
const TAB_AS_SPACES: &str = "    ";

/// The text to type for `text`: line ends normalised to `\n` (kept, so multi-line messages
/// stay multi-line), tabs turned into spaces, every other control character (ESC, C-c, DEL,
/// C1 controls...) written out visibly as `\u{1b}`, and trailing blank lines removed (a
/// trailing newline would submit early).
///
/// ```
/// use switchboard_server::migrate::tmux::sanitize;
/// assert_eq!(sanitize("a\r\nb\x1b[31m\x03\n\n"), "a\nb\\u{1b}[31m\\u{3}");
/// assert_eq!(sanitize("C-c"), "C-c");
/// ```
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\r' => {
                // "\r\n" and a lone "\r" both end one line.
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\n' => out.push('\n'),
            '\t' => out.push_str(TAB_AS_SPACES),
            ch if ch.is_control() => out.push_str(&format!("\\u{{{:x}}}", ch as u32)),
            ch => out.push(ch),
        }
    }
    let kept = out.trim_end_matches(['\n', ' ']).len();
    out.truncate(kept);
    out
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn control_characters_are_written_out_not_sent() {
        assert_eq!(sanitize("\x03"), "\\u{3}");
        assert_eq!(sanitize("\x1b[2J"), "\\u{1b}[2J");
        assert_eq!(sanitize("del\x7f"), "del\\u{7f}");
        assert_eq!(sanitize("c1\u{9b}"), "c1\\u{9b}");
    }

    #[test]
    fn text_that_looks_like_keys_or_escapes_is_kept_as_is() {
        for text in [
            "C-c",
            "-n flag",
            "\\n \\t \\x1b",
            "'single' \"double\" `tick`",
            "a;",
        ] {
            assert_eq!(sanitize(text), text);
        }
    }

    #[test]
    fn line_ends_are_normalised_and_trailing_blank_lines_dropped() {
        assert_eq!(sanitize("one\r\ntwo\rthree\n\n  \n"), "one\ntwo\nthree");
        assert_eq!(sanitize("\ttabbed"), "    tabbed");
    }
}
