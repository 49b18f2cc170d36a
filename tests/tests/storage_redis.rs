//! The Redis backend against private `redis-server`s: the shared conformance suite, then what
//! only Redis has (inspectable layout, ownership, outages, persistence reports).

#[path = "storage_redis/faults.rs"]
mod faults;
#[path = "storage_redis/layout.rs"]
mod layout;
#[path = "storage_redis/outage.rs"]
mod outage;
#[path = "storage_redis/perf.rs"]
mod perf;
#[path = "storage_redis/replicas.rs"]
mod replicas;

use switchboard_engine::Storage;
use switchboard_storage::redis::{RedisOptions, RedisStorage};
use switchboard_tests::conformance;
use switchboard_tests::redis_server::{RedisMode, RedisServer};

/// A factory that opens the store on `server` again on every call (what the suite expects).
fn opener(server: &RedisServer, options: RedisOptions) -> impl Fn() -> Box<dyn Storage> {
    let url = server.url();
    move || {
        let storage = RedisStorage::open(&url, options.clone())
            .unwrap_or_else(|error| panic!("cannot open the Redis storage: {error}"));
        Box::new(storage) as Box<dyn Storage>
    }
}

/// Options that make every commit take the staged path (batch staged in a list first).
fn staged() -> RedisOptions {
    RedisOptions {
        inline_batch_bytes_max: 0,
        ..RedisOptions::default()
    }
}

macro_rules! conformance_tests {
    ($($suite:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $suite() {
                let server = RedisServer::start(RedisMode::NoPersistence);
                conformance::$suite(opener(&server, RedisOptions::default())).await;
            }
        )*
    };
}

conformance_tests!(
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
    let server = RedisServer::start(RedisMode::NoPersistence);
    for seed in 1..=3 {
        server.cli(&["FLUSHALL"]);
        conformance::random_operations_match_the_memory_reference(
            opener(&server, RedisOptions::default()),
            seed,
            400,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_leave_nothing_behind() {
    let server = RedisServer::start(RedisMode::NoPersistence);
    let port = server.port();
    let queue_keys = move || {
        // Every key of every queue but its applied-batch mark, which like its config stays as
        // long as the queue (the prefix's own keys under {~}, registry, owner and fence, aside).
        let output = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "--raw", "KEYS", "switchboard:{*"])
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|key| !key.starts_with("switchboard:{~}:") && !key.ends_with("}:applied"))
            .count() as u64
    };
    conformance::acked_messages_leave_nothing_behind(
        opener(&server, RedisOptions::default()),
        queue_keys,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_batches_conform_too() {
    let server = RedisServer::start(RedisMode::NoPersistence);
    conformance::a_batch_reads_its_own_writes(opener(&server, staged())).await;
    server.cli(&["FLUSHALL"]);
    conformance::recommitting_a_batch_changes_nothing(opener(&server, staged())).await;
    server.cli(&["FLUSHALL"]);
    conformance::random_operations_match_the_memory_reference(opener(&server, staged()), 9, 200)
        .await;
    let leftovers = server.cli_lines(&["KEYS", "switchboard:{~}:staging*"]);
    assert!(
        leftovers.is_empty(),
        "staging lists left behind: {leftovers:?}"
    );
}
