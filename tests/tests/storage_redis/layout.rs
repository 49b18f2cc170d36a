//! What a person sees with `redis-cli`, what stays in Redis over time, and what Redis reports.

use std::sync::Arc;

use switchboard_engine::{
    Engine, EngineOptions, MessageId, NewMessage, QueueConfig, Storage, StorageError, SystemClock,
};
use switchboard_storage::redis::{RedisOptions, RedisPersistence, RedisStorage};
use switchboard_tests::redis_server::{RedisMode, RedisServer};

pub fn open_storage(server: &RedisServer) -> RedisStorage {
    RedisStorage::open(&server.url(), RedisOptions::default())
        .unwrap_or_else(|error| panic!("cannot open the Redis storage: {error}"))
}

pub fn engine_on(storage: RedisStorage) -> Engine {
    Engine::open(
        Box::new(storage),
        Arc::new(SystemClock),
        EngineOptions::default(),
    )
    .unwrap_or_else(|error| panic!("engine does not open: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_readable_with_redis_cli() {
    let server = RedisServer::start(RedisMode::NoPersistence);
    let engine = engine_on(open_storage(&server));
    engine
        .configure_queue("jobs", QueueConfig::default())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (n, priority) in [1u8, 5, 1, 9, 5].into_iter().enumerate() {
        let message = NewMessage::new(format!("p{n}")).with_priority(priority);
        ids.push(engine.enqueue("jobs", message).await.unwrap().id);
    }
    let delayed = engine
        .enqueue("jobs", NewMessage::new("later").with_delay_ms(60_000))
        .await
        .unwrap()
        .id;
    let deduped = engine
        .enqueue("jobs", NewMessage::new("once").with_dedup_key("order-7"))
        .await
        .unwrap()
        .id;

    let ready = server.cli_lines(&["ZRANGE", "switchboard:{jobs}:ready", "0", "-1"]);
    let in_delivery_order = [ids[3], ids[1], ids[4], ids[0], ids[2], deduped];
    assert_eq!(
        ready,
        strings(&in_delivery_order),
        "ZRANGE lists delivery order"
    );
    let delayed_ids = server.cli_lines(&["ZRANGE", "switchboard:{jobs}:delayed", "0", "-1"]);
    assert_eq!(delayed_ids, strings(&[delayed]));

    let mut keys = server.cli_lines(&["KEYS", "*"]);
    keys.sort();
    let mut expected: Vec<String> = [
        "switchboard:{~}:queues",
        "switchboard:{~}:owner",
        "switchboard:{~}:active",
        "switchboard:{~}:fence",
        "switchboard:{~}:layout",
        "switchboard:{~}:committed",
        "switchboard:{jobs}:applied",
        "switchboard:{jobs}:config",
        "switchboard:{jobs}:ready",
        "switchboard:{jobs}:delayed",
        "switchboard:{jobs}:dedup",
        "switchboard:{jobs}:payload",
        "switchboard:{jobs}:meta",
    ]
    .map(String::from)
    .to_vec();
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(server.cli(&["GET", "switchboard:{~}:layout"]), "3");
    assert_eq!(server.cli(&["HLEN", "switchboard:{jobs}:payload"]), "7");

    let top = ids[3].to_string();
    assert_eq!(
        server.cli(&["HGET", "switchboard:{jobs}:payload", &top]),
        "p3"
    );
    let meta = |id: &str| server.cli(&["HGET", "switchboard:{jobs}:meta", id]);
    assert!(
        meta(&top).contains("\"priority\":9") && meta(&top).contains("\"attempts\":0"),
        "meta is JSON: {}",
        meta(&top)
    );
    assert_eq!(server.cli(&["SMEMBERS", "switchboard:{~}:queues"]), "jobs");
    let config = server.cli(&["GET", "switchboard:{jobs}:config"]);
    assert!(
        config.contains("\"max_attempts\":3"),
        "config is JSON: {config}"
    );
    let dedup = server.cli(&["HGET", "switchboard:{jobs}:dedup", "order-7"]);
    assert!(
        dedup.starts_with(&format!("{deduped} ")),
        "dedup entry: {dedup}"
    );

    let delivery = engine
        .lease("jobs", 1, Some(60_000))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(delivery.message.id, ids[3]);
    let ready = server.cli_lines(&["ZRANGE", "switchboard:{jobs}:ready", "0", "-1"]);
    assert!(
        !ready.contains(&top),
        "a leased message is not listed as ready"
    );
    assert!(meta(&top).contains("\"attempts\":1"), "{}", meta(&top));
    engine.ack(ids[3], delivery.token).await.unwrap();
    for hash in ["payload", "meta"] {
        let key = format!("switchboard:{{jobs}}:{hash}");
        assert_eq!(
            server.cli(&["HEXISTS", &key, &top]),
            "0",
            "an acked message is deleted from {key}"
        );
    }
}

fn strings(ids: &[MessageId]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_does_not_grow_with_history() {
    const CYCLES: usize = 10_000;
    const BATCH: usize = 500;
    let server = RedisServer::start(RedisMode::NoPersistence);
    let engine = engine_on(open_storage(&server));
    let config = QueueConfig {
        max_size: 100_000,
        ..QueueConfig::default()
    };
    engine.configure_queue("churn", config).await.unwrap();
    let baseline = server.dbsize();
    for round in 0..CYCLES / BATCH {
        let batch = (0..BATCH)
            .map(|n| NewMessage::new(format!("{round}-{n}")).with_priority((n % 4) as u8))
            .collect();
        engine.enqueue_batch("churn", batch).await.unwrap();
        let deliveries = engine.lease("churn", BATCH, Some(60_000)).await.unwrap();
        assert_eq!(deliveries.len(), BATCH);
        let acks: Vec<_> = deliveries.iter().map(|d| (d.message.id, d.token)).collect();
        for result in engine.ack_batch(&acks).await.unwrap() {
            result.unwrap();
        }
    }
    assert_eq!(
        server.dbsize(),
        baseline,
        "DBSIZE after {CYCLES} enqueue+lease+ack cycles: {:?}",
        server.cli_lines(&["KEYS", "*"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_survives_engine_and_redis_restart() {
    let mut server = RedisServer::start(RedisMode::Aof { fsync: "always" });
    let engine = engine_on(open_storage(&server));
    let priorities = [2u8, 7, 2, 0, 7, 255, 2];
    let mut ids = Vec::new();
    for (n, priority) in priorities.into_iter().enumerate() {
        let message = NewMessage::new(format!("m{n}")).with_priority(priority);
        ids.push((
            priority,
            n,
            engine.enqueue("ordered", message).await.unwrap().id,
        ));
    }
    drop(engine);
    tokio::task::block_in_place(|| server.restart());
    let engine = engine_on(open_storage(&server));
    ids.sort_by_key(|(priority, n, _)| (std::cmp::Reverse(*priority), *n));
    let mut delivered = Vec::new();
    while let Some(delivery) = engine.lease("ordered", 1, None).await.unwrap().pop() {
        delivered.push(delivery.message.id);
    }
    let expected: Vec<MessageId> = ids.iter().map(|(_, _, id)| *id).collect();
    assert_eq!(
        delivered, expected,
        "priority first, FIFO within a priority"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistence_is_reported() {
    let volatile = RedisServer::start(RedisMode::NoPersistence);
    let storage = open_storage(&volatile);
    assert_eq!(storage.persistence(), &RedisPersistence::None);
    assert!(!storage.persistence().is_durable());
    let durable = RedisServer::start(RedisMode::Aof { fsync: "everysec" });
    let storage = open_storage(&durable);
    assert_eq!(
        storage.persistence(),
        &RedisPersistence::AppendOnly {
            fsync: "everysec".into()
        }
    );
    assert!(storage.persistence().is_durable());
    assert_eq!(
        storage.persistence().to_string(),
        "aof (appendfsync everysec)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_hash_is_reported_as_corrupt_naming_the_key() {
    let server = RedisServer::start(RedisMode::NoPersistence);
    let engine = engine_on(open_storage(&server));
    let id = engine
        .enqueue("jobs", NewMessage::new("x"))
        .await
        .unwrap()
        .id;
    drop(engine);
    let id = id.to_string();
    let meta = "switchboard:{jobs}:meta";
    server.cli(&["HSET", meta, &id, "{\"priority\":\"high\"}"]);
    let error = open_storage(&server).recover().unwrap_err();
    match error {
        StorageError::Corrupt(text) => {
            assert!(text.contains(meta) && text.contains(&id), "{text}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let payload = "switchboard:{jobs}:payload";
    server.cli(&["HSET", meta, &id, "{\"priority\":1,\"max_attempts\":3,\"enqueued_at\":1,\"attempts\":0,\"seq\":1,\"not_before\":1}"]);
    server.cli(&["HDEL", payload, &id]);
    let error = open_storage(&server).recover().unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt(text) if text.contains(payload) && text.contains(&id)),
        "a message without its payload: {error:?}"
    );
    server.cli(&["HDEL", meta, &id]);
    let error = open_storage(&server).recover().unwrap_err();
    assert!(
        matches!(&error, StorageError::Corrupt(text) if text.contains(meta) && text.contains(&id)),
        "an indexed id without its meta: {error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_in_another_layout_is_refused_with_what_to_do() {
    let server = RedisServer::start(RedisMode::NoPersistence);
    server.cli(&["SADD", "switchboard:queues", "jobs"]);
    server.cli(&["HSET", "switchboard:{jobs}:msg:1", "payload", "x"]);
    let error = RedisStorage::open(&server.url(), RedisOptions::default())
        .err()
        .expect("layout 1 data must be refused");
    let text = error.to_string();
    assert!(
        text.contains("layout 1") && text.contains("another prefix"),
        "{text}"
    );
    server.cli(&["FLUSHALL"]);
    server.cli(&["SET", "switchboard:{~}:layout", "4"]);
    let error = RedisStorage::open(&server.url(), RedisOptions::default())
        .err()
        .expect("a newer layout must be refused");
    assert!(error.to_string().contains("layout 4"), "{error}");
    server.cli(&["FLUSHALL"]);
    let storage = open_storage(&server);
    drop(storage);
    assert_eq!(server.cli(&["GET", "switchboard:{~}:layout"]), "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layout_2_data_is_moved_to_layout_3_once_its_server_has_stopped() {
    let server = RedisServer::start(RedisMode::NoPersistence);
    // What a layout-2 server left: the prefix-wide keys without a hash tag, the queue's keys
    // as layout 3 has them.
    let engine = engine_on(open_storage(&server));
    let id = engine
        .enqueue("jobs", NewMessage::new("kept across the move"))
        .await
        .unwrap()
        .id;
    drop(engine);
    server.cli(&["RENAME", "switchboard:{~}:queues", "switchboard:queues"]);
    server.cli(&[
        "DEL",
        "switchboard:{~}:layout",
        "switchboard:{jobs}:applied",
    ]);
    server.cli(&["SET", "switchboard:layout", "2"]);
    server.cli(&["SET", "switchboard:owner", "old-host:1:abc"]);

    let refused = RedisStorage::open(&server.url(), RedisOptions::default())
        .err()
        .expect("a layout-2 server still owns the data");
    let text = refused.to_string();
    assert!(
        text.contains("layout 2") && text.contains("old-host:1:abc") && text.contains("Stop"),
        "{text}"
    );

    server.cli(&["DEL", "switchboard:owner"]);
    let mut storage = open_storage(&server);
    let snapshot = storage.recover().unwrap();
    assert_eq!(snapshot.messages.len(), 1);
    assert_eq!(snapshot.messages[0].id, id);
    assert_eq!(server.cli(&["GET", "switchboard:{~}:layout"]), "3");
    assert_eq!(
        server.cli(&["GET", "switchboard:layout"]),
        "3",
        "a layout-2 build now refuses the data"
    );
    assert_eq!(server.cli(&["EXISTS", "switchboard:queues"]), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_many_megabytes_span_chunks_inline_and_staged() {
    const MESSAGES: usize = 40;
    const PAYLOAD_BYTES: usize = 100 * 1024;
    let server = RedisServer::start(RedisMode::NoPersistence);
    for options in [
        RedisOptions::default(),
        RedisOptions {
            inline_batch_bytes_max: 1024 * 1024,
            ..RedisOptions::default()
        },
    ] {
        server.cli(&["FLUSHALL"]);
        let storage = RedisStorage::open(&server.url(), options).unwrap();
        let engine = engine_on(storage);
        let batch = (0..MESSAGES)
            .map(|n| NewMessage::new(vec![n as u8; PAYLOAD_BYTES]))
            .collect();
        engine.enqueue_batch("big", batch).await.unwrap();
        drop(engine);
        let snapshot = open_storage(&server).recover().unwrap();
        assert_eq!(snapshot.messages.len(), MESSAGES);
        for (n, message) in snapshot.messages.iter().enumerate() {
            assert_eq!(&*message.payload, &vec![n as u8; PAYLOAD_BYTES][..]);
        }
    }
}
