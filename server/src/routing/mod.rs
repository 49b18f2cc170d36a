//! Routing: `recipient` may name an agent (name or id), `capability:NAME` (any online agent
//! with that capability) or `auto` (the first matching [`rules`] rule decides).
//!
//! - [`rules`]: the ordered rule set, its defaults (the original's six rules and its
//!   fallback to any online agent), JSON/YAML reading and checking.
//! - [`strategy`]: round robin, least loaded and sticky, as pure bookkeeping.
//! - `candidates`: who may receive a message (online, not gone, matching).
//! - `broker`: the decision for one message, the send response's `routed_to`, `rule`,
//!   `strategy`; the [`Router`] holding rules, strategies and metrics.
//! - `idempotency`: a routed send retried with its `dedup_key` gets the first try's answer
//!   instead of being routed again (perhaps to another agent); `claims`: the same across a
//!   restart or a failover, kept in the engine.
//! - `strategy_persist`: sticky threads and round-robin turns saved in the engine, so they
//!   continue after a restart or a failover.
//! - `advice`: the send answer's `note` when a routed message waits or `auto` fell back.
//! - `waiting`: waiting queues for messages with no online candidate, handed over to the
//!   first matching agent that comes online.
//! - `persist`: where rules set over the API are kept (the rules file, else the engine).
//! - `metrics`: the `routing` section of `/api/v1/stats`.
//!
//! Broadcast copies never go through here: they are addressed to their inboxes directly.

mod advice;
mod broker;
mod candidates;
mod claims;
mod idempotency;
mod metrics;
mod persist;
pub mod rules;
pub mod strategy;
mod strategy_persist;
pub mod waiting;

pub use broker::{is_capability_recipient, send, Routed, Router};
pub use metrics::RoutingStats;

/// The recipient asking for content routing.
pub const RECIPIENT_AUTO: &str = "auto";
/// The prefix of recipients asking for any agent with a capability.
pub const RECIPIENT_CAPABILITY_PREFIX: &str = "capability:";

/// True when `recipient` asks for routing rather than naming an agent.
pub fn is_routed(recipient: &str) -> bool {
    let recipient = recipient.trim();
    recipient.eq_ignore_ascii_case(RECIPIENT_AUTO) || is_capability_recipient(recipient)
}

/// The `routing` section of `/api/v1/stats`: the counters and what waits now.
pub fn stats(state: &crate::state::AppState) -> RoutingStats {
    let mut stats = state.routing.metrics.snapshot();
    stats.waiting = waiting::waiting_counts(state);
    stats
}

/// Reads back the routing memory saved on this storage (sticky threads, round-robin turns)
/// and starts saving it; turns on the claims of keyed routed sends (see `claims`).
pub async fn restore(
    state: &crate::state::AppState,
) -> Result<tokio::task::JoinHandle<()>, switchboard_engine::EngineError> {
    claims::configure(&state.engine).await?;
    state.routing.keep_claims();
    strategy_persist::restore(state).await
}

/// Starts the background work: the waiting-queue sweeper.
pub fn spawn(state: crate::state::AppState) -> tokio::task::JoinHandle<()> {
    waiting::spawn_sweeper(state)
}

/// The `switchboard serve` flags of routing (flattened into `ServeArgs`).
#[derive(Debug, Clone, clap::Args)]
pub struct RoutingArgs {
    /// Routing rules file (JSON or YAML): loaded at start, rewritten by
    /// `PUT /api/v1/routing/rules`. Without it, rules set over the API are kept in storage.
    #[arg(long, value_name = "FILE")]
    pub routing_rules: Option<std::path::PathBuf>,
}

#[cfg(test)]
mod tests;
