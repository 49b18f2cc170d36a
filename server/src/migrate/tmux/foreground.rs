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
//! - A reader known by any of its names (`comm`, `argv[0]`, and the file it runs,
//!   `/proc/PID/exe`, so a shell linked or renamed as `claude` is still a shell) as a shell
//!   ([`SHELLS`]) is refused, whatever the allow-list says; so is a pane whose foreground
//!   group ends in a shell reading a pipe (`cat | sh`). Otherwise it must be on the allow-list
//!   ([`AGENT_PROGRAMS_DEFAULT`], or `serve --agent-program`), or it is refused too.
//! - An interpreter ([`INTERPRETERS`]: node, python, ...) is judged by the script it runs
//!   (`node /usr/bin/claude` is `claude`); without a script it is an interactive interpreter,
//!   which would run the text as code, and is refused.
//! - Where `/proc` exists but tells nothing about the pane, the pane is refused; only a
//!   system without `/proc` falls back to tmux's `#{pane_current_command}`.

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

/// Programs typed into when `serve --agent-program` names none: coding agents, and `cat`, a
/// plain line reader. (An agent that runs on node or python is named by its script.)
pub const AGENT_PROGRAMS_DEFAULT: [&str; 10] = [
    "claude",
    "codex",
    "aider",
    "gemini",
    "goose",
    "opencode",
    "cursor-agent",
    "amp",
    "qwen",
    "cat",
];

/// Runtimes that run a script, or read code interactively when given none. Never allowed
/// by their own name: by their script's.
pub const INTERPRETERS: [&str; 12] = [
    "node", "nodejs", "python", "pypy", "bun", "deno", "ruby", "perl", "php", "lua", "irb",
    "ipython",
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
    /// `comm`, the base name of `argv[0]` (login shells' leading `-` removed) and of the
    /// executable file.
    pub names: Vec<String>,
    /// The base name of its first argument that is not an option: the script an
    /// interpreter runs.
    pub script: Option<String>,
}

impl Reader {
    fn label(&self) -> String {
        self.names.first().cloned().unwrap_or_else(|| "?".into())
    }
}

