//! The summary table (or JSON) and the progress bar.

use indicatif::{ProgressBar, ProgressStyle};

/// What one load run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// `rest`, `ws` or `queue`.
    pub mode: String,
    /// Consumers (agents, or queues in queue mode).
    pub agents: usize,
    /// Producer tasks.
    pub producers: usize,
    /// Sends answered "ok".
    pub sent_ok: u64,
    /// Sends that failed for good.
    pub send_errors: u64,
    /// Sends answered 429 (retried).
    pub throttled: u64,
    /// Distinct messages received.
    pub received: u64,
    /// Messages received more than once.
    pub duplicates: u64,
    /// Sent "ok" but never received.
    pub lost: u64,
    /// Consumer-side errors (failed leases or acks).
    pub consumer_errors: u64,
    /// Wall time from the first send to the last receipt.
    pub seconds: f64,
    /// Distinct messages received per second.
    pub throughput_per_second: f64,
    /// Median latency, ms.
    pub latency_ms_p50: f64,
    /// 99th percentile latency, ms.
    pub latency_ms_p99: f64,
    /// Worst latency, ms.
    pub latency_ms_max: f64,
    /// What the latency measures.
    pub latency_kind: String,
}

impl Report {
    /// Prints the table, or JSON.
    pub fn print(&self, json: bool) {
        if json {
            let value = serde_json::json!({
                "mode": self.mode, "agents": self.agents, "producers": self.producers,
                "sent_ok": self.sent_ok, "send_errors": self.send_errors, "throttled": self.throttled,
                "received": self.received, "duplicates": self.duplicates, "lost": self.lost,
                "consumer_errors": self.consumer_errors, "seconds": self.seconds,
                "throughput_per_second": self.throughput_per_second,
                "latency_ms": {"p50": self.latency_ms_p50, "p99": self.latency_ms_p99, "max": self.latency_ms_max, "kind": self.latency_kind},
            });
            println!("{value:#}");
            return;
        }
        let rows = [
            (
                "mode",
                format!(
                    "{} ({} {}, {} producers)",
                    self.mode,
                    self.agents,
                    if self.mode == "queue" {
                        "queues"
                    } else {
                        "agents"
                    },
                    self.producers
                ),
            ),
            ("sent (ok)", self.sent_ok.to_string()),
            ("send errors", self.send_errors.to_string()),
            ("throttled (429, retried)", self.throttled.to_string()),
            ("received (distinct)", self.received.to_string()),
            ("duplicated", self.duplicates.to_string()),
            ("lost", self.lost.to_string()),
            ("consumer errors", self.consumer_errors.to_string()),
            ("elapsed", format!("{:.2} s", self.seconds)),
            (
                "throughput",
                format!("{:.0} msg/s", self.throughput_per_second),
            ),
            (
                "latency p50",
                format!("{:.2} ms ({})", self.latency_ms_p50, self.latency_kind),
            ),
            ("latency p99", format!("{:.2} ms", self.latency_ms_p99)),
            ("latency max", format!("{:.2} ms", self.latency_ms_max)),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let value_width = rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
        let line = format!("+-{}-+-{}-+", "-".repeat(width), "-".repeat(value_width));
        println!("{line}");
        for (key, value) in rows {
            println!("| {key:<width$} | {value:>value_width$} |");
        }
        println!("{line}");
    }
}

/// A progress bar over messages received.
pub fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} received ({per_sec})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
