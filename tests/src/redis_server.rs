//! A private `redis-server` per test: a free loopback port, its own temporary directory, killed
//! on drop. Tests never touch a shared Redis.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest wait for a started (or restarted) server to answer PING, including AOF loading.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause between readiness probes.
const READY_POLL: Duration = Duration::from_millis(20);
/// First words of the error replies a changing topology gives (`redis-cli --raw` prints them
/// bare and exits 0).
const ERROR_REPLIES: [&str; 9] = [
    "ERR",
    "CLUSTERDOWN",
    "LOADING",
    "MOVED",
    "ASK",
    "TRYAGAIN",
    "MASTERDOWN",
    "READONLY",
    "NOREPLICAS",
];
/// The name of a [`RedisSetup::config_file`] in the server's directory.
const CONFIG_FILE: &str = "node.conf";

/// How the server persists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    /// No AOF, no snapshots: data lives as long as the process.
    NoPersistence,
    /// AOF on, with this `appendfsync` (`always`, `everysec` or `no`).
    Aof {
        /// The `appendfsync` setting.
        fsync: &'static str,
    },
}

/// A running `redis-server` child process.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    mode: RedisMode,
    /// Serves TLS only (a self-signed certificate in `dir`).
    tls: bool,
    /// Role-specific settings (cluster node, replica, sentinel).
    setup: RedisSetup,
    child: Option<Child>,
}

/// What makes a server more than a standalone one: the topologies (`redis_cluster`,
/// `redis_sentinel`) start their nodes with these.
#[derive(Debug, Clone, Default)]
pub struct RedisSetup {
    /// A configuration file written once into the server's directory as `node.conf` and
    /// passed first on the command line. Sentinels need one: they rewrite it as they learn
    /// the topology, and read it back at a restart.
    pub config_file: Option<String>,
    /// More command-line arguments, after the common ones (so they win).
    pub args: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port in a new temporary directory and waits until it answers.
    pub fn start(mode: RedisMode) -> Self {
        Self::launch(mode, false, RedisSetup::default())
    }

    /// Like [`RedisServer::start`] on the given port, with a role's settings (see
    /// [`RedisSetup`]).
    pub fn start_with(mode: RedisMode, port: u16, setup: RedisSetup) -> Self {
        Self::launch_on(mode, false, setup, port)
    }

    /// Like [`RedisServer::start`], but serving TLS only, with a self-signed certificate for
    /// 127.0.0.1 (made with `openssl`); [`RedisServer::url`] is then a `rediss://` URL that
    /// skips certificate verification.
    pub fn start_tls(mode: RedisMode) -> Self {
        Self::launch(mode, true, RedisSetup::default())
    }

    fn launch(mode: RedisMode, tls: bool, setup: RedisSetup) -> Self {
        Self::launch_on(mode, tls, setup, free_port())
    }