/// Judges the pane described by `info` (blocking: reads `/proc`).
pub fn judge_pane(info: &PaneInfo, policy: &PanePolicy) -> Verdict {
    let proc_root = Path::new("/proc");
    let readers = match terminal_readers(proc_root, info.pid, &info.tty) {
        Some(readers) => readers,
        // `/proc` is there but says nothing of the pane: refuse rather than trust tmux's
        // name, which is only `argv[0]` (`exec -a claude bash`).
        None if proc_root.join("self").exists() => Vec::new(),
        None => vec![reader_named(&info.current_command)],
    };
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
    if let Some(interpreter) = readers
        .iter()
        .find(|r| r.script.is_none() && r.names.iter().all(|n| is_interpreter(n)))
    {
        return Verdict::Refused {
            reason: format!(
                "pane runs {} without a script: an interactive interpreter would run the text \
                 as code",
                interpreter.label()
            ),
        };
    }
    let listed = |name: &str| policy.agent_programs.iter().any(|a| matches(name, a));
    let allowed = |reader: &&Reader| {
        let by_name = reader.names.iter().any(|n| !is_interpreter(n) && listed(n));
        let by_script = reader.names.iter().any(|n| is_interpreter(n))
            && reader.script.as_deref().is_some_and(listed);
        by_name || by_script
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

/// True when `name` is a runtime of [`INTERPRETERS`].
fn is_interpreter(name: &str) -> bool {
    INTERPRETERS.iter().any(|runtime| matches(name, runtime))
}

/// `name` is `program`, or `program` followed by a version (`python3`, `python3.12`).
fn matches(name: &str, program: &str) -> bool {
    name.strip_prefix(program)
        .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

fn reader_named(command: &str) -> Reader {
    Reader {
        names: vec![program_name(command)],
        script: None,
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
        let mut script = None;
        if let Ok(cmdline) = std::fs::read(dir.join("cmdline")) {
            let mut argv = cmdline
                .split(|b| *b == 0)
                .map(|arg| String::from_utf8_lossy(arg).into_owned());
            let name = program_name(&argv.next().unwrap_or_default());
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
            script = argv
                .find(|arg| !arg.is_empty() && !arg.starts_with('-'))
                .map(|arg| program_name(&arg));
        }
        // The file it runs: a shell linked or copied under another name is found by this
        // name when linked (the kernel names `comm` after the path that was run).
        if let Ok(exe) = std::fs::read_link(dir.join("exe")) {
            let exe = exe.to_string_lossy();
            let name = program_name(exe.trim_end_matches(" (deleted)"));
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
        members.push(Member {
            pid,
            parent: stat.parent,
            reads_terminal,
            reader: Reader { names, script },
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
    let mut leaves: Vec<Reader> = reading
        .iter()
        .filter(|m| !reading.iter().any(|other| other.parent == m.pid))
        .map(|m| m.reader.clone())
        .collect();
    // A shell at the end of a pipeline (`cat | sh`) reads what the terminal's reader passes
    // on: judged too, so it is refused.
    leaves.extend(
        members
            .iter()
            .filter(|m| !m.reads_terminal)
            .filter(|m| !members.iter().any(|other| other.parent == m.pid))
            .filter(|m| m.reader.names.iter().any(|n| is_shell(n)))
            .map(|m| m.reader.clone()),
    );
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
                script: None,
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
        for name in ["claude", "cat", "codex"] {
            assert_eq!(
                judge(&readers(&[&[name]]), &policy),
                Verdict::Agent {
                    program: name.into()
                }
            );
        }
    }

    #[test]
    fn an_interpreter_is_judged_by_its_script_and_refused_without_one() {
        let policy = PanePolicy::default();
        let running = |names: &[&str], script: Option<&str>| {
            vec![Reader {
                names: names.iter().map(|s| s.to_string()).collect(),
                script: script.map(str::to_string),
            }]
        };
        // `node /usr/local/bin/claude`: claude.
        assert!(matches!(
            judge(&running(&["node"], Some("claude")), &policy),
            Verdict::Agent { .. }
        ));
        // A bare REPL runs every pasted line as code.
        let reason = refused(judge(&running(&["python3.12"], None), &policy));
        assert!(reason.contains("without a script"), "{reason}");
        let reason = refused(judge(&running(&["node"], None), &policy));
        assert!(reason.contains("without a script"), "{reason}");
        // A script that is not an agent.
        let reason = refused(judge(&running(&["python3"], Some("server.py")), &policy));
        assert!(reason.contains("not an agent program"), "{reason}");
    }

    #[test]
    fn a_shell_linked_under_an_agents_name_is_refused_by_its_executable() {
        let root = tempfile_root();
        write_stat(&root, 30, "claude", 1, 30, 30);
        std::os::unix::fs::symlink("/usr/bin/bash", root.join("30/exe")).unwrap();
        let found = terminal_readers(&root, 30, "").unwrap();
        let reason = refused(judge(&found, &PanePolicy::default()));
        assert!(reason.starts_with("pane runs a shell"), "{reason}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_shell_reading_a_pipe_from_the_terminals_reader_is_refused() {
        let root = tempfile_root();
        // `cat | sh` in a pane on /dev/pts/9: cat reads the terminal, sh reads cat's pipe.
        write_stat(&root, 40, "cat", 1, 40, 40);
        write_stat(&root, 41, "sh", 1, 40, 40);
        std::fs::create_dir_all(root.join("40/fd")).unwrap();
        std::fs::create_dir_all(root.join("41/fd")).unwrap();
        std::os::unix::fs::symlink("/dev/pts/9", root.join("40/fd/0")).unwrap();
        std::os::unix::fs::symlink("pipe:[123]", root.join("41/fd/0")).unwrap();
        let found = terminal_readers(&root, 40, "/dev/pts/9").unwrap();
        let reason = refused(judge(&found, &PanePolicy::default()));
        assert!(reason.starts_with("pane runs a shell (sh)"), "{reason}");
        std::fs::remove_dir_all(root).unwrap();
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
