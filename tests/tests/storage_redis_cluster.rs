//! The Redis backend on a private Redis Cluster (3 masters, one replica each, URLs
//! `redis+cluster://...?replicas=1`): the shared conformance suite, the kill -9 crash test,
//! and the master of a queue's slot killed under load (once by default; at least five times
//! with `SWITCHBOARD_LONG_FAILOVER=1`).

// The soak load's helpers for probes and outages are not used here.
#[allow(dead_code)]
mod soak_support;
#[macro_use]
mod storage_replicated;

use switchboard_tests::redis_replicated::Replicated;
use switchboard_tests::redis_server::RedisMode;

/// A cluster whose nodes keep nothing on disk: the replicas are what keeps data here.
fn cluster() -> Replicated {
    Replicated::cluster(RedisMode::NoPersistence)
}

replicated_conformance_tests!(
    cluster();
    a_batch_reads_its_own_writes,
    recommitting_a_batch_changes_nothing,
    ordering_survives_restart,
    leased_messages_come_back_ready,
    dead_letters_and_reasons_survive_restart,
    ttl_expiry_applies_after_restart,
    delays_survive_restart,
    dedup_keys_survive_restart,
    queue_configs_survive_restart,
    recovery_keeps_ready_delayed_dead_and_attempts,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_match_the_memory_reference() {
    storage_replicated::random_operations(&cluster()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_leave_nothing_behind() {
    storage_replicated::acked_messages_leave_nothing_behind(&cluster()).await;
}

#[test]
fn cluster_survives_kill_9_of_the_worker() {
    storage_replicated::crash_test(&cluster());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_master_fails_over_under_load_and_nothing_is_lost() {
    storage_replicated::failover_under_load(cluster(), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_master_failovers_under_load_lose_nothing() {
    if !storage_replicated::long_run_asked("repeated_master_failovers_under_load_lose_nothing") {
        return;
    }
    let kills = soak_support::env_or("SWITCHBOARD_FAILOVER_KILLS", 5) as usize;
    storage_replicated::failover_under_load(cluster(), kills).await;
}
