//! Latency distributions: a sliding window of HDR histograms for the percentiles the dashboard,
//! the health score and the alerts read (recent behaviour, not the average since start), and a
//! cumulative Prometheus histogram for `/metrics` (Prometheus computes its own windows).

use std::collections::VecDeque;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use prometheus_client::metrics::histogram::Histogram as PrometheusHistogram;
use serde::Serialize;

/// How far back the percentiles look, in milliseconds (5 minutes).
pub const LATENCY_WINDOW_MS: u64 = 5 * 60 * 1000;
/// The window moves in steps of this many milliseconds: older values leave a slot at a time.
const SLOT_MS: u64 = 30_000;
/// Slots in a window.
const SLOTS: u64 = LATENCY_WINDOW_MS / SLOT_MS;
/// Largest latency told apart, in microseconds (one day); longer ones are counted as this.
const LATENCY_MICROS_MAX: u64 = 24 * 60 * 60 * 1_000_000;
/// Precision of the histograms: two significant digits, so a percentile is within 1 %.
const SIGNIFICANT_DIGITS: u8 = 2;
/// Bucket bounds of the Prometheus histograms, in seconds: 1 ms to 1 hour.
const PROMETHEUS_BUCKETS_SECONDS: [f64; 18] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 3600.0,
];

fn empty_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, LATENCY_MICROS_MAX, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// A distribution over the last [`LATENCY_WINDOW_MS`], in slots of 30 s.
#[derive(Debug)]
pub struct WindowedHistogram {
    /// `(slot number, values recorded in it)`, oldest first; slot number = time / SLOT_MS.
    slots: VecDeque<(u64, Histogram<u32>)>,
}

impl Default for WindowedHistogram {
    fn default() -> Self {
        Self {
            slots: VecDeque::with_capacity(SLOTS as usize + 1),
        }
    }
}

impl WindowedHistogram {
    /// Records `micros` observed at `now_ms`.
    pub fn record(&mut self, micros: u64, now_ms: u64) {
        let slot = now_ms / SLOT_MS;
        self.forget_before(slot);
        if self.slots.back().is_none_or(|(last, _)| *last < slot) {
            // Reuse the oldest slot's memory when the window is full.
            let mut histogram = if self.slots.len() as u64 >= SLOTS {
                self.slots
                    .pop_front()
                    .map(|(_, h)| h)
                    .unwrap_or_else(empty_histogram)
            } else {
                empty_histogram()
            };
            histogram.reset();
            self.slots.push_back((slot, histogram));
        }
        let (_, histogram) = self
            .slots
            .back_mut()
            .expect("a current slot was just ensured");
        histogram.saturating_record(micros.min(LATENCY_MICROS_MAX));
    }

    fn forget_before(&mut self, current_slot: u64) {
        let oldest_kept = current_slot.saturating_sub(SLOTS - 1);
        while self
            .slots
            .front()
            .is_some_and(|(slot, _)| *slot < oldest_kept)
        {
            self.slots.pop_front();
        }
    }

    /// Count, mean and percentiles of the values of the window ending at `now_ms`.
    pub fn summary(&self, now_ms: u64) -> LatencySummary {
        let oldest_kept = (now_ms / SLOT_MS).saturating_sub(SLOTS - 1);
        let mut merged = empty_histogram();
        for (_, histogram) in self.slots.iter().filter(|(slot, _)| *slot >= oldest_kept) {
            merged
                .add(histogram)
                .expect("histograms of equal bounds always merge");
        }
        LatencySummary::of(&merged)
    }
}

/// A latency distribution in seconds. All zero when `count` is zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Values in the window.
    pub count: u64,
    /// Their mean.
    pub mean_seconds: f64,
    /// Median.
    pub p50_seconds: f64,
    /// 95th percentile.
    pub p95_seconds: f64,
    /// 99th percentile.
    pub p99_seconds: f64,
    /// Largest.
    pub max_seconds: f64,
}

impl LatencySummary {
    fn of(histogram: &Histogram<u32>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let seconds = |micros: u64| micros as f64 / 1e6;
        Self {
            count: histogram.len(),
            mean_seconds: histogram.mean() / 1e6,
            p50_seconds: seconds(histogram.value_at_quantile(0.50)),
            p95_seconds: seconds(histogram.value_at_quantile(0.95)),
            p99_seconds: seconds(histogram.value_at_quantile(0.99)),
            max_seconds: seconds(histogram.max()),
        }
    }
}

/// One latency: its sliding window and its Prometheus histogram.
#[derive(Debug)]
pub struct LatencyTracker {
    /// A parking_lot mutex held only to record or merge, never across an `.await`.
    window: Mutex<WindowedHistogram>,
    exported: PrometheusHistogram,
}

impl Default for LatencyTracker {
    fn default() -> Self {
        Self {
            window: Mutex::default(),
            exported: PrometheusHistogram::new(PROMETHEUS_BUCKETS_SECONDS),
        }
    }
}

impl LatencyTracker {
    /// Records one latency of `micros`, observed at `now_ms`.
    pub fn record(&self, micros: u64, now_ms: u64) {
        self.window.lock().record(micros, now_ms);
        self.exported.observe(micros as f64 / 1e6);
    }

    /// The window ending at `now_ms`.
    pub fn summary(&self, now_ms: u64) -> LatencySummary {
        self.window.lock().summary(now_ms)
    }

    /// The cumulative histogram for `/metrics` (a handle to the same data).
    pub fn exported(&self) -> PrometheusHistogram {
        self.exported.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_values() {
        let mut window = WindowedHistogram::default();
        for millis in 1..=100u64 {
            window.record(millis * 1000, 1_000);
        }
        let summary = window.summary(1_000);
        assert_eq!(summary.count, 100);
        assert!((summary.p50_seconds - 0.050).abs() < 0.001, "{summary:?}");
        assert!((summary.p95_seconds - 0.095).abs() < 0.001, "{summary:?}");
        assert!((summary.p99_seconds - 0.099).abs() < 0.001, "{summary:?}");
        assert!((summary.mean_seconds - 0.0505).abs() < 0.001, "{summary:?}");
    }

    #[test]
    fn values_leave_the_window_after_five_minutes() {
        let mut window = WindowedHistogram::default();
        window.record(9_000_000, 0);
        assert_eq!(window.summary(LATENCY_WINDOW_MS - 1).count, 1);
        assert_eq!(window.summary(LATENCY_WINDOW_MS).count, 0);
        window.record(1_000, LATENCY_WINDOW_MS + SLOT_MS * 3);
        let summary = window.summary(LATENCY_WINDOW_MS + SLOT_MS * 3);
        assert_eq!(summary.count, 1);
        assert!(summary.max_seconds < 0.01);
    }

    #[test]
    fn an_empty_window_reads_as_zero() {
        assert_eq!(
            WindowedHistogram::default().summary(0),
            LatencySummary::default()
        );
    }

    #[test]
    fn latencies_beyond_a_day_are_clamped_not_lost() {
        let mut window = WindowedHistogram::default();
        window.record(u64::MAX, 0);
        assert_eq!(window.summary(0).count, 1);
    }
}
