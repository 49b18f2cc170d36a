//! The real `switchboard` binary as a child process, for black-box tests: started on a free
//! port (it is asked for port 0 and reports the one it got), stopped gracefully or with
//! `kill -9`, restarted on the same storage, and killed on drop. Each server gets its own
//! workdir (two live servers may not share one) unless the test names one.
//!
//! The binary is found beside the test executable (`target/<profile>/switchboard`); a test
//! binary's dependencies do not include other packages' binaries, so the harness first runs
//! `cargo build --workspace --bins` once per test process (a no-op when it is up to date) with
//! the same target directory and profile.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Longest wait for a started server to report its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for a graceful stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The built `switchboard` binary.
pub fn binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build_binary).clone()
}

fn build_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executables live in target/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir
        .parent()
        .expect("target/<profile>")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        // The same build as the test command's (`cargo build --workspace --bins`): with
        // `-p switchboard-server` alone, cargo unifies features differently and compiled the
        // server and its TLS stack a second time (minutes and gigabytes per clean run).
        .args(["build", "--quiet", "--workspace", "--bins"])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        build.arg("--release");
    }
    let status = build
        .status()
        .unwrap_or_else(|error| panic!("cannot run cargo to build the server: {error}"));
    assert!(status.success(), "building the switchboard binary failed");
    let binary = profile_dir.join(format!("switchboard{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.exists(), "no binary at {}", binary.display());
    binary
}

/// A running `switchboard serve`.
#[derive(Debug)]
pub struct ServerProcess {
    storage: String,
    extra: Vec<String>,
    /// Port asked for: 0 (a free one) until [`ServerProcess::restart_on_same_port`].
    port: u16,
    child: Option<Child>,
    address: SocketAddr,
    /// `http` or `https`, as the server reported it.
    scheme: String,
    stderr: std::sync::Arc<Mutex<String>>,
    /// The server's own `--workdir` (made here unless `extra` names one; removed on drop). Kept
    /// across restarts, as an operator's restart keeps it: the server's owner id lives there.
    own_workdir: Option<PathBuf>,
}

impl ServerProcess {
    /// Starts `switchboard serve --storage <storage> --api-port 0 <extra...>` (on 127.0.0.1
    /// unless `extra` holds `--api-host`) and waits until it listens; panics with the server's
    /// stderr when it exits instead.
    pub fn start(storage: &str, extra: &[&str]) -> Self {
        Self::try_start(storage, extra)
            .unwrap_or_else(|stderr| panic!("switchboard exited at start; stderr:\n{stderr}"))
    }

    /// Like [`ServerProcess::start`], but a server that exits at start is an `Err` holding
    /// its stderr.
    pub fn try_start(storage: &str, extra: &[&str]) -> Result<Self, String> {
        let mut server = Self {
            storage: storage.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            port: 0,
            child: None,
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            scheme: "http".into(),
            stderr: Default::default(),
            own_workdir: None,
        };
        // Two live servers may not share a workdir, and tests run side by side.
        if !extra.contains(&"--workdir") {
            server.own_workdir = Some(new_workdir());
        }
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), String> {
        // Each process's stderr on its own: a restarted server starts with none.
        self.stderr.lock().unwrap().clear();
        let mut command = Command::new(binary());
        let port = self.port.to_string();
        command.args(["serve", "--storage", &self.storage, "--api-port", &port]);
        // Loopback unless the test names its own address.
        if !self.extra.iter().any(|arg| arg == "--api-host") {
            command.args(["--api-host", "127.0.0.1"]);
        }
        if let Some(workdir) = &self.own_workdir {
            command.arg("--workdir").arg(workdir);
        }
        let mut child = command
            .args(&self.extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start switchboard: {error}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if let Some(url) = line.strip_prefix("switchboard listening on ") {
                    let _ = sender.send(url.trim().to_string());
                }
            }
        });
        let collected = self.stderr.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let mut reader = BufReader::new(stderr);
            let mut buffer = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                text.push_str(&String::from_utf8_lossy(&buffer[..n]));
                *collected.lock().unwrap() = text.clone();
            }
        });
        let started = Instant::now();
        let url = loop {
            if let Ok(url) = receiver.recv_timeout(Duration::from_millis(50)) {
                break url;
            }
            if let Ok(Some(status)) = child.try_wait() {
                // Let the reader thread collect the last of stderr.
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!("({status}) {}", self.stderr.lock().unwrap()));
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "switchboard did not report its address in {START_TIMEOUT:?}"
            );
        };
        let (scheme, address) = url.split_once("://").expect("a URL: scheme://address");
        self.scheme = scheme.to_string();
        self.address = address.parse().expect("a socket address");
        if self.address.ip().is_unspecified() {
            // Listening on every address: talk to it over loopback.
            self.address.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        self.child = Some(child);
        assert!(
            TcpStream::connect_timeout(&self.address, Duration::from_secs(5)).is_ok(),
            "switchboard does not accept connections on {}",
            self.address
        );
        Ok(())
    }

    /// `http://127.0.0.1:PORT` (`https://` when the server serves TLS).
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    /// `http://127.0.0.1:PORT{path}` (`https://` when the server serves TLS).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// `ws://127.0.0.1:PORT{path}` (`wss://` when the server serves TLS).
    pub fn ws_url(&self, path: &str) -> String {
        let scheme = if self.scheme == "https" { "wss" } else { "ws" };
        format!("{scheme}://{}{path}", self.address)
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The server's `--workdir`: the one the test named, or the one made for it.
    pub fn workdir(&self) -> PathBuf {
        match &self.own_workdir {
            Some(workdir) => workdir.clone(),
            None => {
                let at = self.extra.iter().position(|arg| arg == "--workdir");
                PathBuf::from(&self.extra[at.expect("a --workdir") + 1])
            }
        }
    }

    /// Sends `signal` (a `kill` name: `STOP`, `CONT`, `TERM`...) without waiting for anything.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// What the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `kill -9`: no chance to flush or close anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait for switchboard") {
                return status;
            }
            if started.elapsed() > STOP_TIMEOUT {
                let _ = child.kill();
                panic!("switchboard did not stop within {STOP_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same storage (a new port).
    pub fn restart(&mut self) {
        self.kill9();
        if let Err(stderr) = self.spawn() {
            panic!("switchboard exited at restart; stderr:\n{stderr}");
        }
    }
}

impl ServerProcess {
    /// Starts the server again on the same storage and the same port, as an operator's
    /// restart does (clients keep their URL).
    pub fn restart_on_same_port(&mut self) {
        self.port = self.address.port();
        self.restart();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
        if let Some(workdir) = &self.own_workdir {
            let _ = std::fs::remove_dir_all(workdir);
        }
    }
}

/// A new empty directory for one server's workdir.
fn new_workdir() -> PathBuf {
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let number = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let workdir = std::env::temp_dir().join(format!(
        "switchboard-workdir-{}-{number}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&workdir)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", workdir.display()));
    workdir
}

/// Runs `switchboard <args>` to completion: exit status, stdout and stderr.
pub fn run_to_end(args: &[&str], timeout: Duration) -> (ExitStatus, String, String) {
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start switchboard: {error}"));
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut out = String::new();
            let mut err = String::new();
            let _ = child
                .stdout
                .take()
                .expect("stdout")
                .read_to_string(&mut out);
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err);
            return (status, out, err);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            panic!("switchboard {args:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
