//! Typing a message into a pane, safely, and checking that it was submitted.
//!
//! The old script pressed C-c first (killing the agent's running work), typed the raw text
//! with `send-keys` (so `C-c`, `Enter` or a trailing `;` in a message acted as keys or tmux
//! syntax), pressed Enter, and never looked. Here:
//! 1. The text is sanitized (see [`super::sanitize`]); nothing but that text and the Enter key
//!    is ever sent. C-c is never sent.
//! 2. A pane that is gone, dead, or in copy mode (where keys drive the mode) is refused; so is
//!    a pane whose terminal is read by a shell, or by a program that is not an allowed agent
//!    (see [`super::foreground`]). That check is made immediately before typing, and again
//!    before every Enter: text is never submitted to a shell.
//! 3. Short single-line text goes with `send-keys -l --` (literal); long, multi-line or
//!    tmux-syntax-looking text through `load-buffer -` (stdin, no argument parsing at all) and
//!    `paste-buffer -p` (bracketed paste when the program asked for it, so newlines do not
//!    submit early in agent UIs).
//! 4. After a short delay, Enter is sent as a key of its own.
//! 5. `capture-pane` shows whether the text left the line at the cursor. If it is still there,
//!    Enter is pressed again, a bounded number of times. Enter is only retried when the text
//!    was seen at the cursor, so a retry never submits an empty line by accident.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::foreground::{judge_pane, PanePolicy, Verdict};
use super::sanitize::sanitize;
use super::target::{pane, PaneId, PaneInfo};
use super::{Tmux, TmuxError};

/// Pause between the text and the Enter key when the caller does not choose one.
pub const ENTER_DELAY_DEFAULT: Duration = Duration::from_millis(200);
/// How long the pane is watched for the text to appear, and then to leave the cursor line
/// after each Enter, when the caller does not choose.
pub const VERIFY_WINDOW_DEFAULT: Duration = Duration::from_millis(2000);
/// Enter presses after the first when the text still sits at the cursor.
pub const ENTER_RETRIES_MAX_DEFAULT: u32 = 2;
/// Longest text typed with `send-keys -l`, in bytes; longer text is pasted from a buffer.
pub const SEND_KEYS_BYTES_MAX: usize = 256;
/// Longest text typed into a pane, in bytes (after sanitizing). Longer messages still reach
/// the queue; only the pane copy is refused.
pub const PANE_TEXT_BYTES_MAX: usize = 64 * 1024;
/// How often the pane is looked at while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Characters of the text's end looked for at the cursor.
const TAIL_CHARS: usize = 24;
/// Rows above the cursor captured with it, so a tail wrapped across rows is still found.
const CURSOR_CONTEXT_ROWS: u32 = 2;

/// How a delivery behaves.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Pause between the text and the Enter key, so the program has read the text.
    pub enter_delay: Duration,
    /// How long to watch the pane at each step.
    pub verify_window: Duration,
    /// Enter presses after the first when the text still sits at the cursor.
    pub enter_retries_max: u32,
    /// Which programs may be typed into.
    pub policy: PanePolicy,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            enter_delay: ENTER_DELAY_DEFAULT,
            verify_window: VERIFY_WINDOW_DEFAULT,
            enter_retries_max: ENTER_RETRIES_MAX_DEFAULT,
            policy: PanePolicy::default(),
        }
    }
}

/// What became of one delivery into a pane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The text was seen at the cursor and then seen to leave it after Enter.
    Delivered,
    /// The text and Enter were sent, but the pane did not show that it was submitted.
    Unconfirmed {
        /// What could not be checked.
        reason: String,
    },
    /// Nothing was submitted (the text may have been typed but Enter was not pressed).
    Failed {
        /// Why.
        reason: String,
    },
    /// Nothing was typed (or, if the pane's program changed while typing, Enter was not
    /// pressed): the pane runs a shell or a program that is not an allowed agent.
    Refused {
        /// Why, starting with `pane runs ...`.
        reason: String,
    },
}

