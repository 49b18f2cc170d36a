//! A private tmux server for tests, `tmux -L sb-test-<random>`: never the user's server, and
//! killed (with everything in it) when the lab is dropped. Reader panes run `cat`, appending
//! everything it receives to a file, so a test reads exactly what the program got (`cat` is a
//! line reader switchboard types into; a shell it never types into, see [`TmuxLab::shell`]).

#![allow(dead_code)] // Each test binary uses a different part of the lab.

pub mod play;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The program in each pane: non-canonical input (no 4 KiB line limit, no line editing),
/// echo on (so a delivery can be seen), then the script *becomes* `cat` (`exec`), appending
/// what it reads to the file named by `$1`: the pane's reader is `cat`, not a shell.
/// `$1.ready` is created once the terminal is set up.
const READER_SCRIPT: &str = "stty -icanon\n: > \"$1.ready\"\nexec cat >> \"$1\"\n";
/// The same without echo: nothing typed shows in the pane.
const SILENT_READER_SCRIPT: &str = "stty -icanon -echo\n: > \"$1.ready\"\nexec cat >> \"$1\"\n";
/// The same, but the shell stays, waiting for `cat` (a command follows it): a `sh -c`-style
/// wrapper, which tmux reports as `sh` while `cat` reads the terminal.
const WRAPPED_READER_SCRIPT: &str =
    "stty -icanon\n: > \"$1.ready\"\ncat >> \"$1\"\necho cat ended\n";
/// Prompt of the lab's shells, so a test sees when one is ready.
pub const SHELL_PROMPT: &str = "lab-shell$ ";

/// Longest wait for a reader to set its terminal up.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A pane running the reader, and the file it writes.
#[derive(Debug, Clone)]
pub struct ReaderPane {
    /// `%N`.
    pub pane_id: String,
    /// What the program received, one line per line.
    pub out: PathBuf,
}

