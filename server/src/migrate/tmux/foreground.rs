//! Who reads a pane's terminal, and whether text may be typed there.
//!
//! Typing into a pane is only safe when the program reading it is an agent (or another line
//! reader such as `cat`): a shell would run the text as commands (`$(...)`, `;`, every line of
//! a multi-line message). So before anything is typed, and again before each Enter, the pane's
//! reader is judged ([`judge_pane`]):
//! - The reader is found in `/proc`: the foreground process group of the pane's terminal (the
//!   `tpgid` in `/proc/PANE_PID/stat`), its members whose standard input is that terminal, and
//!   of those the ones without a child among them (a `sh -c 'claude; ...'` wrapper waits while
//!   its child reads). Without `/proc`, tmux's `#{pane_current_command}` is judged instead.
//! - A reader known by any of its names (`comm`, `argv[0]`) as a shell ([`SHELLS`]) is
//!   refused, whatever the allow-list says. Otherwise it must be on the allow-list
//!   ([`AGENT_PROGRAMS_DEFAULT`], or `serve --agent-program`), or it is refused too.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::target::PaneInfo;

/// Programs that run what they read as commands. Never typed into, even when allow-listed.
pub const SHELLS: [&str; 26] = [
    "sh",
    "bash",
    "dash",
    "ash",
    "zsh",
    "fish",
    "ksh",
    "mksh",
    "pdksh",
    "oksh",
    "loksh",
    "tcsh",
    "csh",
    "nu",
    "xonsh",
    "elvish",
    "ion",
    "yash",
    "rc",
    "es",
    "osh",
    "ysh",
    "pwsh",
    "powershell",
    "busybox",
    "murex",
];

/// Programs typed into when `serve --agent-program` names none: coding agents (and the
/// runtimes they show up as), and `cat`, a plain line reader.
pub const AGENT_PROGRAMS_DEFAULT: [&str; 12] = [
    "claude",
    "node",
    "codex",
    "aider",
    "python",
    "gemini",
    "goose",
    "opencode",
    "cursor-agent",
    "amp",
    "qwen",
    "cat",
];

/// Most processes looked at in `/proc` for one pane (a bound on the scan, not expected).
const PROCESSES_SCANNED_MAX: usize = 100_000;

/// Which programs may have text typed into their pane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanePolicy {
    /// Program names (a name also matches itself followed by a version: `python3.12`).
    pub agent_programs: Vec<String>,
}

