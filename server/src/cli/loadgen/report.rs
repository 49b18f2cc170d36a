//! The summary table (or JSON) and the progress bar.

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

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
    /// Send attempts that failed for a moment (no answer, no active server, 5xx) and were
    /// tried again.
    pub send_retries: u64,
    /// Requests (and sockets) that went to another server than the one first tried: a
    /// failover of `--server URL,URL`.
    pub retried_on_another_server: u64,
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
    /// Prints the table, or JSON; `Err` says why it could not (empty when stdout's reader
    /// left: nobody is left to tell).
    pub fn print(&self, json: bool) -> Result<(), String> {
        if json {
            let value = serde_json::json!({
                "mode": self.mode, "agents": self.agents, "producers": self.producers,
                "sent_ok": self.sent_ok, "send_errors": self.send_errors, "throttled": self.throttled,
                "send_retries": self.send_retries, "retried_on_another_server": self.retried_on_another_server,
                "received": self.received, "duplicates": self.duplicates, "lost": self.lost,
                "consumer_errors": self.consumer_errors, "seconds": self.seconds,
                "throughput_per_second": self.throughput_per_second,
                "latency_ms": {"p50": self.latency_ms_p50, "p99": self.latency_ms_p99, "max": self.latency_ms_max, "kind": self.latency_kind},
            });
            return crate::cli::stdout::print(&format!("{value:#}\n"));
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
            ("send errors retried", self.send_retries.to_string()),
            (
                "retried on another server",
                self.retried_on_another_server.to_string(),
            ),
            ("received (distinct)", self.received.to_string()),
            ("duplicated", self.duplicates.to_string()),
            ("lost", self.lost.to_string()),
            ("consumer errors", self.consumer_errors.to_string()),
            ("elapsed", format!("{:.2} s", self.seconds)),
            ("throughput", rate_text(self.throughput_per_second)),
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
        let mut table = format!("{line}\n");
        for (key, value) in rows {
            table.push_str(&format!("| {key:<width$} | {value:>value_width$} |\n"));
        }
        table.push_str(&format!("{line}\n"));
        crate::cli::stdout::print(&table)
    }
}

/// A rate for people, as the table and the progress bar show it: one decimal while it is
/// small enough for the decimal to matter, whole messages from 1000 per second on.
pub fn rate_text(per_second: f64) -> String {
    if per_second < 1000.0 {
        format!("{per_second:.1} msg/s")
    } else {
        format!("{per_second:.0} msg/s")
    }
}

/// A progress bar over messages received (its rate in [`rate_text`]'s form, not indicatif's
/// four decimals).
pub fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} received ({rate})",
        )
        .map(|style| {
            style.with_key(
                "rate",
                |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                    let _ = out.write_str(&rate_text(state.per_sec()));
                },
            )
        })
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::rate_text;

    #[test]
    fn rates_are_shown_with_one_decimal_below_a_thousand_and_whole_above() {
        assert_eq!(rate_text(193.5134), "193.5 msg/s");
        assert_eq!(rate_text(2.0), "2.0 msg/s");
        assert_eq!(rate_text(41_312.77), "41313 msg/s");
    }
}
