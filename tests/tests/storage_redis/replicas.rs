//! `?replicas=N`: a commit counts only once N replicas confirm it (`WAIT`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_engine::{MessageId, QueueConfig, Record, Storage, StorageError, StoredMessage};
use switchboard_storage::redis::{RedisOptions, RedisStorage};
use switchboard_tests::redis_server::{RedisMode, RedisServer};

fn message(id: u128) -> StoredMessage {
    StoredMessage {
        id: MessageId(id),
        queue: Arc::from("jobs"),
        seq: id as u64,
        priority: 0,
        payload: Arc::from(&b"must reach a replica"[..]),
        headers: Default::default(),
        enqueued_at: 5,
        not_before: 5,
        expires_at: None,
        max_attempts: 3,
        attempts: 0,
        dedup_key: None,
        dead: None,
    }
}

fn batch(id: u128) -> Vec<Record> {
    vec![
        Record::QueueConfigured {
            queue: Arc::from("jobs"),
            config: QueueConfig::default(),
        },
        Record::Enqueued {
            message: message(id),
            dedup_until: None,
        },
    ]
}

#[test]
fn a_commit_is_not_acknowledged_until_a_replica_has_it() {
    let master = RedisServer::start(RedisMode::NoPersistence);
    let replica = RedisServer::start(RedisMode::NoPersistence);
    let url = format!("{}?replicas=1&replica_timeout_ms=200", master.url());
    let mut storage = RedisStorage::open(&url, RedisOptions::default()).unwrap();
    storage.recover().unwrap();

    // No replica yet: applied on the master, but the commit is not acknowledged.
    let refused = storage.commit(&batch(1)).unwrap_err();
    let StorageError::Unavailable(text) = &refused else {
        panic!("expected Unavailable, got {refused:?}");
    };
    assert!(
        text.contains("0 of the 1") && text.contains("replicas=1"),
        "{text}"
    );

    // Once a replica follows the master, the same commit (the engine retries it until it
    // succeeds) completes: applied once, and on the replica.
    master.cli(&["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
    replica.cli(&["REPLICAOF", "127.0.0.1", &master.port().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match storage.commit(&batch(1)) {
            Ok(()) => break,
            Err(StorageError::Unavailable(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(error) => panic!("the commit never completed: {error}"),
        }
    }
    storage.commit(&batch(2)).unwrap();
    assert_eq!(replica.cli(&["HLEN", "switchboard:{jobs}:payload"]), "2");
    assert_eq!(
        replica
            .cli(&["GET", "switchboard:{jobs}:applied"])
            .split(' ')
            .nth(1),
        Some("2"),
        "two batches, the first sent twice and applied once"
    );
}

#[test]
fn replica_options_are_checked() {
    let master = RedisServer::start(RedisMode::NoPersistence);
    let error = RedisStorage::open(
        &format!("{}?replicas=many", master.url()),
        RedisOptions::default(),
    )
    .err()
    .expect("replicas=many is refused");
    assert!(error.to_string().contains("replicas=many"), "{error}");
}
