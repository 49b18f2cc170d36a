//! Counters bumped by the request paths (sends, deliveries, acks, rejections). Plain relaxed
//! atomics: a hot path pays one uncontended add, and readers only need each value to be
//! monotonic, not a consistent cut across counters.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Everything the server counts since it started. Each counter only goes up.
#[derive(Debug, Default)]
pub struct Counters {
    sent: AtomicU64,
    delivered: AtomicU64,
    first_delivered: AtomicU64,
    acked: AtomicU64,
    nacked: AtomicU64,
    routing_failures: AtomicU64,
    http_requests: AtomicU64,
    http_client_errors: AtomicU64,
    http_server_errors: AtomicU64,
    ws_frames: AtomicU64,
    ws_frames_rejected: AtomicU64,
}

/// The counters' values at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CounterValues {
    /// Messages placed in an agent's inbox (a broadcast counts one per copy).
    pub sent: u64,
    /// Messages handed to an agent (REST lease or WebSocket push), redeliveries included.
    pub delivered: u64,
    /// Deliveries that were a message's first.
    pub first_delivered: u64,
    /// Messages acknowledged by their agent.
    pub acked: u64,
    /// Messages given back by their agent for a retry.
    pub nacked: u64,
    /// Sends that could not be placed: no such recipient, no target, or the enqueue failed.
    pub routing_failures: u64,
    /// HTTP requests answered (monitoring's own endpoints excluded).
    pub http_requests: u64,
    /// HTTP requests answered with a 4xx.
    pub http_client_errors: u64,
    /// HTTP requests answered with a 5xx.
    pub http_server_errors: u64,
    /// WebSocket frames received from agents.
    pub ws_frames: u64,
    /// WebSocket frames answered with an `error` frame.
    pub ws_frames_rejected: u64,
}

impl CounterValues {
    /// Requests and frames turned down.
    pub fn rejected(&self) -> u64 {
        self.http_client_errors + self.http_server_errors + self.ws_frames_rejected
    }

    /// Requests and frames received.
    pub fn requests(&self) -> u64 {
        self.http_requests + self.ws_frames
    }

    /// How much each counter grew since `earlier` (zero where it did not).
    pub fn since(&self, earlier: &CounterValues) -> CounterValues {
        CounterValues {
            sent: self.sent.saturating_sub(earlier.sent),
            delivered: self.delivered.saturating_sub(earlier.delivered),
            first_delivered: self.first_delivered.saturating_sub(earlier.first_delivered),
            acked: self.acked.saturating_sub(earlier.acked),
            nacked: self.nacked.saturating_sub(earlier.nacked),
            routing_failures: self
                .routing_failures
                .saturating_sub(earlier.routing_failures),
            http_requests: self.http_requests.saturating_sub(earlier.http_requests),
            http_client_errors: self
                .http_client_errors
                .saturating_sub(earlier.http_client_errors),
            http_server_errors: self
                .http_server_errors
                .saturating_sub(earlier.http_server_errors),
            ws_frames: self.ws_frames.saturating_sub(earlier.ws_frames),
            ws_frames_rejected: self
                .ws_frames_rejected
                .saturating_sub(earlier.ws_frames_rejected),
        }
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Counters {
    /// `count` messages were placed in inboxes.
    pub fn sent(&self, count: u64) {
        bump(&self.sent, count);
    }

    /// `count` deliveries, `first` of them a message's first.
    pub fn delivered(&self, count: u64, first: u64) {
        debug_assert!(first <= count);
        bump(&self.delivered, count);
        bump(&self.first_delivered, first);
    }

    /// `count` messages were acknowledged.
    pub fn acked(&self, count: u64) {
        bump(&self.acked, count);
    }

    /// A message was given back.
    pub fn nacked(&self) {
        bump(&self.nacked, 1);
    }

    /// A send could not be placed.
    pub fn routing_failed(&self) {
        bump(&self.routing_failures, 1);
    }

    /// An HTTP request was answered with `status`.
    pub fn http_answered(&self, status: u16) {
        bump(&self.http_requests, 1);
        match status {
            400..=499 => bump(&self.http_client_errors, 1),
            500..=599 => bump(&self.http_server_errors, 1),
            _ => {}
        }
    }

    /// A WebSocket frame was handled; `rejected` when it was answered with an error.
    pub fn ws_frame(&self, rejected: bool) {
        bump(&self.ws_frames, 1);
        if rejected {
            bump(&self.ws_frames_rejected, 1);
        }
    }

    /// The values now.
    pub fn values(&self) -> CounterValues {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CounterValues {
            sent: get(&self.sent),
            delivered: get(&self.delivered),
            first_delivered: get(&self.first_delivered),
            acked: get(&self.acked),
            nacked: get(&self.nacked),
            routing_failures: get(&self.routing_failures),
            http_requests: get(&self.http_requests),
            http_client_errors: get(&self.http_client_errors),
            http_server_errors: get(&self.http_server_errors),
            ws_frames: get(&self.ws_frames),
            ws_frames_rejected: get(&self.ws_frames_rejected),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_are_sorted_into_client_and_server_errors() {
        let counters = Counters::default();
        for status in [200, 204, 399, 400, 429, 499, 500, 503] {
            counters.http_answered(status);
        }
        let values = counters.values();
        assert_eq!(values.http_requests, 8);
        assert_eq!(values.http_client_errors, 3);
        assert_eq!(values.http_server_errors, 2);
        assert_eq!(values.rejected(), 5);
    }

    #[test]
    fn since_is_the_growth_and_never_underflows() {
        let counters = Counters::default();
        counters.sent(3);
        let earlier = counters.values();
        counters.sent(2);
        counters.delivered(4, 1);
        let growth = counters.values().since(&earlier);
        assert_eq!(growth.sent, 2);
        assert_eq!(growth.delivered, 4);
        assert_eq!(growth.first_delivered, 1);
        assert_eq!(earlier.since(&counters.values()).sent, 0);
    }
}
