//! A standby's attempts to take ownership of its storage: about every
//! [`STANDBY_POLL_MS`](crate::limits::STANDBY_POLL_MS), sooner when the owner's lease is known
//! to end sooner, until it succeeds or the server is told to stop.

use std::time::{Duration, Instant};

use switchboard_engine::Storage;
use switchboard_storage::OpenOptions;
use tokio::sync::watch;

use super::Standing;
use crate::limits::STANDBY_POLL_MS;
use crate::storage::{open_backend, OpenFailure, OwnerSeen};

/// Shortest pause between two attempts, in milliseconds: a lease reported as ending "now"
/// must not turn the loop into a busy one.
const STANDBY_POLL_MS_MIN: u64 = 5;

/// The pause before the next attempt, given the owner's lease ends in `lease_remaining_ms`.
pub fn next_attempt_in(lease_remaining_ms: u64) -> Duration {
    Duration::from_millis(lease_remaining_ms.clamp(STANDBY_POLL_MS_MIN, STANDBY_POLL_MS))
}

/// Tries to open `url` until this server owns it (`Some`), or until `stopping` turns true
/// (`None`). `first` is what the first attempt, made before, found.
pub async fn wait_for_ownership(
    url: &str,
    options: &OpenOptions,
    first: &OwnerSeen,
    standing: &Standing,
    mut stopping: watch::Receiver<bool>,
) -> Option<Box<dyn Storage>> {
    let standby_since = Instant::now();
    let mut last_refused = Instant::now();
    let mut pause = next_attempt_in(first.lease_remaining_ms);
    let mut last_problem: Option<String> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stopping.wait_for(|stop| *stop) => return None,
        }
        match open_backend(url, options).await {
            Ok(storage) => {
                if *stopping.borrow() {
                    return None; // dropping the store gives the ownership back at once
                }
                tracing::warn!(
                    standby_ms = standby_since.elapsed().as_millis() as u64,
                    since_last_refusal_ms = last_refused.elapsed().as_millis() as u64,
                    "took ownership of the storage: this standby becomes the active server"
                );
                return Some(storage);
            }
            Err(OpenFailure::Owned(owner)) => {
                last_refused = Instant::now();
                pause = next_attempt_in(owner.lease_remaining_ms);
                if last_problem.take().is_some() {
                    tracing::info!("the storage answers again; still a hot standby");
                }
                standing.owner_seen(owner);
            }
            Err(OpenFailure::Failed(problem)) => {
                pause = Duration::from_millis(STANDBY_POLL_MS);
                if last_problem.as_ref() != Some(&problem) {
                    tracing::warn!(%problem, "a hot standby cannot take over yet; retrying");
                    last_problem = Some(problem.clone());
                }
                standing.problem_seen(problem);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_come_sooner_when_the_lease_ends_sooner_but_never_in_a_busy_loop() {
        assert_eq!(
            next_attempt_in(10_000),
            Duration::from_millis(STANDBY_POLL_MS)
        );
        assert_eq!(next_attempt_in(50), Duration::from_millis(50));
        assert_eq!(
            next_attempt_in(0),
            Duration::from_millis(STANDBY_POLL_MS_MIN)
        );
    }
}
