//! Book-keeping shared by producers and consumers: when each message was sent, which arrived,
//! how many arrived twice, and the latency histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;

use super::report::Report;
use super::{Args, Mode};

/// Highest latency the histogram records, in microseconds (60 s).
const LATENCY_US_MAX: u64 = 60_000_000;

pub struct Tracker {
    mode: Mode,
    sent_at: Mutex<Vec<Option<Instant>>>,
    seen: Mutex<Vec<bool>>,
    latency_us: Mutex<Histogram<u64>>,
    sent_ok: AtomicU64,
    send_errors: AtomicU64,
    throttled: AtomicU64,
    /// Send attempts that failed (no answer, no server, 5xx) and were tried again.
    send_retries: AtomicU64,
    received_unique: AtomicU64,
    duplicates: AtomicU64,
    consumer_errors: AtomicU64,
    last_receipt: Mutex<Option<Instant>>,
}

impl Tracker {
    pub fn new(messages: u64, mode: Mode) -> Self {
        Self {
            mode,
            sent_at: Mutex::new(vec![None; messages as usize]),
            seen: Mutex::new(vec![false; messages as usize]),
            latency_us: Mutex::new(
                Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds"),
            ),
            sent_ok: AtomicU64::new(0),
            send_errors: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            send_retries: AtomicU64::new(0),
            received_unique: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            consumer_errors: AtomicU64::new(0),
            last_receipt: Mutex::new(None),
        }
    }

    pub fn sending(&self, seq: u64) {
        self.sent_at.lock()[seq as usize] = Some(Instant::now());
    }

    pub fn sent(&self, ok: bool) {
        if ok {
            self.sent_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.send_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// A send attempt failed (no answer, no active server, 5xx) and is tried again.
    pub fn send_retried(&self) {
        self.send_retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn consumer_error(&self) {
        self.consumer_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A message was received (pushed or leased); returns false for a duplicate.
    pub fn received(&self, seq: u64) -> bool {
        let already_seen = match self.seen.lock().get_mut(seq as usize) {
            Some(slot) => std::mem::replace(slot, true),
            None => return false,
        };
        if already_seen {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if self.mode == Mode::Ws {
            self.record_latency(seq);
        }
        self.received_unique.fetch_add(1, Ordering::Relaxed);
        *self.last_receipt.lock() = Some(Instant::now());
        true
    }

    /// The message's ack completed (REST latency is send → ack).
    pub fn acked(&self, seq: u64) {
        if matches!(self.mode, Mode::Rest | Mode::Queue) {
            self.record_latency(seq);
        }
        *self.last_receipt.lock() = Some(Instant::now());
    }

    fn record_latency(&self, seq: u64) {
        if let Some(sent) = self.sent_at.lock().get(seq as usize).copied().flatten() {
            let micros = sent.elapsed().as_micros() as u64;
            let _ = self
                .latency_us
                .lock()
                .record(micros.clamp(1, LATENCY_US_MAX));
        }
    }

    pub fn sent_ok(&self) -> u64 {
        self.sent_ok.load(Ordering::Relaxed)
    }

    pub fn received_unique(&self) -> u64 {
        self.received_unique.load(Ordering::Relaxed)
    }

    pub fn last_receipt(&self) -> Option<Instant> {
        *self.last_receipt.lock()
    }

    /// The summary; `moved` is how many requests were answered by another server than the
    /// one they were first sent to.
    pub fn report(&self, args: &Args, elapsed: Duration, moved: u64) -> Report {
        let latency = self.latency_us.lock();
        let received = self.received_unique();
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Report {
            mode: format!("{:?}", args.mode).to_lowercase(),
            agents: args.agents,
            producers: args.producers,
            sent_ok: self.sent_ok(),
            send_errors: self.send_errors.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            send_retries: self.send_retries.load(Ordering::Relaxed),
            retried_on_another_server: moved,
            received,
            duplicates: self.duplicates.load(Ordering::Relaxed),
            lost: self.sent_ok().saturating_sub(received),
            consumer_errors: self.consumer_errors.load(Ordering::Relaxed),
            seconds,
            throughput_per_second: received as f64 / seconds,
            latency_ms_p50: latency.value_at_quantile(0.50) as f64 / 1000.0,
            latency_ms_p99: latency.value_at_quantile(0.99) as f64 / 1000.0,
            latency_ms_max: latency.max() as f64 / 1000.0,
            latency_kind: match args.mode {
                Mode::Rest => "send → ack",
                Mode::Queue => "enqueue → ack",
                Mode::Ws => "send → push",
            }
            .to_string(),
        }
    }
}