    fn launch_on(mode: RedisMode, tls: bool, setup: RedisSetup, port: u16) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "switchboard-redis-{}-{port}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
        let mut server = Self {
            port,
            dir,
            mode,
            tls,
            setup,
            child: None,
        };
        if tls {
            server.make_certificate();
        }
        if let Some(config) = &server.setup.config_file {
            let path = server.dir.join(CONFIG_FILE);
            std::fs::write(&path, config)
                .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
        }
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://127.0.0.1:PORT/#insecure` for a TLS server.
    pub fn url(&self) -> String {
        if self.tls {
            format!("rediss://127.0.0.1:{}/#insecure", self.port)
        } else {
            format!("redis://127.0.0.1:{}", self.port)
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the process is running (not killed by [`RedisServer::kill`]).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server with SIGKILL (no shutdown save) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory (killing it first if running);
    /// with AOF it loads its data back before this returns.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Like [`RedisServer::restart`], with new role settings (the config file, if any, is not
    /// written again).
    pub fn restart_with(&mut self, setup: RedisSetup) {
        self.setup.args = setup.args;
        self.restart();
    }

    /// Runs `redis-cli` against this server with `args` and returns its raw output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"])
            .args(self.cli_tls_args())
            .args(args)
            .output()
            .unwrap_or_else(|error| {
                panic!("cannot run redis-cli ({error}): install it with `apt-get install redis-server`")
            });
        assert!(
            output.status.success(),
            "redis-cli {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Like [`RedisServer::cli`], but `None` when redis-cli fails or prints an error (a
    /// killed node, a cluster that is down): for polling a topology that is changing.
    pub fn try_cli(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"])
            .args(self.cli_tls_args())
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        // redis-cli exits 0 on an error reply: its first word tells.
        let first = text.split_whitespace().next().unwrap_or_default();
        let failed = !output.status.success() || ERROR_REPLIES.contains(&first);
        (!failed).then_some(text)
    }

    /// Runs `commands` (one a line) through one `redis-cli` connection, as a script on its
    /// stdin, and returns the replies, trimmed: for commands that must share a connection,
    /// like a write and the `WAIT` for its replicas.
    pub fn cli_script(&self, commands: &str) -> String {
        let mut child = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"])
            .args(self.cli_tls_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run redis-cli: {error}"));
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(commands.as_bytes())
            .unwrap_or_else(|error| panic!("cannot write to redis-cli: {error}"));
        let output = child
            .wait_with_output()
            .unwrap_or_else(|error| panic!("redis-cli did not finish: {error}"));
        assert!(
            output.status.success(),
            "redis-cli script {commands:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// `redis-cli` output split into lines (empty output: no lines).
    pub fn cli_lines(&self, args: &[&str]) -> Vec<String> {
        self.cli(args)
            .lines()
            .map(str::to_string)
            .filter(|line| !line.is_empty())
            .collect()
    }

    /// Number of keys in database 0.
    pub fn dbsize(&self) -> u64 {
        let size = self.cli(&["DBSIZE"]);
        size.parse()
            .unwrap_or_else(|_| panic!("DBSIZE answered {size:?}"))
    }

    fn spawn(&mut self) {
        let (appendonly, fsync) = match self.mode {
            RedisMode::NoPersistence => ("no", "everysec"),
            RedisMode::Aof { fsync } => ("yes", fsync),
        };
        let port = self.port.to_string();
        let dir = self.dir.to_string_lossy().to_string();
        let listen: &[&str] = if self.tls {
            &[
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-auth-clients",
                "no",
            ]
        } else {
            &["--port", &port]
        };
        let certificate: &[&str] = if self.tls {
            &["--tls-cert-file", "cert.pem", "--tls-key-file", "key.pem"]
        } else {
            &[]
        };
        let config: &[&str] = if self.setup.config_file.is_some() {
            &[CONFIG_FILE]
        } else {
            &[]
        };
        let spawned = Command::new("redis-server")
            .args(config)
            .args(listen)
            .args(certificate)
            .args(["--bind", "127.0.0.1", "--dir", &dir])
            .args([
                "--save",
                "",
                "--appendonly",
                appendonly,
                "--appendfsync",
                fsync,
            ])
            .args(["--logfile", "redis.log", "--daemonize", "no"])
            .args(&self.setup.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                panic!("redis-server not found: install it with `apt-get install redis-server`")
            }
            Err(error) => panic!("cannot start redis-server: {error}"),
        };
        self.child = Some(child);
        self.wait_ready();
    }

    fn cli_tls_args(&self) -> &'static [&'static str] {
        if self.tls {
            &["--tls", "--insecure"]
        } else {
            &[]
        }
    }

    fn make_certificate(&self) {
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
                "-subj",
                "/CN=127.0.0.1",
            ])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .current_dir(&self.dir)
            .output()
            .unwrap_or_else(|error| {
                panic!("cannot run openssl ({error}): install it with `apt-get install openssl`")
            });
        assert!(
            made.status.success(),
            "openssl could not make a test certificate: {}",
            String::from_utf8_lossy(&made.stderr)
        );
    }

    fn answers_ping(&self) -> bool {
        if !self.tls {
            return ping(self.port);
        }
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(self.cli_tls_args())
            .arg("PING")
            .output()
            .is_ok_and(|output| output.stdout.starts_with(b"PONG"))
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if self.answers_ping() {
                return;
            }
            if let Some(child) = &mut self.child {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "redis-server on port {} exited with {status}; its log:\n{}",
                        self.port,
                        self.log_tail()
                    );
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                panic!(
                    "redis-server on port {} did not answer PING within {READY_TIMEOUT:?}; its log:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            std::thread::sleep(READY_POLL);
        }
    }

    /// The last lines of the server's log (for failure messages).
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on now (the OS picks it; the tiny race with other processes is
/// accepted).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|error| panic!("cannot find a free loopback port: {error}"))
}

/// True when the server answers PING with PONG (not LOADING).
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 64];
    match stream.read(&mut reply) {
        Ok(read) => reply[..read].starts_with(b"+PONG"),
        Err(_) => false,
    }
}
