//! `switchboard-storage-bench`: the full cycle enqueue → lease → ack with 64 concurrent clients
//! on every durable backend (redb, sled, Redis with AOF everysec on a private port), printing
//! messages/s beside storage commits/s to show group commit at work.

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use switchboard_bench::private_redis::PrivateRedis;
use switchboard_engine::{Engine, EngineOptions, NewMessage, QueueConfig, SystemClock};

#[derive(Debug, Parser)]
#[command(about = "Durable-backend throughput: 64 clients doing enqueue → lease → ack")]
struct Args {
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Messages per client.
    #[arg(long, default_value_t = 2_000)]
    messages_per_client: usize,
    /// Backends to measure (redb, sled, redis, memory); none when `--url` is given.
    #[arg(long, value_delimiter = ',')]
    backends: Vec<String>,
    /// A storage URL to measure as it is (a Redis Cluster, Sentinel, `?replicas=1`, a Redis
    /// elsewhere); repeat for several. Each must have no other server on its prefix.
    #[arg(long = "url", value_name = "URL")]
    urls: Vec<String>,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 128)]
    payload_bytes: usize,
    /// Make every lease wait for its commit too (`EngineOptions::durable_leases`).
    #[arg(long)]
    durable_leases: bool,
}

struct Row {
    backend: String,
    messages_per_second: f64,
    commits_per_second: f64,
    operations_per_commit: f64,
    commit_micros_mean: f64,
}

async fn measure(url: &str, label: &str, args: &Args) -> Result<Row, String> {
    let storage = switchboard_storage::open(url).map_err(|e| e.to_string())?;
    let options = EngineOptions {
        durable_leases: args.durable_leases,
        ..EngineOptions::default()
    };
    let engine =
        Engine::open(storage, Arc::new(SystemClock), options).map_err(|e| e.to_string())?;
    let config = QueueConfig {
        max_size: 10_000_000,
        ..QueueConfig::default()
    };
    engine
        .configure_queue("bench", config)
        .await
        .map_err(|e| e.to_string())?;
    let before = engine.engine_stats().commits;
    let started = Instant::now();
    let payload = vec![b'x'; args.payload_bytes];
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let engine = engine.clone();
        let payload = payload.clone();
        let count = args.messages_per_client;
        tasks.push(tokio::spawn(async move {
            let mut completed = 0usize;
            for _ in 0..count {
                engine
                    .enqueue("bench", NewMessage::new(payload.clone()))
                    .await
                    .unwrap();
                for delivery in engine.lease("bench", 1, Some(60_000)).await.unwrap() {
                    engine
                        .ack(delivery.message.id, delivery.token)
                        .await
                        .unwrap();
                    completed += 1;
                }
            }
            completed
        }));
    }
    let mut completed = 0;
    for task in tasks {
        completed += task.await.map_err(|e| e.to_string())?;
    }
    // Messages another client's lease missed are drained so every message completes its cycle.
    loop {
        let leased = engine
            .lease("bench", 1_000, Some(60_000))
            .await
            .map_err(|e| e.to_string())?;
        if leased.is_empty() {
            break;
        }
        let acks: Vec<_> = leased.iter().map(|d| (d.message.id, d.token)).collect();
        engine.ack_batch(&acks).await.map_err(|e| e.to_string())?;
        completed += acks.len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = engine.engine_stats().commits;
    let commits = (after.commits - before.commits) as f64;
    let operations = (completed * 3) as f64;
    Ok(Row {
        backend: label.to_string(),
        messages_per_second: completed as f64 / elapsed,
        commits_per_second: commits / elapsed,
        operations_per_commit: operations / commits.max(1.0),
        commit_micros_mean: (after.commit_micros_total - before.commit_micros_total) as f64
            / commits.max(1.0),
    })
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rows = Vec::new();
    let mut redis = None;
    let named = if args.backends.is_empty() && args.urls.is_empty() {
        vec!["redb".to_string(), "sled".to_string(), "redis".to_string()]
    } else {
        args.backends.clone()
    };
    for url in &args.urls {
        match runtime.block_on(measure(url, url, &args)) {
            Ok(row) => rows.push(row),
            Err(error) => eprintln!("{url}: {error}"),
        }
    }
    for backend in &named {
        let (url, label) = match backend.as_str() {
            "redb" => (
                format!("redb:{}", dir.path().join("bench.redb").display()),
                "redb (fsync per commit)".to_string(),
            ),
            "sled" => (
                format!("sled:{}", dir.path().join("bench.sled").display()),
                "sled (flush per commit)".to_string(),
            ),
            "memory" => ("memory:".to_string(), "memory".to_string()),
            "redis" => {
                let server = PrivateRedis::start_aof_everysec().unwrap_or_else(|e| panic!("{e}"));
                let url = server.url();
                redis = Some(server);
                (url, "redis (local, AOF everysec)".to_string())
            }
            other => panic!("unknown backend {other:?}: use redb, sled, redis or memory"),
        };
        match runtime.block_on(measure(&url, &label, &args)) {
            Ok(row) => rows.push(row),
            Err(error) => eprintln!("{label}: {error}"),
        }
    }
    drop(redis);
    println!(
        "{} clients × {} messages, enqueue → lease → ack, {}-byte payloads",
        args.clients, args.messages_per_client, args.payload_bytes
    );
    println!(
        "| backend | messages/s | storage commits/s | operations per commit | mean commit µs |"
    );
    println!("|---|---:|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.1} | {:.0} |",
            row.backend,
            row.messages_per_second,
            row.commits_per_second,
            row.operations_per_commit,
            row.commit_micros_mean
        );
    }
}
