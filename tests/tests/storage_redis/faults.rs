//! Ownership of a prefix, Redis down at open, and Redis killed under load.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_engine::{
    EngineError, MessageId, NewMessage, QueueConfig, Record, Storage, StorageError, StoredMessage,
};
use switchboard_storage::redis::{RedisOpenError, RedisOptions, RedisStorage};
use switchboard_tests::redis_server::{free_port, RedisMode, RedisServer};

use super::layout::{engine_on, open_storage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_owner_is_refused_then_takes_over_once_the_lease_lapsed() {
    let server = RedisServer::start(RedisMode::NoPersistence);
    let first = open_storage(&server);
    let first_owner = first.owner_id().to_string();
    let first_engine = engine_on(first);
    first_engine
        .enqueue("jobs", NewMessage::new("kept"))
        .await
        .unwrap();

    let refused = RedisStorage::open(&server.url(), RedisOptions::default())
        .err()
        .expect("a second server must not open a prefix with a live owner");
    let text = refused.to_string();
    assert!(
        text.contains("\"switchboard:\"") && text.contains(&first_owner),
        "the refusal names the prefix and the owner: {text}"
    );

    // The first server stalls past its lease (simulated: the lease key lapses now).
    server.cli(&["PEXPIRE", "switchboard:{~}:owner", "1"]);
    std::thread::sleep(Duration::from_millis(20));
    let second = open_storage(&server);
    assert_ne!(second.owner_id(), first_owner);
    let second_engine = engine_on(second);
    assert_eq!(second_engine.queue_stats("jobs").unwrap().ready, 1);

    let deposed = first_engine
        .enqueue("jobs", NewMessage::new("lost"))
        .await
        .unwrap_err();
    assert!(
        matches!(&deposed, EngineError::Poisoned(text) if text.contains("lost ownership of prefix")),
        "the deposed owner stops: {deposed}"
    );
    drop(first_engine);
    second_engine
        .enqueue("jobs", NewMessage::new("new owner writes"))
        .await
        .unwrap();
    assert_eq!(second_engine.queue_stats("jobs").unwrap().ready, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_owner_with_the_same_id_takes_its_lease_back_at_once_and_fences_its_predecessor(
) {
    let server = RedisServer::start(RedisMode::NoPersistence);
    let options = RedisOptions {
        owner_id: Some("host-a:workdir-1".into()),
        owner_lease: Duration::from_secs(60),
        advertise_url: Some("http://127.0.0.1:9001".into()),
        ..RedisOptions::default()
    };
    let first = RedisStorage::open(&server.url(), options.clone()).unwrap();
    let first_token: u64 = first.fencing_token().parse().unwrap();
    let first_engine = engine_on(first);
    first_engine
        .enqueue("jobs", NewMessage::new("before"))
        .await
        .unwrap();

    // Another id is refused, told who holds the prefix and where it serves.
    let refused = RedisStorage::open(&server.url(), RedisOptions::default())
        .err()
        .expect("another server must wait for the lease");
    let RedisOpenError::Owned(owned) = &refused else {
        panic!("expected Owned, got {refused:?}");
    };
    assert_eq!(owned.holder, "host-a:workdir-1");
    assert_eq!(owned.active_url.as_deref(), Some("http://127.0.0.1:9001"));
    assert!(owned.lease_remaining_ms > 50_000, "{owned:?}");

    // The same id (the server restarted, its predecessor hung or dead) takes it at once, with
    // a newer fencing token, and the predecessor can write nothing more.
    let second = RedisStorage::open(&server.url(), options).unwrap();
    assert!(second.fencing_token().parse::<u64>().unwrap() > first_token);
    let second_engine = engine_on(second);
    assert_eq!(second_engine.queue_stats("jobs").unwrap().ready, 1);
    second_engine
        .enqueue("jobs", NewMessage::new("after"))
        .await
        .unwrap();
    let deposed = first_engine
        .enqueue("jobs", NewMessage::new("from the predecessor"))
        .await
        .unwrap_err();
    assert!(
        matches!(&deposed, EngineError::Poisoned(text) if text.contains("lost ownership")),
        "the predecessor is fenced off: {deposed}"
    );
    assert_eq!(second_engine.queue_stats("jobs").unwrap().ready, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_takes_its_lease_back_after_an_outage_longer_than_the_lease() {
    let mut server = RedisServer::start(RedisMode::Aof { fsync: "always" });
    let options = RedisOptions {
        owner_lease: Duration::from_millis(300),
        ..RedisOptions::default()
    };
    let engine = engine_on(RedisStorage::open(&server.url(), options).unwrap());
    let before = engine
        .enqueue("jobs", NewMessage::new("a"))
        .await
        .unwrap()
        .id;
    tokio::task::block_in_place(|| {
        server.kill();
        std::thread::sleep(Duration::from_millis(800));
        server.restart();
    });
    let after = enqueue_retrying(&engine, "b").await;
    drop(engine);
    let snapshot = open_storage(&server).recover().unwrap();
    let ids: Vec<MessageId> = snapshot.messages.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![before, after]);
}

async fn enqueue_retrying(engine: &switchboard_engine::Engine, payload: &str) -> MessageId {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match engine.enqueue("jobs", NewMessage::new(payload)).await {
            Ok(enqueued) => return enqueued.id,
            Err(EngineError::StorageUnavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(error) => panic!("enqueue after the outage failed: {error}"),
        }
    }
}

#[test]
fn redis_down_at_open_is_a_clear_error() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let error = RedisStorage::open(&url, RedisOptions::default())
        .err()
        .expect("nothing listens there");
    let RedisOpenError::Storage(StorageError::Unavailable(text)) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    for part in [
        format!("cannot connect to Redis at {url}"),
        "connection refused".to_string(),
        "redis-server --appendonly yes".to_string(),
    ] {
        assert!(text.contains(&part), "{text:?} lacks {part:?}");
    }
    // Other backends are the server's advice to give (it named redb twice when this did too).
    assert!(!text.contains("redb:"), "{text:?}");
    let bad = RedisStorage::open("redis://:secret@[::1", RedisOptions::default())
        .err()
        .expect("not a URL");
    assert!(
        !bad.to_string().contains("secret"),
        "passwords stay hidden: {bad}"
    );
}

/// Counts of what the load tasks saw.
#[derive(Default)]
struct Load {
    enqueued: Mutex<HashSet<MessageId>>,
    acked: Mutex<HashSet<MessageId>>,
    unavailable: AtomicU64,
    slowest_ms: AtomicU64,
    stop: AtomicBool,
}

impl Load {
    fn note(&self, started: Instant, error: Option<EngineError>) {
        let took = started.elapsed().as_millis() as u64;
        self.slowest_ms.fetch_max(took, Ordering::Relaxed);
        match error {
            None => {}
            Some(EngineError::StorageUnavailable(_)) => {
                self.unavailable.fetch_add(1, Ordering::Relaxed);
            }
            Some(other) => panic!("unexpected error under load: {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_under_load_loses_nothing_acknowledged() {
    const PRODUCERS: usize = 3;
    const CONSUMERS: usize = 2;
    let mut server = RedisServer::start(RedisMode::Aof { fsync: "always" });
    let engine = engine_on(open_storage(&server));
    let config = QueueConfig {
        max_size: 1_000_000,
        ..QueueConfig::default()
    };
    engine.configure_queue("load", config).await.unwrap();
    let load = Arc::new(Load::default());
    let mut tasks = Vec::new();
    for producer in 0..PRODUCERS {
        let (engine, load) = (engine.clone(), load.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !load.stop.load(Ordering::Relaxed) {
                n += 1;
                let started = Instant::now();
                let message = NewMessage::new(format!("{producer}-{n}"));
                match engine.enqueue("load", message).await {
                    Ok(enqueued) => {
                        load.enqueued.lock().unwrap().insert(enqueued.id);
                        load.note(started, None);
                    }
                    Err(error) => {
                        load.note(started, Some(error));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }
    for _ in 0..CONSUMERS {
        let (engine, load) = (engine.clone(), load.clone());
        tasks.push(tokio::spawn(async move {
            while !load.stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let deliveries = match engine.lease("load", 20, Some(60_000)).await {
                    Ok(deliveries) => deliveries,
                    Err(error) => {
                        load.note(started, Some(error));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                if deliveries.is_empty() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                for delivery in deliveries {
                    let started = Instant::now();
                    match engine.ack(delivery.message.id, delivery.token).await {
                        Ok(()) => {
                            load.acked.lock().unwrap().insert(delivery.message.id);
                            load.note(started, None);
                        }
                        Err(error) => load.note(started, Some(error)),
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| {
        server.kill();
        std::thread::sleep(Duration::from_secs(1));
        server.restart();
    });
    let enqueued_at_restart = load.enqueued.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    load.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("load task");
    }
    drop(engine);

    let enqueued = load.enqueued.lock().unwrap().clone();
    let acked = load.acked.lock().unwrap().clone();
    assert!(
        enqueued.len() > enqueued_at_restart,
        "enqueues continue after Redis is back"
    );
    let stalled = load.slowest_ms.load(Ordering::Relaxed) >= 500;
    let refused = load.unavailable.load(Ordering::Relaxed) > 0;
    assert!(stalled || refused, "the outage was noticed");
    let snapshot = open_storage(&server).recover().unwrap();
    let recovered: HashSet<MessageId> = snapshot.messages.iter().map(|m| m.id).collect();
    let lost: Vec<_> = enqueued
        .difference(&acked)
        .filter(|id| !recovered.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged enqueues lost: {lost:?}",
        lost.len()
    );
    let revived: Vec<_> = acked.intersection(&recovered).collect();
    assert!(revived.is_empty(), "acked messages came back: {revived:?}");
    eprintln!(
        "load: {} enqueued, {} acked, {} refused as unavailable, slowest {} ms",
        enqueued.len(),
        acked.len(),
        load.unavailable.load(Ordering::Relaxed),
        load.slowest_ms.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_urls_work() {
    let server = RedisServer::start_tls(RedisMode::NoPersistence);
    assert!(server.url().starts_with("rediss://"));
    let storage = RedisStorage::open(&server.url(), RedisOptions::default())
        .unwrap_or_else(|error| panic!("rediss:// open failed: {error}"));
    let engine = engine_on(storage);
    let id = engine
        .enqueue("secure", NewMessage::new("over tls"))
        .await
        .unwrap()
        .id;
    drop(engine);
    let snapshot = open_storage(&server).recover().unwrap();
    assert_eq!(snapshot.messages[0].id, id);
    let verified = server.url().replace("/#insecure", "");
    let refused = RedisStorage::open(&verified, RedisOptions::default())
        .err()
        .expect("a self-signed certificate is not trusted without #insecure");
    assert!(
        matches!(&refused, RedisOpenError::Storage(StorageError::Failed(text)) if text.contains("certificate") && text.contains("#insecure")),
        "{refused}"
    );
}

/// Two batches written back to back, both applied by Redis, then the connection is lost
/// before their replies are read: both are sent again on a new connection, and Redis skips
/// them (the second deleted what the first created: applying the first again would bring the
/// message back until the second ran again).
#[test]
fn batches_resent_after_a_lost_connection_are_applied_once() {
    let server = RedisServer::start(RedisMode::NoPersistence);
    let mut storage = open_storage(&server);
    storage.recover().unwrap();
    assert_eq!(storage.pipeline_depth(), 2);
    let message = StoredMessage {
        id: MessageId(7),
        queue: Arc::from("jobs"),
        seq: 1,
        priority: 0,
        payload: Arc::from(&b"once"[..]),
        headers: Default::default(),
        enqueued_at: 1,
        not_before: 1,
        expires_at: None,
        max_attempts: 3,
        attempts: 0,
        dedup_key: None,
        dead: None,
    };
    let queue = message.queue.clone();
    storage
        .submit(&[Record::Enqueued {
            message,
            dedup_until: None,
        }])
        .unwrap();
    storage
        .submit(&[Record::Removed {
            queue,
            id: MessageId(7),
        }])
        .unwrap();
    let hset_calls = || {
        let stats = server.cli(&["INFO", "commandstats"]);
        let line = stats.lines().find(|line| line.starts_with("cmdstat_hset:"));
        line.map(|line| line.split(['=', ',']).nth(1).unwrap().to_string())
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while server
        .cli(&["GET", "switchboard:{jobs}:applied"])
        .split(' ')
        .nth(1)
        != Some("2")
    {
        assert!(
            Instant::now() < deadline,
            "Redis did not apply both batches"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let hsets_applied = hset_calls();
    storage.simulate_lost_connection();

    storage.finish_oldest().unwrap();
    storage.finish_oldest().unwrap();
    assert_eq!(
        hset_calls(),
        hsets_applied,
        "the resent batches wrote nothing"
    );
    assert_eq!(server.cli(&["HLEN", "switchboard:{jobs}:payload"]), "0");
    assert!(storage.recover().unwrap().messages.is_empty());
}
