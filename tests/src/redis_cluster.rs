//! A private Redis Cluster per test: masters and replicas, each a [`RedisServer`] on its own
//! free loopback port (and cluster bus port) and temporary directory, joined with
//! `redis-cli --cluster create`. A master can be killed with SIGKILL, the failover to its
//! replica awaited, and the killed node restarted (it rejoins as a replica). Every node is
//! killed on drop.
//!
//! The nodes use a short `cluster-node-timeout` and `cluster-replica-validity-factor 0` (a
//! replica may always take over, however long it was cut off), so a failover takes a few
//! seconds; `cluster-require-full-coverage` keeps its default (`yes`): while a master is down
//! and not yet replaced, the whole cluster refuses commands.

use std::time::{Duration, Instant};

use crate::redis_server::{free_port, RedisMode, RedisServer, RedisSetup};

/// Hash slots of a Redis Cluster.
pub const SLOTS: u32 = 16384;
/// `cluster-node-timeout`, in milliseconds: how long a node is unreachable before it is
/// suspected failed. Short, so failovers in tests are prompt.
pub const NODE_TIMEOUT_MS: u64 = 1_000;
/// Longest wait for a new cluster to form (slots assigned, replicas synchronised), or for a
/// restarted node to rejoin.
const FORM_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between probes of the cluster's state.
const POLL: Duration = Duration::from_millis(50);

/// One line of `CLUSTER NODES`, as far as the tests need it.
#[derive(Debug, Clone)]
struct NodeView {
    port: u16,
    flags: Vec<String>,
    /// Slot ranges served (masters only), inclusive.
    ranges: Vec<(u32, u32)>,
}

impl NodeView {
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let address = fields.get(1)?;
        let port = address
            .split('@')
            .next()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()?;
        let flags = fields.get(2)?.split(',').map(str::to_string).collect();
        let ranges = fields
            .iter()
            .skip(8)
            .filter(|slot| !slot.starts_with('['))
            .filter_map(|slot| match slot.split_once('-') {
                Some((first, last)) => Some((first.parse().ok()?, last.parse().ok()?)),
                None => slot.parse().ok().map(|only| (only, only)),
            })
            .collect();
        Some(Self {
            port,
            flags,
            ranges,
        })
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// A master that serves slots and is not marked failed.
    fn is_serving_master(&self) -> bool {
        self.has_flag("master")
            && !self.has_flag("fail")
            && !self.has_flag("fail?")
            && !self.ranges.is_empty()
    }

    fn serves(&self, slot: u32) -> bool {
        self.ranges
            .iter()
            .any(|&(first, last)| (first..=last).contains(&slot))
    }
}

/// A running Redis Cluster of private nodes.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    masters: usize,
}

