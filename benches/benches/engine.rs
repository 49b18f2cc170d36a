//! Engine throughput on in-memory storage, the figures the engine issue sets:
//! - `batch_cycle`: enqueue a batch → lease a batch → ack the batch (target ≥ 500,000 msg/s);
//! - `single_calls_64_tasks`: 64 concurrent tasks, one message per call for enqueue, lease and
//!   ack (target ≥ 150,000 msg/s).
//!
//! Both run the async side on a current-thread runtime (one core); the committer is the
//! engine's own thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use switchboard_engine::{
    Engine, EngineOptions, MemoryStorage, NewMessage, QueueConfig, SystemClock,
};

const BATCH_MESSAGES: usize = 1_000;
const TASKS: usize = 64;
const MESSAGES_PER_TASK: usize = 100;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn engine() -> Engine {
    let engine = Engine::open(
        Box::new(MemoryStorage::new()),
        Arc::new(SystemClock),
        EngineOptions::default(),
    )
    .unwrap();
    let config = QueueConfig {
        max_size: 10_000_000,
        ..QueueConfig::default()
    };
    engine.configure_queue("bench", config).await.unwrap();
    engine
}

async fn batch_cycle(engine: &Engine, payload: &[u8]) {
    let batch = (0..BATCH_MESSAGES)
        .map(|_| NewMessage::new(payload))
        .collect();
    engine.enqueue_batch("bench", batch).await.unwrap();
    let leased = engine
        .lease("bench", BATCH_MESSAGES, Some(60_000))
        .await
        .unwrap();
    assert_eq!(leased.len(), BATCH_MESSAGES);
    let acks: Vec<_> = leased.iter().map(|d| (d.message.id, d.token)).collect();
    for result in engine.ack_batch(&acks).await.unwrap() {
        result.unwrap();
    }
}

async fn single_calls(engine: &Engine, payload: &'static [u8]) {
    let mut tasks = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < MESSAGES_PER_TASK {
                engine
                    .enqueue("bench", NewMessage::new(payload))
                    .await
                    .unwrap();
                // Another task may have taken "our" message: lease whatever is there.
                for delivery in engine.lease("bench", 1, Some(60_000)).await.unwrap() {
                    engine
                        .ack(delivery.message.id, delivery.token)
                        .await
                        .unwrap();
                }
                done += 1;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Drain what other tasks' leases left behind, so every message completes the cycle.
    loop {
        let leased = engine
            .lease("bench", BATCH_MESSAGES, Some(60_000))
            .await
            .unwrap();
        if leased.is_empty() {
            break;
        }
        let acks: Vec<_> = leased.iter().map(|d| (d.message.id, d.token)).collect();
        engine.ack_batch(&acks).await.unwrap();
    }
}

fn bench_engine(c: &mut Criterion) {
    let payload: &'static [u8] = &[b'x'; 128];
    let mut group = c.benchmark_group("engine_memory");
    group.measurement_time(Duration::from_secs(8));
    group.sample_size(20);

    group.throughput(Throughput::Elements(BATCH_MESSAGES as u64));
    group.bench_function("batch_cycle_1000", |b| {
        let rt = runtime();
        let engine = rt.block_on(engine());
        b.iter_custom(|iterations| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iterations {
                    batch_cycle(&engine, payload).await;
                }
                started.elapsed()
            })
        });
    });

    group.throughput(Throughput::Elements((TASKS * MESSAGES_PER_TASK) as u64));
    group.bench_function("single_calls_64_tasks", |b| {
        let rt = runtime();
        let engine = rt.block_on(engine());
        b.iter_custom(|iterations| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iterations {
                    single_calls(&engine, payload).await;
                }
                started.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench_engine);
criterion_main!(benches);
