//! A rough throughput figure (the criterion bench is the real one). Run in release:
//! `cargo test --release -p switchboard-tests --test storage_redis -- --ignored --nocapture`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_engine::{Engine, MemoryStorage, NewMessage, QueueConfig, Storage};
use switchboard_tests::redis_server::{RedisMode, RedisServer};

use super::layout::{engine_on, open_storage};

/// Concurrent clients, each running enqueue → lease → ack in a loop.
const CLIENTS: usize = 64;
/// How long the measured run lasts.
const RUN: Duration = Duration::from_secs(5);

async fn full_cycles_per_second(engine: Engine) -> f64 {
    let config = QueueConfig {
        max_size: 1_000_000,
        ..QueueConfig::default()
    };
    engine.configure_queue("bench", config).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let cycles = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (engine, stop, cycles) = (engine.clone(), stop.clone(), cycles.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                engine
                    .enqueue("bench", NewMessage::new(format!("client {client}")))
                    .await
                    .unwrap();
                for delivery in engine.lease("bench", 1, Some(60_000)).await.unwrap() {
                    engine
                        .ack(delivery.message.id, delivery.token)
                        .await
                        .unwrap();
                    cycles.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(RUN).await;
    stop.store(true, Ordering::Relaxed);
    let done = cycles.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for client in clients {
        client.await.unwrap();
    }
    let stats = engine.engine_stats();
    eprintln!("{}: {:?}", stats.storage, stats.commits);
    done as f64 / elapsed
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement, run in release by hand"]
async fn throughput_of_full_cycles_with_64_clients() {
    let server = RedisServer::start(RedisMode::Aof { fsync: "everysec" });
    let redis = full_cycles_per_second(engine_on(open_storage(&server))).await;
    // Redis's own share: time in the commit script, and its CPU.
    let stats = server.cli(&["INFO", "all"]);
    for line in stats
        .lines()
        .filter(|line| line.starts_with("cmdstat_evalsha:") || line.starts_with("used_cpu_user:"))
    {
        eprintln!("redis {line}");
    }
    let memory = Box::new(MemoryStorage::new()) as Box<dyn Storage>;
    let memory = Engine::open(
        memory,
        Arc::new(switchboard_engine::SystemClock),
        Default::default(),
    )
    .unwrap();
    let memory = full_cycles_per_second(memory).await;
    eprintln!(
        "full cycles (enqueue, lease, ack) per second with {CLIENTS} clients: \
         redis (AOF everysec) {redis:.0}, memory {memory:.0}"
    );
}
