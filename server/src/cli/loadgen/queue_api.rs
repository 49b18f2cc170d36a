//! `--mode queue`: the queue API (`/api/v1/queues/{queue}`), the engine as a job queue for any
//! producer and consumer, as a BullMQ-style benchmark would drive it. Producers enqueue
//! `--batch` messages per call, each consumer owns one queue and leases up to `--lease-batch`
//! per call (long-polling), then acks them all with one call. Latency is enqueue → ack.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use super::client::{leased, post_with_retries, Http, ProducerJob};
use super::tracker::Tracker;

/// Lease length asked for, in seconds: far longer than a lease-ack round trip under load.
const LEASE_SECONDS: u64 = 60;

/// The queue API's path of queue `queue` (below the active server's base URL).
fn queue_path(queue: &str) -> String {
    format!("/api/v1/queues/{queue}")
}

/// The name of the `index`th queue of run `run_id`.
pub fn queue_name(run_id: &str, index: usize) -> String {
    format!("loadgen-{run_id}-q{index}")
}

/// Enqueues messages `batch` at a time (round-robin over the queues) until `total` were taken.
pub async fn produce(job: ProducerJob, queues: Arc<Vec<String>>, batch: usize) {
    let mut ticker = job.interval.map(|period| {
        let mut interval = tokio::time::interval(period.mul_f64(batch as f64));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });
    loop {
        let first = job.next.fetch_add(batch as u64, Ordering::Relaxed);
        if first >= job.total {
            return;
        }
        let seqs: Vec<u64> = (first..(first + batch as u64).min(job.total)).collect();
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        let queue = &queues[(first / batch as u64) as usize % queues.len()];
        let body: Vec<Value> = seqs
            .iter()
            .map(|seq| json!({ "payload": format!("lg:{}:{}:{}", job.run_id, seq, job.filler) }))
            .collect();
        let path = format!("{}/messages", queue_path(queue));
        for seq in &seqs {
            job.tracker.sending(*seq);
        }
        let ok = post_with_retries(&job, &path, &Value::Array(body)).await;
        for _ in &seqs {
            job.tracker.sent(ok);
        }
    }
}

/// Leases up to `batch` messages of `queue` per call and acks them with one call.
pub async fn consume(
    http: Http,
    queue: String,
    tracker: Arc<Tracker>,
    stop: Arc<AtomicBool>,
    batch: usize,
) {
    let path = queue_path(&queue);
    let lease = json!({ "max": batch, "lease_seconds": LEASE_SECONDS, "wait_seconds": 1 });
    while !stop.load(Ordering::Relaxed) {
        let request =
            http.once(|base| http.client.post(format!("{base}{path}/lease")).json(&lease));
        let Some(leased) = leased(request, &tracker).await else {
            continue;
        };
        if leased.is_empty() {
            continue;
        }
        let seqs: Vec<Option<u64>> = leased.iter().map(seq_of).collect();
        for seq in seqs.iter().flatten() {
            tracker.received(*seq);
        }
        let items: Vec<Value> = leased
            .iter()
            .map(|m| json!({ "id": m["id"], "lease_token": m["lease_token"] }))
            .collect();
        let body = json!({ "items": items });
        let acked = http
            .once(|base| http.client.post(format!("{base}{path}/ack")).json(&body))
            .await;
        let results: Value = match acked {
            Ok(response) if response.status().is_success() => {
                response.json().await.unwrap_or_default()
            }
            _ => {
                tracker.consumer_error();
                continue;
            }
        };
        let statuses = results["results"].as_array().cloned().unwrap_or_default();
        if statuses.len() != leased.len() {
            // Every delivery must have its answer; the missing ones count as failed acks.
            let missing = leased.len().abs_diff(statuses.len());
            (0..missing).for_each(|_| tracker.consumer_error());
        }
        for ((seq, message), result) in seqs.iter().zip(&leased).zip(&statuses) {
            let acked = result["status"] == "acknowledged" && result["id"] == message["id"];
            match seq {
                Some(seq) if acked => tracker.acked(*seq),
                _ => tracker.consumer_error(),
            }
        }
    }
}

fn seq_of(message: &Value) -> Option<u64> {
    message["payload"].as_str()?.split(':').nth(2)?.parse().ok()
}