impl DeliveryOutcome {
    /// `delivered`, `unconfirmed`, `failed` or `refused`.
    pub fn label(&self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Unconfirmed { .. } => "unconfirmed",
            DeliveryOutcome::Failed { .. } => "failed",
            DeliveryOutcome::Refused { .. } => "refused",
        }
    }

    /// The reason, for the two outcomes that have one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            DeliveryOutcome::Delivered => None,
            DeliveryOutcome::Unconfirmed { reason }
            | DeliveryOutcome::Failed { reason }
            | DeliveryOutcome::Refused { reason } => Some(reason),
        }
    }

    fn failed(reason: impl Into<String>) -> Self {
        DeliveryOutcome::Failed {
            reason: reason.into(),
        }
    }
}

/// Types `text` into pane `id` and presses Enter, as described in the module doc.
pub async fn deliver(
    tmux: &Tmux,
    id: &PaneId,
    text: &str,
    options: &DeliveryOptions,
) -> DeliveryOutcome {
    let text = sanitize(text);
    if text.is_empty() {
        return DeliveryOutcome::failed("the message is empty once control characters are removed");
    }
    if text.len() > PANE_TEXT_BYTES_MAX {
        return DeliveryOutcome::failed(format!(
            "the message is {} bytes, more than the {PANE_TEXT_BYTES_MAX} typed into a pane",
            text.len()
        ));
    }
    let before = match usable_pane(tmux, id, &options.policy).await {
        Ok(info) => cursor_line(tmux, &info).await.unwrap_or_default(),
        Err(unusable) => return unusable,
    };
    if let Err(error) = type_text(tmux, id, &text).await {
        return DeliveryOutcome::failed(format!("typing failed: {error}"));
    }
    tokio::time::sleep(options.enter_delay).await;
    let tail = tail_of(&text);
    // A tail already at the cursor before typing proves nothing: treat it as not seen.
    let seen = !tail.is_empty()
        && !before.contains(&tail)
        && wait_for(tmux, id, options.verify_window, |line| line.contains(&tail)).await;
    for _ in 0..=options.enter_retries_max {
        if let Err(unusable) = usable_pane(tmux, id, &options.policy).await {
            return not_submitted(unusable);
        }
        if let Err(error) = tmux.run(&["send-keys", "-t", id.as_str(), "Enter"]).await {
            return DeliveryOutcome::failed(format!("pressing Enter failed: {error}"));
        }
        if !seen {
            return DeliveryOutcome::Unconfirmed {
                reason: "the text did not show at the pane's cursor, so its submission could \
                         not be checked"
                    .into(),
            };
        }
        if wait_for(tmux, id, options.verify_window, |line| {
            !line.contains(&tail)
        })
        .await
        {
            return DeliveryOutcome::Delivered;
        }
    }
    DeliveryOutcome::Unconfirmed {
        reason: format!(
            "the text still sat at the cursor after {} Enter presses",
            options.enter_retries_max + 1
        ),
    }
}

/// The pane, if keys may be sent to it; else the outcome saying why not.
async fn usable_pane(
    tmux: &Tmux,
    id: &PaneId,
    policy: &PanePolicy,
) -> Result<PaneInfo, DeliveryOutcome> {
    let info = pane(tmux, id).await.map_err(|error| {
        DeliveryOutcome::failed(match error {
            TmuxError::NoSuchPane(_) => format!("pane {id} does not exist"),
            other => other.to_string(),
        })
    })?;
    if info.dead {
        return Err(DeliveryOutcome::failed(format!(
            "pane {id} is dead (its program exited)"
        )));
    }
    if info.in_mode {
        return Err(DeliveryOutcome::failed(format!(
            "pane {id} is in copy mode, where keys would drive the mode; leave it (q) and resend"
        )));
    }
    let judged = {
        let (info, policy) = (info.clone(), policy.clone());
        tokio::task::spawn_blocking(move || judge_pane(&info, &policy)).await
    };
    match judged {
        Ok(Verdict::Agent { .. }) => Ok(info),
        Ok(Verdict::Refused { reason }) => Err(DeliveryOutcome::Refused { reason }),
        Err(error) => Err(DeliveryOutcome::failed(format!(
            "could not tell which program reads pane {id}: {error}"
        ))),
    }
}

