//! A replicated Redis that a test can fail over, whichever kind it is: a [`RedisCluster`] or
//! a [`SentinelSet`]. The failover tests are written once against this.

use std::time::Duration;

use crate::redis_cluster::RedisCluster;
use crate::redis_sentinel::{SentinelSet, SERVICE};
use crate::redis_server::RedisMode;

/// `?replicas=1&replica_timeout_ms=...` for the storage URL: a commit counts as durable once
/// one replica has it, so a failover to that replica loses nothing acknowledged.
pub const ONE_REPLICA: &str = "replicas=1&replica_timeout_ms=2000";

/// A cluster (3 masters, one replica each) or a sentinel set (a master and a replica).
#[derive(Debug)]
pub enum Replicated {
    /// `redis+cluster://` URLs.
    Cluster(RedisCluster),
    /// `redis+sentinel://` URLs.
    Sentinel(SentinelSet),
}

impl Replicated {
    /// A 3-master cluster with one replica per master.
    pub fn cluster(mode: RedisMode) -> Self {
        Replicated::Cluster(RedisCluster::start(3, 1, mode))
    }

    /// A master, a replica and three sentinels.
    pub fn sentinel(mode: RedisMode) -> Self {
        Replicated::Sentinel(SentinelSet::start(mode))
    }

    /// `cluster` or `sentinel`, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Replicated::Cluster(_) => "cluster",
            Replicated::Sentinel(_) => "sentinel",
        }
    }

    /// The storage URL, without options.
    pub fn url(&self) -> String {
        match self {
            Replicated::Cluster(cluster) => cluster.url(),
            Replicated::Sentinel(set) => set.url(SERVICE),
        }
    }

    /// The storage URL with [`ONE_REPLICA`].
    pub fn url_one_replica(&self) -> String {
        format!("{}?{ONE_REPLICA}", self.url())
    }

    /// The master that holds `key` now: its slot's master in a cluster, the master otherwise.
    pub fn master_holding(&self, key: &str) -> u16 {
        match self {
            Replicated::Cluster(cluster) => cluster.master_for_key(key),
            Replicated::Sentinel(set) => set.master_port(),
        }
    }

    /// The hash slot of `key` in a cluster; 0 for a sentinel set (one master holds every key).
    pub fn slot_of(&self, key: &str) -> u32 {
        match self {
            Replicated::Cluster(cluster) => cluster.slot_of(key),
            Replicated::Sentinel(_) => 0,
        }
    }

    /// Kills the master holding `key` with SIGKILL; returns its port.
    pub fn kill_master_holding(&mut self, key: &str) -> u16 {
        match self {
            Replicated::Cluster(cluster) => {
                let port = cluster.master_for_key(key);
                cluster.kill_master(port);
                port
            }
            Replicated::Sentinel(set) => set.kill_master(),
        }
    }

    /// Waits until a replica has replaced the master killed on `killed_port`; returns how long
    /// it waited, panics after `timeout`.
    pub fn wait_for_failover(&self, killed_port: u16, timeout: Duration) -> Duration {
        match self {
            Replicated::Cluster(cluster) => cluster.wait_for_failover(killed_port, timeout),
            Replicated::Sentinel(set) => set.wait_for_failover(killed_port, timeout),
        }
    }

    /// Brings the killed node back as a replica and waits until it is in sync.
    pub fn restart(&mut self, port: u16) {
        match self {
            Replicated::Cluster(cluster) => cluster.restart(port),
            Replicated::Sentinel(set) => set.restart(port),
        }
    }

    /// Every key matching `pattern` (on every master).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        match self {
            Replicated::Cluster(cluster) => cluster.keys(pattern),
            Replicated::Sentinel(set) => {
                let master = set.master_port();
                let mut keys = set.node(master).cli_lines(&["KEYS", pattern]);
                keys.sort();
                keys
            }
        }
    }

    /// Deletes `key` on the master holding it.
    pub fn delete(&self, key: &str) {
        let master = self.master_holding(key);
        let node = match self {
            Replicated::Cluster(cluster) => cluster.node(master),
            Replicated::Sentinel(set) => set.node(master),
        };
        node.cli(&["DEL", key]);
    }
}
