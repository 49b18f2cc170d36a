//! The Redis topologies the storage tests run on, checked on their own: a private Redis
//! Cluster forms and spreads keys over its masters, and replaces a killed master with its
//! replica; a private Sentinel set fails over to its replica. In both, a key written and
//! confirmed with `WAIT 1` before the kill is readable afterwards.

use std::time::{Duration, Instant};

use switchboard_tests::redis_cluster::RedisCluster;
use switchboard_tests::redis_sentinel::{SentinelSet, SERVICE};
use switchboard_tests::redis_server::{RedisMode, RedisServer};

/// Longest wait for a failover: a liveness bound, far above the few seconds it takes.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a `WAIT` may wait for the replica, in milliseconds.
const WAIT_MS: u64 = 5_000;

/// Writes `key` on `master` and waits for one replica to confirm it; panics unless one did.
fn set_and_wait_for_a_replica(master: &RedisServer, key: &str, value: &str) {
    let replies = master.cli_script(&format!("SET {key} {value}\nWAIT 1 {WAIT_MS}\n"));
    let replies: Vec<&str> = replies.lines().collect();
    assert_eq!(
        replies,
        ["OK", "1"],
        "SET then WAIT 1 on port {}",
        master.port()
    );
}

#[test]
fn cluster_spreads_keys_over_three_masters() {
    let started = Instant::now();
    let cluster = RedisCluster::start(3, 1, RedisMode::NoPersistence);
    assert_eq!(
        cluster.masters().len(),
        3,
        "masters: {:?}",
        cluster.masters()
    );
    for n in 0..60 {
        let key = format!("spread-{n}");
        cluster
            .node(cluster.master_for_key(&key))
            .cli(&["SET", &key, "x"]);
    }
    for master in cluster.masters() {
        let keys = cluster.node(master).cli_lines(&["KEYS", "spread-*"]);
        assert!(!keys.is_empty(), "master {master} holds none of 60 keys");
    }
    assert_eq!(cluster.keys("spread-*").len(), 60);
    eprintln!("cluster formed and checked in {:?}", started.elapsed());
}

#[test]
fn cluster_replaces_a_killed_master_and_keeps_a_waited_key() {
    let started = Instant::now();
    let mut cluster = RedisCluster::start(3, 1, RedisMode::Aof { fsync: "always" });
    let formed = started.elapsed();
    let key = "{survivor}:key";
    let killed = cluster.master_for_key(key);
    set_and_wait_for_a_replica(cluster.node(killed), key, "kept");

    let killed_at = Instant::now();
    cluster.kill_master(killed);
    cluster.wait_for_failover(killed, FAILOVER_TIMEOUT);
    let failover = killed_at.elapsed();

    let promoted = cluster.master_for_key(key);
    assert_ne!(promoted, killed, "the killed node still serves {key:?}");
    assert_eq!(cluster.node(promoted).cli(&["GET", key]), "kept");

    let restart_at = Instant::now();
    cluster.restart(killed);
    let role = cluster.node(killed).cli_lines(&["ROLE"]);
    assert_eq!(role.first().map(String::as_str), Some("slave"), "{role:?}");
    assert_eq!(role.get(2), Some(&promoted.to_string()), "{role:?}");
    eprintln!(
        "cluster: formed in {formed:?}, failover in {failover:?} after the kill, killed node \
         back as a replica in {:?}; test {:?}",
        restart_at.elapsed(),
        started.elapsed()
    );
}

#[test]
fn sentinels_fail_over_to_the_replica_and_keep_a_waited_key() {
    let started = Instant::now();
    let mut set = SentinelSet::start(RedisMode::Aof { fsync: "always" });
    let formed = started.elapsed();
    let url = set.url(SERVICE);
    assert!(url.starts_with("redis+sentinel://127.0.0.1:"), "{url}");
    assert!(url.ends_with(&format!("/{SERVICE}")), "{url}");
    let master = set.master_port();
    set_and_wait_for_a_replica(set.node(master), "survivor", "kept");

    let killed_at = Instant::now();
    let killed = set.kill_master();
    assert_eq!(killed, master);
    set.wait_for_failover(killed, FAILOVER_TIMEOUT);
    let failover = killed_at.elapsed();

    let promoted = set.master_port();
    assert_ne!(promoted, killed);
    assert_eq!(set.node(promoted).cli(&["GET", "survivor"]), "kept");

    let restart_at = Instant::now();
    set.restart(killed);
    let role = set.node(killed).cli_lines(&["ROLE"]);
    assert_eq!(role.first().map(String::as_str), Some("slave"), "{role:?}");
    assert_eq!(set.node(killed).cli(&["GET", "survivor"]), "kept");
    eprintln!(
        "sentinel: ready in {formed:?}, failover in {failover:?} after the kill, killed node \
         back as a replica in {:?}; test {:?}",
        restart_at.elapsed(),
        started.elapsed()
    );
}
