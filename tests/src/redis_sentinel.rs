//! A private Redis Sentinel set per test: one master, one replica and three sentinels
//! (`redis-server <conf> --sentinel`, quorum 2), each a [`RedisServer`] on its own free
//! loopback port and temporary directory. The master can be killed with SIGKILL, the
//! sentinels' failover to the replica awaited, and the killed node restarted as a replica of
//! the new master. Every process is killed on drop.
//!
//! The sentinels judge a master down after [`DOWN_AFTER_MS`] without an answer, so a failover
//! takes a few seconds.

use std::time::{Duration, Instant};

use crate::redis_server::{free_port, RedisMode, RedisServer, RedisSetup};

/// The service name the sentinels monitor.
pub const SERVICE: &str = "switchboard";
/// `down-after-milliseconds`: how long the master may be silent before a sentinel thinks it
/// down. At 1000 ms a master slowed by load on a busy 2-core machine was failed over without
/// being killed (seen in `server_failover.rs`'s long sentinel run), so twice that.
pub const DOWN_AFTER_MS: u64 = 2_000;
/// `failover-timeout`, in milliseconds: how long a failover may take before another sentinel
/// tries again.
pub const FAILOVER_TIMEOUT_MS: u64 = 3_000;
/// Sentinels agreeing that the master is down before a failover starts.
const QUORUM: usize = 2;
/// Sentinels in the set.
const SENTINELS: usize = 3;
/// Longest wait for the set to be ready (sentinels know each other and the replica), or for a
/// restarted node to be in sync again.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between probes.
const POLL: Duration = Duration::from_millis(50);

/// A running master, replica and three sentinels.
#[derive(Debug)]
pub struct SentinelSet {
    /// The data nodes: the master and the replica at the start (roles change at failovers).
    data: Vec<RedisServer>,
    sentinels: Vec<RedisServer>,
}

impl SentinelSet {
    /// Starts the master, its replica and the sentinels, and waits until every sentinel knows
    /// the replica and the two other sentinels (so a failover can be agreed).
    pub fn start(mode: RedisMode) -> Self {
        let master = RedisServer::start_with(mode, free_port(), data_setup(None));
        let replica = RedisServer::start_with(mode, free_port(), data_setup(Some(master.port())));
        let sentinels = (0..SENTINELS)
            .map(|_| {
                RedisServer::start_with(
                    RedisMode::NoPersistence,
                    free_port(),
                    sentinel_setup(master.port()),
                )
            })
            .collect();
        let set = Self {
            data: vec![master, replica],
            sentinels,
        };
        set.wait_until_ready("the sentinels to know each other and the replica");
        set
    }

    /// `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/<service>`.
    pub fn url(&self, service: &str) -> String {
        let seeds: Vec<String> = self
            .sentinels
            .iter()
            .map(|sentinel| format!("127.0.0.1:{}", sentinel.port()))
            .collect();
        format!("redis+sentinel://{}/{service}", seeds.join(","))
    }

    /// The master's port, as the first sentinel that answers reports it
    /// (`SENTINEL get-master-addr-by-name`).
    pub fn master_port(&self) -> u16 {
        self.sentinels
            .iter()
            .find_map(reported_master)
            .expect("no sentinel reports a master")
    }

    /// The data node on `port` (master or replica).
    pub fn node(&self, port: u16) -> &RedisServer {
        self.data
            .iter()
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no data node on port {port}"))
    }

    /// Kills the current master with SIGKILL and returns its port.
    pub fn kill_master(&mut self) -> u16 {
        let port = self.master_port();
        self.data
            .iter_mut()
            .find(|node| node.port() == port)
            .expect("the master is one of the data nodes")
            .kill();
        port
    }

