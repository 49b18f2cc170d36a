//! Counter totals sampled once a second for the last few minutes, so rates ("messages per
//! second over the last 10 s") and window ratios ("error rate over the last 5 minutes") are
//! differences of two samples. Also the engine's per-queue counters summed into totals that
//! never go down, even when a queue (an agent's inbox) is deleted.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use switchboard_engine::{CommitStats, QueueStats, UnixMillis};

use super::counters::CounterValues;

/// Span of the rates shown as "per second", in milliseconds.
pub const RATE_WINDOW_MS: u64 = 10_000;
/// Span of the error rate and routing success rate, in milliseconds (5 minutes).
pub const ERROR_WINDOW_MS: u64 = 5 * 60 * 1000;
/// Samples kept: one a second over the error window, and one more for its start.
const SAMPLES_MAX: usize = (ERROR_WINDOW_MS / 1000) as usize + 1;

/// Engine counters summed over all queues, kept monotonic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineCounts {
    /// Messages put back for another attempt (nacks and lease timeouts).
    pub retried: u64,
    /// Messages that became dead letters.
    pub dead_lettered: u64,
    /// Messages whose time to live ran out.
    pub expired: u64,
}

/// Sums per-queue engine counters into totals that only grow.
#[derive(Debug, Default)]
pub struct EngineTotals {
    last_seen: HashMap<Arc<str>, EngineCounts>,
    totals: EngineCounts,
}

impl EngineTotals {
    /// Adds what each queue counted since the last call; a queue whose counters went down was
    /// deleted and made again, so its counters are all new.
    pub fn update(&mut self, queues: &[QueueStats]) -> EngineCounts {
        let mut seen = HashMap::with_capacity(queues.len());
        for queue in queues {
            let now = EngineCounts {
                retried: queue.counters.retried,
                dead_lettered: queue.counters.dead_lettered,
                expired: queue.counters.expired,
            };
            let before = self.last_seen.get(&queue.name).copied().unwrap_or_default();
            let grown = |now: u64, before: u64| if now >= before { now - before } else { now };
            self.totals.retried += grown(now.retried, before.retried);
            self.totals.dead_lettered += grown(now.dead_lettered, before.dead_lettered);
            self.totals.expired += grown(now.expired, before.expired);
            seen.insert(queue.name.clone(), now);
        }
        self.last_seen = seen;
        self.totals
    }
}

/// Every cumulative number at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// When it was taken.
    pub at: UnixMillis,
    /// The server's counters.
    pub counters: CounterValues,
    /// The engine's counters.
    pub engine: EngineCounts,
    /// The committer's work.
    pub commits: CommitStats,
}

/// How much happened between two samples, and over how long.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Growth {
    /// Seconds between the samples (0 when there was only one).
    pub seconds: f64,
    /// Counter growth.
    pub counters: CounterValues,
    /// Engine counter growth.
    pub engine: EngineCounts,
    /// Commits made.
    pub commits: u64,
    /// Records committed.
    pub records: u64,
    /// Microseconds spent committing.
    pub commit_micros: u64,
}

impl Growth {
    /// `count` per second over the span (0 for an empty span).
    pub fn per_second(&self, count: u64) -> f64 {
        if self.seconds > 0.0 {
            count as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// The last five minutes of samples, oldest first.
#[derive(Debug, Default)]
pub struct RecentSamples {
    samples: VecDeque<Sample>,
}

impl RecentSamples {
    /// Keeps `sample` (dropping the oldest beyond [`SAMPLES_MAX`]).
    pub fn push(&mut self, sample: Sample) {
        if self.samples.back().is_some_and(|last| last.at > sample.at) {
            return; // a sample from the past (clock stepped back): keep the series ordered
        }
        if self.samples.len() == SAMPLES_MAX {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The growth from the oldest sample at most `window_ms` before `latest` to `latest`.
    /// With no earlier sample, the growth since the server started (span 0, so no rates).
    pub fn growth(&self, latest: &Sample, window_ms: u64) -> Growth {
        let start = latest.at.saturating_sub(window_ms);
        let base = self
            .samples
            .iter()
            .find(|s| s.at >= start && s.at <= latest.at);
        let (base, seconds) = match base {
            Some(base) => (*base, (latest.at - base.at) as f64 / 1000.0),
            None => (Sample::default(), 0.0),
        };
        Growth {
            seconds,
            counters: latest.counters.since(&base.counters),
            engine: EngineCounts {
                retried: latest.engine.retried.saturating_sub(base.engine.retried),
                dead_lettered: latest
                    .engine
                    .dead_lettered
                    .saturating_sub(base.engine.dead_lettered),
                expired: latest.engine.expired.saturating_sub(base.engine.expired),
            },
            commits: latest.commits.commits.saturating_sub(base.commits.commits),
            records: latest.commits.records.saturating_sub(base.commits.records),
            commit_micros: latest
                .commits
                .commit_micros_total
                .saturating_sub(base.commits.commit_micros_total),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: UnixMillis, sent: u64) -> Sample {
        Sample {
            at,
            counters: CounterValues {
                sent,
                ..CounterValues::default()
            },
            ..Sample::default()
        }
    }

    #[test]
    fn rates_are_growth_over_the_span_of_the_window() {
        let mut recent = RecentSamples::default();
        for second in 0..=20u64 {
            recent.push(sample(second * 1000, second * 5));
        }
        let latest = sample(20_000, 100);
        let growth = recent.growth(&latest, RATE_WINDOW_MS);
        assert_eq!(growth.seconds, 10.0);
        assert_eq!(growth.counters.sent, 50);
        assert_eq!(growth.per_second(growth.counters.sent), 5.0);
    }

    #[test]
    fn with_no_history_the_growth_is_the_total_and_rates_are_zero() {
        let growth = RecentSamples::default().growth(&sample(5_000, 7), RATE_WINDOW_MS);
        assert_eq!(growth.counters.sent, 7);
        assert_eq!(growth.per_second(7), 0.0);
    }

    #[test]
    fn samples_are_bounded() {
        let mut recent = RecentSamples::default();
        for second in 0..1000u64 {
            recent.push(sample(second * 1000, second));
        }
        assert_eq!(recent.samples.len(), SAMPLES_MAX);
    }

    fn queue(name: &str, retried: u64) -> QueueStats {
        let mut stats = QueueStats {
            name: name.into(),
            config: Default::default(),
            ready: 0,
            delayed: 0,
            leased: 0,
            dead: 0,
            counters: Default::default(),
        };
        stats.counters.retried = retried;
        stats
    }

    #[test]
    fn engine_totals_survive_a_deleted_queue() {
        let mut totals = EngineTotals::default();
        assert_eq!(totals.update(&[queue("a", 3), queue("b", 2)]).retried, 5);
        assert_eq!(totals.update(&[queue("b", 4)]).retried, 7, "a deleted");
        assert_eq!(totals.update(&[queue("a", 1), queue("b", 4)]).retried, 8);
        assert_eq!(totals.update(&[queue("b", 1)]).retried, 9, "b made again");
    }
}