impl RedisCluster {
    /// Starts `masters × (1 + replicas_per_master)` nodes, creates the cluster and waits until
    /// every node sees it healthy: `cluster_state:ok`, every slot served, every replica
    /// synchronised with its master.
    pub fn start(masters: usize, replicas_per_master: usize, mode: RedisMode) -> Self {
        assert!(masters >= 3, "a Redis Cluster needs at least 3 masters");
        let count = masters * (1 + replicas_per_master);
        let nodes: Vec<RedisServer> = (0..count)
            .map(|_| RedisServer::start_with(mode, free_port(), node_setup()))
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let created = std::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", &replicas_per_master.to_string()])
            .arg("--cluster-yes")
            .output()
            .unwrap_or_else(|error| panic!("cannot run redis-cli --cluster create: {error}"));
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr)
        );
        let cluster = Self { nodes, masters };
        cluster.wait_until_healthy("the new cluster to form");
        cluster
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...`: every node, as a seed list.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// Every node's port, running or not.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// The node on `port`.
    pub fn node(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no cluster node on port {port}"))
    }

    fn node_mut(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|node| node.port() == port)
            .unwrap_or_else(|| panic!("no cluster node on port {port}"))
    }

    /// A running node (to ask about the cluster).
    fn any_running(&self) -> &RedisServer {
        self.nodes
            .iter()
            .find(|node| node.is_running())
            .expect("every cluster node is down")
    }

    /// The cluster as a running node sees it (`None` while it cannot answer).
    fn view_from(node: &RedisServer) -> Option<Vec<NodeView>> {
        let nodes = node.try_cli(&["CLUSTER", "NODES"])?;
        Some(nodes.lines().filter_map(NodeView::parse).collect())
    }

    /// The ports of the masters serving slots now, as a running node sees it.
    pub fn masters(&self) -> Vec<u16> {
        let view = Self::view_from(self.any_running()).expect("a running node answers");
        let mut masters: Vec<u16> = view
            .iter()
            .filter(|node| node.is_serving_master())
            .map(|node| node.port)
            .collect();
        masters.sort_unstable();
        masters
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &str) -> u32 {
        let slot = self.any_running().cli(&["CLUSTER", "KEYSLOT", key]);
        slot.parse()
            .unwrap_or_else(|_| panic!("CLUSTER KEYSLOT answered {slot:?}"))
    }

    /// The port of the master serving `key`'s slot now.
    pub fn master_for_key(&self, key: &str) -> u16 {
        let slot = self.slot_of(key);
        let view = Self::view_from(self.any_running()).expect("a running node answers");
        view.iter()
            .find(|node| node.is_serving_master() && node.serves(slot))
            .map(|node| node.port)
            .unwrap_or_else(|| panic!("no master serves slot {slot} (of {key:?}): {view:?}"))
    }

    /// Every key matching `pattern` on every serving master (`KEYS`; test data is small).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .masters()
            .into_iter()
            .flat_map(|port| self.node(port).cli_lines(&["KEYS", pattern]))
            .collect();
        keys.sort();
        keys
    }

    /// Kills the master on `port` with SIGKILL; panics if it is not a serving master.
    pub fn kill_master(&mut self, port: u16) {
        assert!(
            self.masters().contains(&port),
            "port {port} is not a serving master: {:?}",
            self.masters()
        );
        self.node_mut(port).kill();
    }

    /// Waits until the cluster has replaced the killed master on `killed_port`: every running
    /// node sees `cluster_state:ok` and every slot served by a running master that answers
    /// `ROLE` as master. Returns how long it waited; panics after `timeout`.
    pub fn wait_for_failover(&self, killed_port: u16, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if self.replaced(killed_port) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < timeout,
                "no replica took over from the master on port {killed_port} within \
                 {timeout:?}; a node sees:\n{}",
                self.any_running()
                    .try_cli(&["CLUSTER", "NODES"])
                    .unwrap_or_default()
            );
            std::thread::sleep(POLL);
        }
    }

    fn replaced(&self, killed_port: u16) -> bool {
        let running: Vec<&RedisServer> = self.nodes.iter().filter(|n| n.is_running()).collect();
        for node in &running {
            let Some(view) = Self::view_from(node) else {
                return false;
            };
            let serving: Vec<&NodeView> = view.iter().filter(|n| n.is_serving_master()).collect();
            let covered: u32 = serving
                .iter()
                .flat_map(|n| &n.ranges)
                .map(|&(first, last)| last - first + 1)
                .sum();
            if covered != SLOTS || serving.iter().any(|n| n.port == killed_port) {
                return false;
            }
            if !cluster_ok(node) {
                return false;
            }
        }
        // Each new master knows it is one.
        let view = Self::view_from(running[0]).unwrap_or_default();
        view.iter().filter(|n| n.is_serving_master()).all(|master| {
            running
                .iter()
                .find(|node| node.port() == master.port)
                .and_then(|node| node.try_cli(&["ROLE"]))
                .is_some_and(|role| role.starts_with("master"))
        })
    }

    /// Starts the node on `port` again (same port, directory and cluster identity); it rejoins
    /// as a replica of whichever node took over its slots. Waits until the cluster is healthy
    /// again, with this node's replication synchronised.
    pub fn restart(&mut self, port: u16) {
        self.node_mut(port).restart();
        self.wait_until_healthy(&format!("the node on port {port} to rejoin"));
    }

    /// Waits (up to [`FORM_TIMEOUT`]) until every node is running and sees `cluster_state:ok`,
    /// the configured number of masters serve every slot, and every replica is connected to
    /// its master.
    fn wait_until_healthy(&self, what: &str) {
        let started = Instant::now();
        loop {
            match self.unhealthy() {
                None => return,
                Some(problem) => assert!(
                    started.elapsed() < FORM_TIMEOUT,
                    "timed out after {FORM_TIMEOUT:?} waiting for {what}: {problem}"
                ),
            }
            std::thread::sleep(POLL);
        }
    }

    /// What is not healthy yet, or `None`.
    fn unhealthy(&self) -> Option<String> {
        for node in &self.nodes {
            let port = node.port();
            if !node.is_running() {
                return Some(format!("node {port} is down"));
            }
            if !cluster_ok(node) {
                return Some(format!("node {port} does not see cluster_state:ok"));
            }
            let role = node.try_cli(&["ROLE"]).unwrap_or_default();
            let lines: Vec<&str> = role.lines().collect();
            // A replica's ROLE: slave, master host, master port, link state, offset.
            if lines.first() == Some(&"slave") && lines.get(3) != Some(&"connected") {
                return Some(format!("replica {port} is not in sync: {lines:?}"));
            }
        }
        let masters = self.masters().len();
        (masters != self.masters).then(|| format!("{masters} masters serve slots"))
    }
}

/// `cluster_state:ok` and every slot served, as `node` sees it.
fn cluster_ok(node: &RedisServer) -> bool {
    node.try_cli(&["CLUSTER", "INFO"]).is_some_and(|info| {
        info.lines().any(|line| line.trim() == "cluster_state:ok")
            && info
                .lines()
                .any(|line| line.trim() == format!("cluster_slots_ok:{SLOTS}"))
    })
}

/// The settings of a cluster node; the bus port is chosen here (not port + 10000, which may
/// be past 65535 or taken).
fn node_setup() -> RedisSetup {
    let args = [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        &NODE_TIMEOUT_MS.to_string(),
        "--cluster-port",
        &free_port().to_string(),
        // A replica may take over however long it was cut off from its master.
        "--cluster-replica-validity-factor",
        "0",
        // Replicas synchronise at once instead of waiting 5 s for more replicas to join.
        "--repl-diskless-sync-delay",
        "0",
    ];
    RedisSetup {
        config_file: None,
        args: args.iter().map(|arg| arg.to_string()).collect(),
    }
}
