//! Per-queue configuration and the engine's named limits.

use serde::{Deserialize, Serialize};

/// Longest queue name accepted, in bytes.
pub const QUEUE_NAME_BYTES_MAX: usize = 200;
/// Largest message payload accepted by the engine, in bytes. The server enforces a smaller
/// request-body limit at its edge.
pub const PAYLOAD_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Most headers one message may carry.
pub const HEADERS_COUNT_MAX: usize = 64;
/// Largest total size of one message's header names and values, in bytes.
pub const HEADERS_BYTES_MAX: usize = 16 * 1024;
/// Longest dedup key accepted, in bytes.
pub const DEDUP_KEY_BYTES_MAX: usize = 512;
/// Most messages one batch call (enqueue, lease, ack, nack) may carry.
pub const BATCH_MESSAGES_MAX: usize = 10_000;
/// Longest lease a consumer may ask for, in milliseconds (12 hours, as SQS).
pub const LEASE_MS_MAX: u64 = 12 * 60 * 60 * 1000;
/// Shortest lease a consumer may ask for, in milliseconds.
pub const LEASE_MS_MIN: u64 = 1;
/// Longest delivery delay, in milliseconds (30 days).
pub const DELAY_MS_MAX: u64 = 30 * 24 * 60 * 60 * 1000;
/// Most records waiting for the committer before callers are made to wait (backpressure).
pub const PENDING_RECORDS_MAX: usize = 256 * 1024;
/// Largest `max_size` a queue may be configured with, in messages.
pub const QUEUE_SIZE_MAX: u64 = 100_000_000;

/// How a queue behaves. Defaults match the seed's `QueueConfig` (max_size 10000, ttl 86400 s,
/// retry_delay 60 s, 3 attempts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueConfig {
    /// Messages the queue may hold (ready, delayed, leased and dead); enqueue beyond it fails
    /// with `QueueFull`.
    pub max_size: u64,
    /// Time to live of a message from enqueue, in milliseconds; 0 means no expiry.
    pub message_ttl_ms: u64,
    /// Lease length used when a consumer does not name one, in milliseconds.
    pub default_lease_ms: u64,
    /// Deliveries a message gets; when they are used up it is dead-lettered (or dropped).
    pub max_attempts: u32,
    /// Backoff before the first retry after a `nack` without an explicit delay, in milliseconds.
    pub retry_delay_ms: u64,
    /// Factor applied to the retry delay for each further attempt (1.0 = constant backoff).
    pub retry_multiplier: f64,
    /// Upper bound of the retry delay, in milliseconds.
    pub retry_delay_max_ms: u64,
    /// Keep messages that ran out of attempts or expired as dead letters (else drop them).
    pub dead_letters: bool,
    /// How long a dedup key is remembered after its enqueue, in milliseconds; 0 turns dedup off.
    pub dedup_window_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_size: 10_000,
            message_ttl_ms: 86_400_000,
            default_lease_ms: 300_000,
            max_attempts: 3,
            retry_delay_ms: 60_000,
            retry_multiplier: 2.0,
            retry_delay_max_ms: 3_600_000,
            dead_letters: true,
            dedup_window_ms: 300_000,
        }
    }
}

impl QueueConfig {
    /// Checks that every field is within its limits, naming the first one that is not.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_size == 0 || self.max_size > QUEUE_SIZE_MAX {
            return Err(format!("max_size must be between 1 and {QUEUE_SIZE_MAX}"));
        }
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1".into());
        }
        if !(LEASE_MS_MIN..=LEASE_MS_MAX).contains(&self.default_lease_ms) {
            return Err(format!(
                "default_lease_ms must be between {LEASE_MS_MIN} and {LEASE_MS_MAX}"
            ));
        }
        if !self.retry_multiplier.is_finite() || self.retry_multiplier < 1.0 {
            return Err("retry_multiplier must be a finite number >= 1.0".into());
        }
        if self.retry_delay_ms > DELAY_MS_MAX || self.retry_delay_max_ms > DELAY_MS_MAX {
            return Err(format!("retry delays must be at most {DELAY_MS_MAX} ms"));
        }
        Ok(())
    }

    /// Delay before retry number `attempts` (1 = after the first delivery), with exponential
    /// backoff capped at `retry_delay_max_ms`.
    pub fn retry_delay_for(&self, attempts: u32) -> u64 {
        let exponent = attempts.saturating_sub(1).min(64) as i32;
        let delay = self.retry_delay_ms as f64 * self.retry_multiplier.powi(exponent);
        let capped = delay.min(self.retry_delay_max_ms.max(self.retry_delay_ms) as f64);
        capped as u64
    }
}