impl Default for PanePolicy {
    fn default() -> Self {
        Self {
            agent_programs: AGENT_PROGRAMS_DEFAULT
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl PanePolicy {
    /// The policy allowing `programs`, or the default when the list is empty.
    pub fn allowing(programs: &[String]) -> Self {
        if programs.is_empty() {
            return Self::default();
        }
        Self {
            agent_programs: programs.to_vec(),
        }
    }
}

/// What reads a pane, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An allowed program: text may be typed.
    Agent {
        /// Its name.
        program: String,
    },
    /// A refusal, in words starting with `pane runs ...`.
    Refused {
        /// Why.
        reason: String,
    },
}

/// One process reading the terminal, by all the names it goes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// `comm` and the base name of `argv[0]` (login shells' leading `-` removed).
    pub names: Vec<String>,
}

impl Reader {
    fn label(&self) -> String {
        self.names.first().cloned().unwrap_or_else(|| "?".into())
    }
}

/// Judges the pane described by `info` (blocking: reads `/proc`).
pub fn judge_pane(info: &PaneInfo, policy: &PanePolicy) -> Verdict {
    let readers = terminal_readers(Path::new("/proc"), info.pid, &info.tty)
        .unwrap_or_else(|| vec![reader_named(&info.current_command)]);
    judge(&readers, policy)
}

/// Judges the readers of a terminal: every one must be an allowed program and none a shell.
pub fn judge(readers: &[Reader], policy: &PanePolicy) -> Verdict {
    if readers.is_empty() {
        return Verdict::Refused {
            reason: "pane runs no program that could be identified".into(),
        };
    }
    if let Some(shell) = readers.iter().find(|r| r.names.iter().any(|n| is_shell(n))) {
        return Verdict::Refused {
            reason: format!(
                "pane runs a shell ({}), which would run the text as commands; nothing is typed \
                 into a shell",
                shell.label()
            ),
        };
    }
    let allowed = |reader: &&Reader| {
        reader
            .names
            .iter()
            .any(|n| policy.agent_programs.iter().any(|a| matches(n, a)))
    };
    match readers.iter().find(|r| !allowed(r)) {
        Some(other) => Verdict::Refused {
            reason: format!(
                "pane runs {}, which is not an agent program (allowed: {}; see \
                 --agent-program)",
                other.label(),
                policy.agent_programs.join(", ")
            ),
        },
        None => Verdict::Agent {
            program: readers[0].label(),
        },
    }
}

/// True when `name` (a program name or path) is a shell of [`SHELLS`].
pub fn is_shell(name: &str) -> bool {
    let name = program_name(name);
    SHELLS.iter().any(|shell| matches(&name, shell))
}

/// `name` is `program`, or `program` followed by a version (`python3`, `python3.12`).
fn matches(name: &str, program: &str) -> bool {
    name.strip_prefix(program)
        .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

fn reader_named(command: &str) -> Reader {
    Reader {
        names: vec![program_name(command)],
    }
}

/// The base name of a command, without a login shell's leading `-`.
fn program_name(command: &str) -> String {
    let base = command.rsplit('/').next().unwrap_or(command);
    base.trim_start_matches('-').to_string()
}

/// A process of the terminal's foreground group.
struct Member {
    pid: u32,
    parent: u32,
    reads_terminal: bool,
    reader: Reader,
}

/// The processes reading the terminal `tty` of the pane whose first process is `pane_pid`
/// (see the module doc); `None` when `/proc` does not tell.
pub fn terminal_readers(proc_root: &Path, pane_pid: u32, tty: &str) -> Option<Vec<Reader>> {
    if pane_pid == 0 {
        return None;
    }
    let foreground_group = stat_fields(proc_root, pane_pid)?.tpgid;
    if foreground_group <= 0 {
        return None;
    }
    let mut members = Vec::new();
    for entry in std::fs::read_dir(proc_root)
        .ok()?
        .flatten()
        .take(PROCESSES_SCANNED_MAX)
    {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(stat) = stat_fields(proc_root, pid) else {
            continue;
        };
        if i64::from(stat.group) != foreground_group {
            continue;
        }
        let dir = proc_root.join(pid.to_string());
        // Unreadable standard input (another user's process) counts as reading: judged, not
        // skipped.
        let reads_terminal = std::fs::read_link(dir.join("fd/0"))
            .map_or(true, |target| tty.is_empty() || target == Path::new(tty));
        let mut names = vec![stat.comm];
        if let Ok(cmdline) = std::fs::read(dir.join("cmdline")) {
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            let name = program_name(&String::from_utf8_lossy(argv0));
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
        members.push(Member {
            pid,
            parent: stat.parent,
            reads_terminal,
            reader: Reader { names },
        });
    }
    let reading: Vec<&Member> = {
        let on_terminal: Vec<&Member> = members.iter().filter(|m| m.reads_terminal).collect();
        if on_terminal.is_empty() {
            members.iter().collect()
        } else {
            on_terminal
        }
    };
    if reading.is_empty() {
        return None;
    }
    // A member with a child among the readers waits for that child.
    let leaves = reading
        .iter()
        .filter(|m| !reading.iter().any(|other| other.parent == m.pid))
        .map(|m| m.reader.clone())
        .collect();
    Some(leaves)
}

struct Stat {
    comm: String,
    parent: u32,
    group: u32,
    tpgid: i64,
}

/// The fields of `/proc/PID/stat` used here. `comm` is in parentheses and may hold spaces and
/// parentheses itself, so the rest is read after the last `)`.
fn stat_fields(proc_root: &Path, pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // After `)`: state, ppid, pgrp, session, tty_nr, tpgid.
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    Some(Stat {
        comm,
        parent: rest.get(1)?.parse().ok()?,
        group: rest.get(2)?.parse().ok()?,
        tpgid: rest.get(5)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readers(names: &[&[&str]]) -> Vec<Reader> {
        names
            .iter()
            .map(|n| Reader {
                names: n.iter().map(|s| s.to_string()).collect(),
            })
            .collect()
    }

    fn refused(verdict: Verdict) -> String {
        match verdict {
            Verdict::Refused { reason } => reason,
            Verdict::Agent { program } => panic!("{program} was allowed"),
        }
    }

    #[test]
    fn a_shell_is_refused_by_any_of_its_names() {
        let policy = PanePolicy::default();
        for names in [
            &["bash"][..],
            &["-zsh"],
            &["node", "fish"],
            &["python3", "xonsh"],
        ] {
            let names: Vec<String> = names.iter().map(|n| program_name(n)).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let reason = refused(judge(&readers(&[&names]), &policy));
            assert!(reason.starts_with("pane runs a shell"), "{reason}");
        }
    }

    #[test]
    fn a_shell_is_refused_even_when_allow_listed() {
        let policy = PanePolicy::allowing(&["bash".into(), "cat".into()]);
        let reason = refused(judge(&readers(&[&["bash"]]), &policy));
        assert!(reason.starts_with("pane runs a shell (bash)"), "{reason}");
    }

    #[test]
    fn agents_and_line_readers_are_allowed_with_versions() {
        let policy = PanePolicy::default();
        for name in ["claude", "node", "python3.12", "cat", "codex"] {
            assert_eq!(
                judge(&readers(&[&[name]]), &policy),
                Verdict::Agent {
                    program: name.into()
                }
            );
        }
    }

    #[test]
    fn a_program_off_the_allow_list_is_refused_naming_the_option() {
        let reason = refused(judge(&readers(&[&["vim"]]), &PanePolicy::default()));
        assert!(reason.contains("vim") && reason.contains("--agent-program"));
        let reason = refused(judge(&readers(&[&["catalog"]]), &PanePolicy::default()));
        assert!(reason.contains("catalog"), "a prefix is not a match");
    }

    #[test]
    fn stat_is_read_after_the_last_parenthesis() {
        let root = tempfile_root();
        write_stat(&root, 7, "a) (b", 1, 7, 7);
        let stat = stat_fields(&root, 7).unwrap();
        assert_eq!(stat.comm, "a) (b");
        assert_eq!((stat.parent, stat.group, stat.tpgid), (1, 7, 7));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_wrapper_waiting_for_its_child_is_judged_by_the_child() {
        let root = tempfile_root();
        // 10: the pane's `sh -c` (foreground group 10), 11: its child `cat`, same group;
        // 12: a background process of another group.
        write_stat(&root, 10, "sh", 1, 10, 10);
        write_stat(&root, 11, "cat", 10, 10, 10);
        write_stat(&root, 12, "bash", 10, 12, 10);
        let found = terminal_readers(&root, 10, "").unwrap();
        assert_eq!(found, readers(&[&["cat"]]));
        std::fs::remove_dir_all(root).unwrap();
    }

    fn tempfile_root() -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!("sb-proc-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    fn write_stat(root: &Path, pid: u32, comm: &str, parent: u32, group: u32, tpgid: u32) {
        let dir = root.join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let stat = format!("{pid} ({comm}) S {parent} {group} {group} 34816 {tpgid} 0 0");
        std::fs::write(dir.join("stat"), stat).unwrap();
    }
}
