//! Panes and targets. A pane is addressed by its `%pane_id`, which tmux never reuses while the
//! server runs and which does not change when panes are split, moved or renumbered. Targets of
//! the old scripts (`session:window`, `session:window.pane`) are resolved here against
//! `list-panes -a`: a target that matches no pane, or several, is an error. tmux's own
//! resolution is never relied on (`display-message -t` falls back to the active pane).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Tmux, TmuxError};

/// The `list-panes` format: one pane per line, fields split by tabs, the path last so that a
/// tab inside it cannot shift the other fields.
const PANE_FORMAT: &str = "#{pane_id}\t#{session_name}\t#{window_index}\t#{window_name}\t\
#{pane_index}\t#{pane_active}\t#{window_active}\t#{pane_dead}\t#{pane_in_mode}\t#{cursor_x}\t\
#{cursor_y}\t#{pane_current_command}\t#{pane_pid}\t#{pane_tty}\t#{pane_current_path}";
/// Fields in [`PANE_FORMAT`].
const PANE_FIELDS: usize = 15;

/// A pane id such as `%12`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PaneId(String);

impl PaneId {
    /// The id as tmux writes it (`%12`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PaneId {
    type Err = TmuxError;

    fn from_str(text: &str) -> Result<Self, TmuxError> {
        let digits = text.strip_prefix('%').unwrap_or("");
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TmuxError::BadTarget(format!(
                "{text:?} is not a pane id (a `%` followed by digits, e.g. %3)"
            )));
        }
        Ok(PaneId(text.to_string()))
    }
}

impl TryFrom<String> for PaneId {
    type Error = TmuxError;

    fn try_from(text: String) -> Result<Self, TmuxError> {
        text.parse()
    }
}

impl From<PaneId> for String {
    fn from(id: PaneId) -> String {
        id.0
    }
}

impl fmt::Display for PaneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What tmux says about one pane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaneInfo {
    /// `%N`.
    pub pane_id: PaneId,
    /// Session name.
    pub session: String,
    /// Window index in its session.
    pub window_index: u32,
    /// Window name.
    pub window_name: String,
    /// Pane index in its window.
    pub pane_index: u32,
    /// The window's active pane (what `session:window` means to tmux).
    pub active: bool,
    /// The session's active window.
    pub window_active: bool,
    /// The program in it exited and the pane was kept (`remain-on-exit`).
    pub dead: bool,
    /// In copy mode or another mode: keys would drive the mode, not the program.
    pub in_mode: bool,
    /// Cursor column.
    pub cursor_x: u32,
    /// Cursor row within the visible pane.
    pub cursor_y: u32,
    /// The foreground program, as tmux names it (for a wrapper such as `sh -c`, the wrapper:
    /// [`super::foreground`] looks further).
    pub current_command: String,
    /// The process tmux started in the pane (0 when unknown).
    #[serde(default)]
    pub pid: u32,
    /// The pane's terminal, e.g. `/dev/pts/3` (empty when unknown).
    #[serde(default)]
    pub tty: String,
    /// The foreground program's working directory.
    pub current_path: PathBuf,
}

impl PaneInfo {
    /// `session:window.pane` by name, as a person would write it.
    pub fn target(&self) -> String {
        format!("{}:{}.{}", self.session, self.window_name, self.pane_index)
    }

    fn parse(line: &str) -> Option<PaneInfo> {
        let fields: Vec<&str> = line.splitn(PANE_FIELDS, '\t').collect();
        if fields.len() != PANE_FIELDS {
            return None;
        }
        let flag = |text: &str| text == "1";
        Some(PaneInfo {
            pane_id: fields[0].parse().ok()?,
            session: fields[1].to_string(),
            window_index: fields[2].parse().ok()?,
            window_name: fields[3].to_string(),
            pane_index: fields[4].parse().ok()?,
            active: flag(fields[5]),
            window_active: flag(fields[6]),
            dead: flag(fields[7]),
            in_mode: flag(fields[8]),
            cursor_x: fields[9].parse().ok()?,
            cursor_y: fields[10].parse().ok()?,
            current_command: fields[11].to_string(),
            pid: fields[12].parse().unwrap_or(0),
            tty: fields[13].to_string(),
            current_path: PathBuf::from(fields[14]),
        })
    }
}