/// The outcome when the pane became unusable after the text was typed: Enter is not pressed.
fn not_submitted(unusable: DeliveryOutcome) -> DeliveryOutcome {
    match unusable {
        DeliveryOutcome::Refused { reason } => DeliveryOutcome::Refused {
            reason: format!("{reason}; the text was typed but Enter was not pressed"),
        },
        other => DeliveryOutcome::failed(format!(
            "{}; the text was typed but not submitted",
            other.reason().unwrap_or("the pane became unusable")
        )),
    }
}

/// Sends the text, literally, without Enter.
async fn type_text(tmux: &Tmux, id: &PaneId, text: &str) -> Result<(), TmuxError> {
    // tmux splits its arguments at a trailing `;` (and eats `\` before it): such text, like
    // long or multi-line text, goes through a buffer read from stdin instead.
    let literal_safe =
        text.len() <= SEND_KEYS_BYTES_MAX && !text.contains('\n') && !text.ends_with(';');
    if literal_safe {
        tmux.run(&["send-keys", "-t", id.as_str(), "-l", "--", text])
            .await
            .map(drop)
    } else {
        let buffer = format!("switchboard-{}", uuid::Uuid::new_v4());
        tmux.run_with_input(&["load-buffer", "-b", &buffer, "-"], Some(text.as_bytes()))
            .await?;
        // -p: bracketed paste if the program asked for it; -r: keep LF (not CR) between
        // lines; -d: delete the buffer afterwards.
        tmux.run(&[
            "paste-buffer",
            "-p",
            "-r",
            "-d",
            "-b",
            &buffer,
            "-t",
            id.as_str(),
        ])
        .await
        .map(drop)
    }
}

/// The logical line (wrapped rows joined) holding the cursor, trailing spaces removed.
async fn cursor_line(tmux: &Tmux, info: &PaneInfo) -> Result<String, TmuxError> {
    let start = info
        .cursor_y
        .saturating_sub(CURSOR_CONTEXT_ROWS)
        .to_string();
    let end = info.cursor_y.to_string();
    let id = info.pane_id.as_str();
    let output = tmux
        .run(&[
            "capture-pane",
            "-p",
            "-J",
            "-t",
            id,
            "-S",
            &start,
            "-E",
            &end,
        ])
        .await?;
    Ok(output.lines().last().unwrap_or("").trim_end().to_string())
}

/// Polls the cursor line until `done` holds or `window` passes; true if it held.
async fn wait_for(tmux: &Tmux, id: &PaneId, window: Duration, done: impl Fn(&str) -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + window;
    loop {
        if let Ok(info) = pane(tmux, id).await {
            if let Ok(line) = cursor_line(tmux, &info).await {
                if done(&line) {
                    return true;
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The last [`TAIL_CHARS`] characters of the text's last line, trailing spaces removed.
fn tail_of(text: &str) -> String {
    let last_line = text.lines().last().unwrap_or("").trim_end();
    let count = last_line.chars().count();
    last_line
        .chars()
        .skip(count.saturating_sub(TAIL_CHARS))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_end_of_the_last_line() {
        assert_eq!(tail_of("first\nsecond  "), "second");
        let long = "x".repeat(100) + "the end of it";
        assert_eq!(tail_of(&long).chars().count(), TAIL_CHARS);
        assert!(tail_of(&long).ends_with("the end of it"));
    }

    #[test]
    fn outcomes_serialize_with_a_status_and_reason() {
        let failed = DeliveryOutcome::failed("gone");
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"status": "failed", "reason": "gone"})
        );
        assert_eq!(failed.label(), "failed");
        assert_eq!(DeliveryOutcome::Delivered.reason(), None);
    }
}