    /// Waits until every sentinel reports a master other than `killed_port`, and that node
    /// answers `ROLE` as a master. Returns how long it waited; panics after `timeout`.
    pub fn wait_for_failover(&self, killed_port: u16, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let reports: Vec<Option<u16>> = self.sentinels.iter().map(reported_master).collect();
            let new_master = reports[0].filter(|&port| port != killed_port);
            if let Some(port) = new_master {
                let agreed = reports.iter().all(|report| *report == Some(port));
                if agreed && self.answers_as_master(port) {
                    return started.elapsed();
                }
            }
            assert!(
                started.elapsed() < timeout,
                "the sentinels did not fail over from port {killed_port} within {timeout:?}: \
                 they report {reports:?}; a sentinel's log:\n{}",
                self.sentinels[0].log_tail()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Starts the killed node on `port` again, as a replica of the current master (a node
    /// coming back as a master with stale data would take writes the sentinels then throw
    /// away), and waits until it is in sync and every sentinel lists it.
    pub fn restart(&mut self, port: u16) {
        let master = self.master_port();
        assert_ne!(master, port, "port {port} is still the master");
        let node = self
            .data
            .iter_mut()
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no data node on port {port}"));
        node.restart_with(data_setup(Some(master)));
        self.wait_until_ready(&format!("the node on port {port} to rejoin as a replica"));
    }

    fn answers_as_master(&self, port: u16) -> bool {
        self.data
            .iter()
            .find(|node| node.port() == port && node.is_running())
            .and_then(|node| node.try_cli(&["ROLE"]))
            .is_some_and(|role| role.starts_with("master"))
    }

    /// Waits until every data node runs, the master's replica is connected, and every
    /// sentinel knows the master, one replica (not down) and the other sentinels.
    fn wait_until_ready(&self, what: &str) {
        let started = Instant::now();
        loop {
            match self.not_ready() {
                None => return,
                Some(problem) => assert!(
                    started.elapsed() < READY_TIMEOUT,
                    "timed out after {READY_TIMEOUT:?} waiting for {what}: {problem}"
                ),
            }
            std::thread::sleep(POLL);
        }
    }

    fn not_ready(&self) -> Option<String> {
        for node in &self.data {
            if !node.is_running() {
                return Some(format!("data node {} is down", node.port()));
            }
            let role = node.try_cli(&["ROLE"]).unwrap_or_default();
            let lines: Vec<&str> = role.lines().collect();
            if lines.first() == Some(&"slave") && lines.get(3) != Some(&"connected") {
                return Some(format!("replica {} is not in sync: {lines:?}", node.port()));
            }
        }
        let master = self.master_port();
        if !self.answers_as_master(master) {
            return Some(format!("the reported master {master} is not a master"));
        }
        for sentinel in &self.sentinels {
            let info = sentinel
                .try_cli(&["SENTINEL", "MASTER", SERVICE])
                .unwrap_or_default();
            let fields = pairs(&info);
            let others = fields.get("num-other-sentinels").copied();
            let replicas = fields.get("num-slaves").copied();
            let flags = fields.get("flags").copied().unwrap_or_default();
            if others != Some("2") || replicas.is_none() || flags != "master" {
                return Some(format!(
                    "sentinel {} sees the master {flags:?} with {others:?} other sentinels",
                    sentinel.port()
                ));
            }
            let replicas = sentinel
                .try_cli(&["SENTINEL", "REPLICAS", SERVICE])
                .unwrap_or_default();
            // One replica in a good state: flags exactly "slave" (not s_down or disconnected).
            let healthy = replicas
                .lines()
                .collect::<Vec<_>>()
                .windows(2)
                .filter(|pair| pair[0] == "flags" && pair[1] == "slave")
                .count();
            if healthy < 1 {
                return Some(format!(
                    "sentinel {} knows no healthy replica",
                    sentinel.port()
                ));
            }
        }
        None
    }
}

/// The master port a sentinel reports, if it answers.
fn reported_master(sentinel: &RedisServer) -> Option<u16> {
    let address = sentinel.try_cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE])?;
    address.lines().nth(1)?.trim().parse().ok()
}

/// `redis-cli --raw` prints a map as alternating lines: name, value, name, value.
fn pairs(raw: &str) -> std::collections::HashMap<&str, &str> {
    let lines: Vec<&str> = raw.lines().map(str::trim).collect();
    lines
        .chunks(2)
        .filter_map(|pair| Some((*pair.first()?, *pair.get(1)?)))
        .collect()
}

/// A data node's settings: a replica of `master` when given.
fn data_setup(master: Option<u16>) -> RedisSetup {
    let mut args: Vec<String> = ["--repl-diskless-sync-delay", "0"]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
    if let Some(port) = master {
        args.extend(["--replicaof".into(), "127.0.0.1".into(), port.to_string()]);
    }
    RedisSetup {
        config_file: None,
        args,
    }
}

/// A sentinel's settings, watching the master on `master_port`. The configuration is a file
/// because sentinels rewrite theirs as they learn the topology.
fn sentinel_setup(master_port: u16) -> RedisSetup {
    let config = format!(
        "sentinel monitor {SERVICE} 127.0.0.1 {master_port} {QUORUM}\n\
         sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n\
         sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n\
         sentinel parallel-syncs {SERVICE} 1\n\
         sentinel announce-ip 127.0.0.1\n"
    );
    RedisSetup {
        config_file: Some(config),
        args: vec!["--sentinel".to_string()],
    }
}