/// Every pane of every session of the server.
pub async fn list_panes(tmux: &Tmux) -> Result<Vec<PaneInfo>, TmuxError> {
    let output = tmux.run(&["list-panes", "-a", "-F", PANE_FORMAT]).await?;
    Ok(output.lines().filter_map(PaneInfo::parse).collect())
}

/// The pane `id` as it is now; [`TmuxError::NoSuchPane`] when it is gone. Only the panes of
/// its window are listed (`-t %id` names the window holding the pane, or fails).
pub async fn pane(tmux: &Tmux, id: &PaneId) -> Result<PaneInfo, TmuxError> {
    let output = tmux
        .run(&["list-panes", "-t", id.as_str(), "-F", PANE_FORMAT])
        .await?;
    output
        .lines()
        .filter_map(PaneInfo::parse)
        .find(|pane| &pane.pane_id == id)
        .ok_or_else(|| TmuxError::NoSuchPane(id.to_string()))
}

/// A target as the old scripts wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `%N`.
    Pane(PaneId),
    /// `session:window` (name or index), meaning the window's active pane; or
    /// `session:window.pane` with a pane index.
    Window {
        /// Session name.
        session: String,
        /// Window name or index, possibly followed by `.pane`.
        window: String,
    },
}

impl FromStr for Target {
    type Err = TmuxError;

    fn from_str(text: &str) -> Result<Self, TmuxError> {
        let text = text.trim();
        if text.starts_with('%') {
            return text.parse().map(Target::Pane);
        }
        match text.split_once(':') {
            Some((session, window)) if !session.is_empty() && !window.is_empty() => {
                Ok(Target::Window {
                    session: session.to_string(),
                    window: window.to_string(),
                })
            }
            _ => Err(TmuxError::BadTarget(format!(
                "{text:?} is not a target: write session:window, session:window.pane or %pane_id"
            ))),
        }
    }
}

impl Target {
    /// The one pane among `panes` this target names, or an error saying why there is none.
    pub fn resolve<'a>(&self, panes: &'a [PaneInfo]) -> Result<&'a PaneInfo, TmuxError> {
        match self {
            Target::Pane(id) => panes
                .iter()
                .find(|pane| &pane.pane_id == id)
                .ok_or_else(|| TmuxError::NoSuchPane(id.to_string())),
            Target::Window { session, window } => {
                let in_session: Vec<&PaneInfo> =
                    panes.iter().filter(|p| &p.session == session).collect();
                if in_session.is_empty() {
                    return Err(TmuxError::BadTarget(format!("no tmux session {session:?}")));
                }
                // The whole text as a window first: window names may contain dots.
                let whole = active_pane_of(&in_session, window, session)?;
                if let Some(pane) = whole {
                    return Ok(pane);
                }
                let not_found =
                    || TmuxError::BadTarget(format!("no window {window:?} in session {session:?}"));
                let (window_part, pane_part) = window.rsplit_once('.').ok_or_else(not_found)?;
                let pane_index: u32 = pane_part.parse().map_err(|_| not_found())?;
                let in_window = windows_named(&in_session, window_part);
                ensure_one_window(&in_window, window_part, session)?;
                in_window
                    .into_iter()
                    .find(|pane| pane.pane_index == pane_index)
                    .ok_or_else(|| {
                        TmuxError::BadTarget(format!(
                            "no pane {pane_index} in window {window_part:?} of session {session:?}"
                        ))
                    })
            }
        }
    }
}

