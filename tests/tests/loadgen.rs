//! The load generator against a real `switchboard serve`, in each of its modes, small: every
//! message it sends with an "ok" reply arrives exactly once (the figures in the README come
//! from this tool, so it must count right), the server loses nothing on any path, and every
//! ack lands: afterwards no queue holds a message, ready, delayed, leased or dead, and no
//! agent it registered is left in the registry. Given a list of servers whose first is a
//! hot standby, it runs on the active one.

mod cli_support;

use std::time::{Duration, Instant};

use serde_json::Value;

use cli_support::fake_server::StandbyServer;
use switchboard_server::cli::loadgen::{self, Args};
use switchboard_tests::server_harness::{run_to_end, ServerProcess};

/// The load generator's command line, as `switchboard-loadgen` parses it.
#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

/// Messages per run: enough for batches, leases and acks to interleave, small enough to be quick.
const MESSAGES: &str = "1500";

async fn run(server: &ServerProcess, mode_args: &[&str]) -> loadgen::Report {
    run_listed(server, &server.base(), mode_args).await
}

/// [`run`] with `--server servers` (a list holding `server`).
async fn run_listed(server: &ServerProcess, servers: &str, mode_args: &[&str]) -> loadgen::Report {
    let mut argv = vec![
        "switchboard-loadgen",
        "--server",
        servers,
        "--messages",
        MESSAGES,
        "--agents",
        "5",
        "--producers",
        "4",
        "--drain-seconds",
        "30",
    ];
    argv.extend_from_slice(mode_args);
    let report = loadgen::run(<Cli as clap::Parser>::parse_from(argv).args)
        .await
        .expect("the load runs");
    assert_eq!(report.sent_ok, 1500, "every send answered ok: {report:?}");
    assert_eq!(report.send_errors, 0, "{report:?}");
    assert_eq!(report.received, 1500, "every message arrived: {report:?}");
    assert_eq!((report.lost, report.duplicates), (0, 0), "{report:?}");
    assert_eq!(report.consumer_errors, 0, "{report:?}");
    assert_queues_empty(server).await;
    assert_no_loadgen_agents(server).await;
    report
}

/// Fails naming any agent of a load run still registered after the run returned.
async fn assert_no_loadgen_agents(server: &ServerProcess) {
    let agents: Value = reqwest::get(server.url("/api/v1/agents"))
        .await
        .expect("the agent list answers")
        .json()
        .await
        .expect("the agent list is JSON");
    let left: Vec<&Value> = agents
        .as_array()
        .expect("the agent list is an array")
        .iter()
        .filter(|agent| agent["name"].as_str().unwrap_or("").starts_with("loadgen-"))
        .collect();
    assert!(
        left.is_empty(),
        "the load run left agents registered: {left:?}"
    );
}

/// How long acks sent at the end of a run may take to land.
const SETTLE_WAIT: Duration = Duration::from_secs(10);

/// Waits until every queue (agents' inboxes included) is empty; fails naming what is left.
async fn assert_queues_empty(server: &ServerProcess) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let queues: Vec<Value> = client
            .get(server.url("/api/v1/queues"))
            .send()
            .await
            .expect("the queue list answers")
            .json()
            .await
            .expect("the queue list is JSON");
        let left: Vec<&Value> = queues
            .iter()
            .filter(|q| {
                ["ready", "delayed", "leased", "dead"]
                    .iter()
                    .any(|k| q[k] != 0)
            })
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < SETTLE_WAIT,
            "messages left after the run (an ack that did not land?): {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_delivers_each_message_once() {
    let server = ServerProcess::start("memory:", &["--rate-per-sender", "0", "--no-discovery"]);
    let rest = run(&server, &["--mode", "rest"]).await;
    assert_eq!(rest.latency_kind, "send → ack");
    let ws = run(&server, &["--mode", "ws", "--producer", "ws"]).await;
    assert_eq!(ws.latency_kind, "send → push");
    let queue = run(
        &server,
        &["--mode", "queue", "--batch", "25", "--lease-batch", "40"],
    )
    .await;
    assert_eq!(queue.latency_kind, "enqueue → ack");
    assert_eq!(queue.mode, "queue");
    let unbatched = run(&server, &["--mode", "queue"]).await;
    assert!(unbatched.throughput_per_second > 0.0);
}

/// A list whose first server is a standby: every mode runs on the active server, delivers
/// each message once, and the summary counts the request that moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_runs_on_the_active_server_past_a_standby() {
    let server = ServerProcess::start("memory:", &["--rate-per-sender", "0", "--no-discovery"]);
    let standby = StandbyServer::start(None).await;
    let servers = format!("{},{}", standby.url, server.base());
    for mode in [
        &["--mode", "rest"][..],
        &["--mode", "ws", "--producer", "ws"],
        &["--mode", "queue"],
    ] {
        let report = run_listed(&server, &servers, mode).await;
        assert!(
            report.retried_on_another_server >= 1,
            "{mode:?}: {report:?}"
        );
    }
    assert!(standby.asked() >= 3, "each run asked the standby first");
}

#[test]
fn switchboard_loadgen_help_lists_the_load_options() {
    let (status, stdout, stderr) = run_to_end(&["loadgen", "--help"], Duration::from_secs(30));
    assert!(status.success(), "exit {status:?}: {stderr}");
    for option in [
        "--server",
        "--messages",
        "--agents",
        "--mode",
        "--producer",
        "--rate",
    ] {
        assert!(stdout.contains(option), "{option} missing from:\n{stdout}");
    }
}

#[test]
fn producer_help_describes_producers_not_consumers() {
    let (status, stdout, stderr) = run_to_end(&["loadgen", "--help"], Duration::from_secs(30));
    assert!(status.success(), "exit {status:?}: {stderr}");
    let producer_help = stdout
        .split("--producer <PRODUCER>")
        .nth(1)
        .and_then(|rest| rest.split("\n      --").next())
        .expect("--producer is listed");
    assert!(
        !producer_help.contains("Lease one message"),
        "--producer repeats --mode's consumer help:\n{producer_help}"
    );
}
