//! Per-sender rate limiting: one token bucket per sender name (GCRA, via `governor`).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{ApiError, ApiResult};

/// How many checks pass between sweeps of idle senders' buckets (bounds the limiter's memory).
const SWEEP_EVERY_CHECKS: u64 = 100_000;

/// Token buckets by sender; `None` inside when limiting is off.
pub struct SenderLimits {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    checks: AtomicU64,
}

impl SenderLimits {
    /// `per_second` messages a second with bursts of `burst`; `per_second == 0` turns it off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            limiter,
            checks: AtomicU64::new(0),
        }
    }

    /// Takes `count` tokens from `sender`'s bucket, or says when to retry.
    pub fn check(&self, sender: &str, count: u32) -> ApiResult<()> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY_CHECKS
            == SWEEP_EVERY_CHECKS - 1
        {
            limiter.retain_recent();
        }
        let count = NonZeroU32::new(count.max(1)).expect("at least one");
        let key = sender.to_string();
        match limiter.check_key_n(&key, count) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(ApiError::RateLimited {
                sender: sender.to_string(),
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            }),
            Err(_) => Err(ApiError::invalid(format!(
                "a batch of {count} messages is larger than sender {sender:?}'s burst allowance"
            ))),
        }
    }
}