fn windows_named<'a>(panes: &[&'a PaneInfo], window: &str) -> Vec<&'a PaneInfo> {
    let by_name: Vec<&PaneInfo> = panes
        .iter()
        .copied()
        .filter(|p| p.window_name == window)
        .collect();
    if !by_name.is_empty() {
        return by_name;
    }
    panes
        .iter()
        .copied()
        .filter(|p| p.window_index.to_string() == window)
        .collect()
}

fn ensure_one_window(panes: &[&PaneInfo], window: &str, session: &str) -> Result<(), TmuxError> {
    let mut indexes: Vec<u32> = panes.iter().map(|p| p.window_index).collect();
    indexes.dedup();
    if indexes.len() > 1 {
        return Err(TmuxError::BadTarget(format!(
            "{} windows are named {window:?} in session {session:?}; use session:INDEX or a %pane_id",
            indexes.len()
        )));
    }
    Ok(())
}

fn active_pane_of<'a>(
    panes: &[&'a PaneInfo],
    window: &str,
    session: &str,
) -> Result<Option<&'a PaneInfo>, TmuxError> {
    let in_window = windows_named(panes, window);
    if in_window.is_empty() {
        return Ok(None);
    }
    ensure_one_window(&in_window, window, session)?;
    Ok(in_window
        .iter()
        .copied()
        .find(|p| p.active)
        .or(in_window.first().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pane(id: &str, session: &str, window: (u32, &str), index: u32, active: bool) -> PaneInfo {
        PaneInfo {
            pane_id: id.parse().unwrap(),
            session: session.into(),
            window_index: window.0,
            window_name: window.1.into(),
            pane_index: index,
            active,
            window_active: true,
            dead: false,
            in_mode: false,
            cursor_x: 0,
            cursor_y: 0,
            current_command: "sh".into(),
            pid: 0,
            tty: String::new(),
            current_path: "/".into(),
        }
    }

    fn panes() -> Vec<PaneInfo> {
        vec![
            pane("%1", "hive", (0, "agent-a"), 0, false),
            pane("%2", "hive", (0, "agent-a"), 1, true),
            pane("%3", "hive", (1, "v1.2"), 0, true),
            pane("%4", "hive", (2, "dup"), 0, true),
            pane("%5", "hive", (3, "dup"), 0, true),
        ]
    }

    fn resolve(target: &str) -> Result<String, TmuxError> {
        let panes = panes();
        let target: Target = target.parse()?;
        target.resolve(&panes).map(|p| p.pane_id.to_string())
    }

    #[test]
    fn a_window_target_means_its_active_pane() {
        assert_eq!(resolve("hive:agent-a").unwrap(), "%2");
        assert_eq!(resolve("hive:0").unwrap(), "%2");
        assert_eq!(resolve("hive:agent-a.0").unwrap(), "%1");
        assert_eq!(resolve("hive:v1.2").unwrap(), "%3");
        assert_eq!(resolve("%4").unwrap(), "%4");
    }

    #[test]
    fn a_target_matching_nothing_or_several_windows_is_an_error() {
        assert!(resolve("hive:nope").is_err());
        assert!(resolve("other:agent-a").is_err());
        assert!(resolve("hive:agent-a.7").is_err());
        assert!(resolve("%99").is_err());
        assert!(resolve("hive:dup").is_err());
        assert!(resolve("agent-a").is_err());
        assert!(resolve("%x").is_err());
    }

    #[test]
    fn list_panes_lines_parse_and_keep_tabs_in_paths() {
        let line = "%7\thive\t2\tagent-b\t1\t1\t0\t0\t1\t4\t9\tclaude\t42\t/dev/pts/3\t/work/a\tb";
        let info = PaneInfo::parse(line).unwrap();
        assert_eq!(info.pane_id.as_str(), "%7");
        assert!(info.in_mode && !info.dead && info.active);
        assert_eq!(info.current_path, PathBuf::from("/work/a\tb"));
        assert_eq!((info.pid, info.tty.as_str()), (42, "/dev/pts/3"));
        assert_eq!(info.target(), "hive:agent-b.1");
        assert!(PaneInfo::parse("%7\thive").is_none());
    }
}