impl ReaderPane {
    /// The complete lines received so far (a line still arriving is not counted yet).
    pub fn lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        match text.rfind('\n') {
            Some(end) => text[..end].split('\n').map(str::to_string).collect(),
            None => Vec::new(),
        }
    }

    /// Waits until at least `count` lines arrived (panics after `timeout`), then returns all.
    pub fn wait_lines(&self, count: usize, timeout: Duration) -> Vec<String> {
        let started = Instant::now();
        loop {
            let lines = self.lines();
            if lines.len() >= count {
                return lines;
            }
            assert!(
                started.elapsed() < timeout,
                "pane {} received {} of {count} lines in {timeout:?}: {lines:?}",
                self.pane_id,
                lines.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until a received line contains `needle`; returns the lines.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Vec<String> {
        let started = Instant::now();
        loop {
            let lines = self.lines();
            if lines.iter().any(|line| line.contains(needle)) {
                return lines;
            }
            assert!(
                started.elapsed() < timeout,
                "pane {} never received {needle:?} in {timeout:?}; it got {lines:?}",
                self.pane_id
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A private tmux server.
pub struct TmuxLab {
    /// The socket name, for `tmux -L` and `--tmux-socket`.
    pub socket: String,
    dir: tempfile::TempDir,
    panes: AtomicU64,
    /// The server's socket file, learnt once it runs; removed on drop (tmux leaves it).
    socket_path: std::sync::Mutex<Option<PathBuf>>,
}

impl TmuxLab {
    /// A new, empty private server (it starts with the first session).
    pub fn new() -> TmuxLab {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let socket = format!(
            "sb-test-{}-{nanos:x}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("reader.sh"), READER_SCRIPT).unwrap();
        std::fs::write(dir.path().join("silent.sh"), SILENT_READER_SCRIPT).unwrap();
        std::fs::write(dir.path().join("wrapped.sh"), WRAPPED_READER_SCRIPT).unwrap();
        TmuxLab {
            socket,
            dir,
            panes: AtomicU64::new(0),
            socket_path: std::sync::Mutex::new(None),
        }
    }

    /// A directory for the test's files (removed with the lab).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Runs `tmux -L socket args...`; panics with its stderr when it fails.
    pub fn tmux(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux is installed (`.ci/run` installs it)");
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn has_session(&self, session: &str) -> bool {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(["has-session", "-t", &format!("={session}")])
            .env_remove("TMUX")
            .output()
            .is_ok_and(|output| output.status.success())
    }

    /// A window `window` in `session` (created if needed) running the reader.
    pub fn reader(&self, session: &str, window: &str) -> ReaderPane {
        self.spawn(session, window, "reader.sh", None)
    }

    /// Like [`TmuxLab::reader`], with the pane's working directory set to `cwd`.
    pub fn reader_in(&self, session: &str, window: &str, cwd: &std::path::Path) -> ReaderPane {
        self.spawn(session, window, "reader.sh", Some(cwd))
    }

    /// A reader that does not echo what it receives.
    pub fn silent_reader(&self, session: &str, window: &str) -> ReaderPane {
        self.spawn(session, window, "silent.sh", None)
    }

    /// A reader under a shell that waits for it (tmux names the pane's command `sh`).
    pub fn wrapped_reader(&self, session: &str, window: &str) -> ReaderPane {
        self.spawn(session, window, "wrapped.sh", None)
    }

    /// A window `window` in `session` running an interactive `bash` (no rc files, no history
    /// file) in `cwd`, at its prompt ([`SHELL_PROMPT`]); returns the pane id.
    pub fn shell(&self, session: &str, window: &str, cwd: &std::path::Path) -> String {
        let command =
            format!("env PS1='{SHELL_PROMPT}' HISTFILE=/dev/null bash --norc --noprofile -i");
        let pane_id = self.new_window(session, window, &cwd.display().to_string(), &command);
        let started = Instant::now();
        while !self.screen(&pane_id).contains(SHELL_PROMPT.trim_end()) {
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "the shell in {pane_id} did not show its prompt"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        pane_id
    }

    /// What pane `pane_id` shows now, as text.
    pub fn screen(&self, pane_id: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-t", pane_id])
    }

    fn spawn(
        &self,
        session: &str,
        window: &str,
        script: &str,
        cwd: Option<&std::path::Path>,
    ) -> ReaderPane {
        let number = self.panes.fetch_add(1, Ordering::Relaxed);
        let out = self.dir.path().join(format!("pane-{number}.out"));
        let command = format!(
            "sh '{}' '{}'",
            self.dir.path().join(script).display(),
            out.display()
        );
        let cwd = cwd
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| self.dir.path().display().to_string());
        let pane_id = self.new_window(session, window, &cwd, &command);
        let ready = PathBuf::from(format!("{}.ready", out.display()));
        let started = Instant::now();
        while !ready.exists() {
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "the reader in {pane_id} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        ReaderPane { pane_id, out }
    }

    /// A window running `command` (in a new session when `session` does not exist yet).
    fn new_window(&self, session: &str, window: &str, cwd: &str, command: &str) -> String {
        let pane_id = if self.has_session(session) {
            self.tmux(&[
                "new-window",
                "-d",
                "-P",
                "-F",
                "#{pane_id}",
                "-t",
                &format!("={session}:"),
                "-n",
                window,
                "-c",
                cwd,
                command,
            ])
        } else {
            self.tmux(&[
                "new-session",
                "-d",
                "-P",
                "-F",
                "#{pane_id}",
                "-s",
                session,
                "-n",
                window,
                "-x",
                "160",
                "-y",
                "40",
                "-c",
                cwd,
                command,
            ])
        };
        let mut socket_path = self.socket_path.lock().unwrap();
        if socket_path.is_none() {
            *socket_path = Some(PathBuf::from(self.tmux(&[
                "display-message",
                "-p",
                "#{socket_path}",
            ])));
        }
        drop(socket_path);
        pane_id
    }
}

impl Default for TmuxLab {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TmuxLab {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .env_remove("TMUX")
            .output();
        if let Some(path) = self.socket_path.lock().unwrap().take() {
            let _ = std::fs::remove_file(path);
        }
    }
}
