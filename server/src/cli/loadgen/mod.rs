//! `switchboard loadgen` (also the `switchboard-loadgen` binary of `benches/`): registers
//! agents, runs producers and consumers against a running server, checks that every message
//! sent with an "ok" reply was received (lost = 0), counting duplicates, and removes the agents
//! it registered when it ends, so the registry is as it found it.
//!
//! It lives in the server crate so that `switchboard loadgen` needs no second binary; the
//! benches binary is a thin wrapper around [`main`].

mod client;
mod queue_api;
mod report;
mod tracker;
mod ws;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::ValueEnum;

pub use report::Report;
use tracker::Tracker;

/// How consumers receive messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Lease one message per `GET /api/v1/messages/{agent}` and ack it with one call.
    Rest,
    /// WebSocket push (`/ws/{agent}`), acked with `ack` frames.
    Ws,
    /// The queue API (`/api/v1/queues/{queue}`), no agents: `--agents` queues, each with one
    /// consumer leasing up to `--lease-batch` per call and acking them with one call;
    /// producers enqueue `--batch` messages per call.
    Queue,
}

/// How producers send messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Producer {
    /// One `POST /api/v1/messages` per message.
    Rest,
    /// Each producer registers as an agent and sends `send_message` frames over its own
    /// WebSocket, up to `--window` in flight.
    Ws,
}

/// Command-line arguments (the same for `switchboard loadgen` and `switchboard-loadgen`).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Base URL of the server; or several, comma-separated (a hot-standby pair): requests go
    /// to the active one and follow it across a failover (counted in the summary).
    #[arg(
        long,
        env = "SWITCHBOARD_URL",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL[,URL...]"
    )]
    pub server: String,
    /// Messages to send.
    #[arg(long, default_value_t = 10_000)]
    pub messages: u64,
    /// Agents (consumers) to register; messages go round-robin to them.
    #[arg(long, default_value_t = 50)]
    pub agents: usize,
    /// How consumers receive.
    #[arg(long, value_enum, default_value_t = Mode::Rest)]
    pub mode: Mode,
    /// Concurrent producer tasks.
    #[arg(long, default_value_t = 32)]
    pub producers: usize,
    /// How producers send (ignored with `--mode queue`, whose producers use the queue API).
    #[arg(long, value_enum, default_value_t = Producer::Rest)]
    pub producer: Producer,
    /// Sends in flight per WebSocket producer.
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// Send rate across all producers in messages per second (unlimited when absent).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Bytes of filler added to each message's content.
    #[arg(long, default_value_t = 64)]
    pub payload_bytes: usize,
    /// Messages a REST or queue consumer leases per call (1 = one message per REST call).
    #[arg(long, default_value_t = 1)]
    pub lease_batch: usize,
    /// Messages a queue-mode producer enqueues per call.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Seconds to wait after the last send for stragglers before counting them lost.
    #[arg(long, default_value_t = 15)]
    pub drain_seconds: u64,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `switchboard loadgen`: exit 0 when nothing was lost, 1 when messages were lost, 2 when
/// the load could not run.
pub fn main(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadgen: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(report) if report.lost == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(error) => {
            eprintln!("loadgen: {error}");
            ExitCode::from(2)
        }
    }
}

/// Runs the load and returns (and prints) the summary. The agents it registered are removed
/// afterwards, whether the load ran or failed.
pub async fn run(args: Args) -> Result<Report, String> {
    let http = client::Http::new(&args.server)?;
    http.check_health().await?;
    let stop = Arc::new(AtomicBool::new(false));
    let result = drive(&http, &args, stop.clone()).await;
    stop.store(true, Ordering::SeqCst);
    let removed = http.remove_registered().await;
    match (result, removed) {
        (Ok(report), Ok(())) => Ok(report),
        (Ok(_), Err(error)) => Err(error),
        (Err(error), Ok(())) => Err(error),
        (Err(error), Err(cleanup)) => Err(format!("{error}; and {cleanup}")),
    }
}

