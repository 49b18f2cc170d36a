//! The crash test's worker: producers and consumers on one store until the parent kills it
//! with SIGKILL. It reports on stdout, one line per event, written only after the engine
//! acknowledged what the line claims (so a line the parent reads is a promise the store must
//! keep):
//!
//! - `R`: the engine is open and the queue configured
//! - `E <id> <payload>`: the enqueue of this message is durable
//! - `D <id>`: the message was delivered under a lease
//! - `a <id>`: an ack of the message is about to be sent (it may commit without its `A`)
//! - `A <id>`: the ack is durable; the message must never be seen again
//!
//! Usage: `crash_worker STORAGE_URL TAG CYCLE`; payloads are `TAG:CYCLE:N`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchboard_engine::{Engine, EngineOptions, NewMessage, QueueConfig, SystemClock};

/// The queue the workload uses.
const QUEUE: &str = "crash";
/// Producer tasks.
const PRODUCERS: usize = 4;
/// Consumer tasks.
const CONSUMERS: usize = 4;
/// Messages per enqueue call.
const ENQUEUE_BATCH: u64 = 8;
/// Messages per lease call.
const LEASE_BATCH: usize = 8;
/// Lease length, in milliseconds: far longer than a worker lives, so only a crash redelivers.
const LEASE_MS: u64 = 60_000;
/// How long a consumer waits for a message before asking again, in milliseconds.
const LEASE_WAIT_MS: u64 = 50;
/// Deliveries allowed: enough that repeated crashes never dead-letter a message.
const MAX_ATTEMPTS: u32 = 1_000;
/// Messages the queue may hold.
const QUEUE_SIZE: u64 = 10_000_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, tag, cycle] = args.as_slice() else {
        eprintln!("usage: crash_worker STORAGE_URL TAG CYCLE");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("crash_worker: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(url, tag, cycle)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("crash_worker: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Writes whole lines at once and flushes, so the parent sees each as soon as it is true.
fn report(lines: &str) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(lines.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|error| format!("cannot write to stdout: {error}"))
}

async fn run(url: &str, tag: &str, cycle: &str) -> Result<(), String> {
    let storage = switchboard_storage::open(url).map_err(|error| error.to_string())?;
    let engine = Engine::open(storage, Arc::new(SystemClock), EngineOptions::default())
        .map_err(|error| error.to_string())?;
    let config = QueueConfig {
        max_size: QUEUE_SIZE,
        default_lease_ms: LEASE_MS,
        max_attempts: MAX_ATTEMPTS,
        ..QueueConfig::default()
    };
    engine
        .configure_queue(QUEUE, config)
        .await
        .map_err(|error| error.to_string())?;
    report("R\n")?;
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..PRODUCERS {
        let prefix = format!("{tag}:{cycle}:");
        tasks.spawn(produce(engine.clone(), prefix, counter.clone()));
    }
    for _ in 0..CONSUMERS {
        tasks.spawn(consume(engine.clone()));
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|error| format!("a task panicked: {error}"))??;
    }
    Ok(())
}

async fn produce(engine: Engine, prefix: String, counter: Arc<AtomicU64>) -> Result<(), String> {
    loop {
        let first = counter.fetch_add(ENQUEUE_BATCH, Ordering::Relaxed);
        let payloads: Vec<String> = (first..first + ENQUEUE_BATCH)
            .map(|n| format!("{prefix}{n}"))
            .collect();
        let messages = payloads
            .iter()
            .map(|p| NewMessage::new(p.as_str()))
            .collect();
        let results = engine
            .enqueue_batch(QUEUE, messages)
            .await
            .map_err(|error| format!("enqueue failed: {error}"))?;
        let lines: String = results
            .iter()
            .zip(&payloads)
            .map(|(result, payload)| format!("E {} {payload}\n", result.id))
            .collect();
        report(&lines)?;
    }
}

async fn consume(engine: Engine) -> Result<(), String> {
    loop {
        let deliveries = engine
            .lease_wait(
                QUEUE,
                LEASE_BATCH,
                None,
                Duration::from_millis(LEASE_WAIT_MS),
            )
            .await
            .map_err(|error| format!("lease failed: {error}"))?;
        if deliveries.is_empty() {
            continue;
        }
        let delivered: String = deliveries
            .iter()
            .map(|d| format!("D {}\na {}\n", d.message.id, d.message.id))
            .collect();
        report(&delivered)?;
        let items: Vec<_> = deliveries.iter().map(|d| (d.message.id, d.token)).collect();
        let results = engine
            .ack_batch(&items)
            .await
            .map_err(|error| format!("ack failed: {error}"))?;
        let mut acked = String::new();
        for ((id, _), result) in items.iter().zip(results) {
            result.map_err(|error| format!("ack of {id} refused: {error}"))?;
            acked.push_str(&format!("A {id}\n"));
        }
        report(&acked)?;
    }
}