/// The load itself: consumers, producers, the drain, the summary.
async fn drive(http: &client::Http, args: &Args, stop: Arc<AtomicBool>) -> Result<Report, String> {
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let agents = match args.mode {
        Mode::Queue => Vec::new(),
        Mode::Rest | Mode::Ws => http.register_agents(&run_id, args.agents).await?,
    };
    let queues: Arc<Vec<String>> = Arc::new(
        (0..args.agents.max(1))
            .map(|index| queue_api::queue_name(&run_id, index))
            .collect(),
    );
    let tracker = Arc::new(Tracker::new(args.messages, args.mode));
    let progress = report::progress_bar(args.messages);

    let mut consumers = Vec::new();
    if args.mode == Mode::Queue {
        for queue in queues.iter() {
            consumers.push(tokio::spawn(queue_api::consume(
                http.clone(),
                queue.clone(),
                tracker.clone(),
                stop.clone(),
                args.lease_batch.max(1),
            )));
        }
    }
    for agent in &agents {
        let task = match args.mode {
            Mode::Rest => tokio::spawn(client::rest_consumer(
                http.clone(),
                agent.clone(),
                tracker.clone(),
                stop.clone(),
                args.lease_batch,
            )),
            Mode::Ws => {
                let socket = ws::connect(http, agent, &mut None).await?;
                tokio::spawn(ws::ws_consumer(
                    http.clone(),
                    agent.clone(),
                    socket,
                    tracker.clone(),
                    stop.clone(),
                ))
            }
            Mode::Queue => unreachable!("queue mode registers no agents"),
        };
        consumers.push(task);
    }

    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut producers = Vec::new();
    let filler = "x".repeat(args.payload_bytes);
    for producer in 0..args.producers.max(1) {
        let job = client::ProducerJob {
            http: http.clone(),
            sender: format!("loadgen-{run_id}-producer-{producer}"),
            run_id: run_id.clone(),
            agents: agents.clone(),
            tracker: tracker.clone(),
            next: next.clone(),
            total: args.messages,
            interval: args.rate.map(|rate| {
                Duration::from_secs_f64(args.producers.max(1) as f64 / rate.max(0.001))
            }),
            filler: filler.clone(),
        };
        producers.push(match args.producer {
            _ if args.mode == Mode::Queue => {
                tokio::spawn(queue_api::produce(job, queues.clone(), args.batch.max(1)))
            }
            Producer::Rest => tokio::spawn(client::produce(job)),
            Producer::Ws => {
                let producer = http.register_producer(&job.sender).await?;
                let socket = ws::connect(http, &producer, &mut None).await?;
                tokio::spawn(ws::produce_ws(job, producer, socket, args.window.max(1)))
            }
        });
    }

    let ticker = {
        let tracker = tracker.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                progress.set_position(tracker.received_unique());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    for producer in producers {
        producer
            .await
            .map_err(|e| format!("producer task failed: {e}"))?;
    }
    let sent_done = Instant::now();
    while tracker.received_unique() < tracker.sent_ok()
        && sent_done.elapsed() < Duration::from_secs(args.drain_seconds)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = tracker
        .last_receipt()
        .map(|t| t.duration_since(started))
        .unwrap_or_else(|| started.elapsed());
    stop.store(true, Ordering::SeqCst);
    ticker.abort();
    progress.finish_and_clear();
    for consumer in consumers {
        let _ = tokio::time::timeout(Duration::from_secs(3), consumer).await;
    }
    let report = tracker.report(args, elapsed, http.moved());
    // A stdout whose reader left is no reason to fail a load that ran; the exit code still
    // says whether messages were lost.
    if let Err(error) = report.print(args.json) {
        if !error.is_empty() {
            eprintln!("loadgen: {error}");
        }
    }
    Ok(report)
}
