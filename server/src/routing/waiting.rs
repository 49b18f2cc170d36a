//! Waiting queues: where a routed message goes when no candidate is online, and how it gets
//! to the first matching agent that comes online.
//!
//! A waiting queue is an engine queue named after its target: `capability:NAME`,
//! `capability:*` (any agent) or `rule:NAME` (a rule that names agents only). Its messages are
//! moved, never copied and never dropped: leased, enqueued into the chosen agent's inbox, then
//! acknowledged. A crash between the enqueue and the ack delivers the message again at most
//! once more, and the inbox's dedup window (keyed by the waiting message's id) absorbs that
//! repeat. Expired waiting messages become dead letters of the waiting queue (counted in
//! `/api/v1/stats`), not silent losses.
//!
//! Moves run when an agent comes online or registers (the registry's arrivals), right after a
//! message starts waiting (closing the race with an arrival), and every
//! [`WAITING_SWEEP_INTERVAL`].

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
use switchboard_engine::{Delivery, LeaseToken, MessageId, NewMessage, UnixMillis};

use super::candidates::{candidates, Target};
use super::strategy::StrategyKind;
use crate::error::ApiResult;
use crate::registry::inbox_queue;
use crate::state::AppState;

/// Prefix of waiting queues of a capability (`capability:*` is any agent's).
pub const CAPABILITY_QUEUE_PREFIX: &str = "capability:";
/// Prefix of waiting queues of a rule that names agents only.
pub const RULE_QUEUE_PREFIX: &str = "rule:";
/// Waiting queue of messages any agent may take.
pub const ANY_AGENT_QUEUE: &str = "capability:*";
/// Time between two sweeps of every waiting queue (arrivals trigger one at once too).
pub const WAITING_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Messages moved per lease of a waiting queue.
pub const MOVE_BATCH_MESSAGES_MAX: usize = 100;
/// Batches moved per drain of one queue before yielding to the next sweep.
pub const MOVE_BATCHES_PER_DRAIN_MAX: usize = 100;
/// How long a move holds its lease; a crashed move's messages wait again after it.
pub const MOVE_LEASE_MS: u64 = 60_000;
/// Delay before retrying a message whose move failed (its inbox was full), in milliseconds.
pub const MOVE_RETRY_DELAY_MS: u64 = 5_000;
/// Attempts a waiting message is given *in the waiting queue*: moves, not deliveries, so a
/// retried move never turns it into a dead letter. Its own `max_attempts` travels in
/// [`HEADER_MAX_ATTEMPTS`] and applies in the inbox.
pub const WAITING_MOVE_ATTEMPTS: u32 = 1_000_000;

/// Header: the strategy to pick the agent with.
pub const HEADER_STRATEGY: &str = "route-strategy";
/// Header: `metadata.thread_id`, for the sticky strategy.
pub const HEADER_THREAD: &str = "route-thread";
/// Header: the `max_attempts` the sender asked for.
pub const HEADER_MAX_ATTEMPTS: &str = "route-max-attempts";

/// The waiting queue of a target.
pub fn queue_for(target: &Target, rule: Option<&str>) -> String {
    match (&target.capability, target.any) {
        (Some(capability), _) => format!("{CAPABILITY_QUEUE_PREFIX}{capability}"),
        (None, true) => ANY_AGENT_QUEUE.to_string(),
        (None, false) => format!("{RULE_QUEUE_PREFIX}{}", rule.unwrap_or_default()),
    }
}

/// What the messages of waiting queue `queue` wait for, in words (`an agent with capability
/// quality`); `None` when `queue` is not a waiting queue.
pub fn waits_for(queue: &str) -> Option<String> {
    if queue == ANY_AGENT_QUEUE {
        return Some("any agent to come online".into());
    }
    if let Some(capability) = queue.strip_prefix(CAPABILITY_QUEUE_PREFIX) {
        return Some(format!("an agent with capability {capability}"));
    }
    queue
        .strip_prefix(RULE_QUEUE_PREFIX)
        .map(|rule| format!("an agent named by routing rule {rule}"))
}

/// True for the names of waiting queues.
pub fn is_waiting_queue(name: &str) -> bool {
    name.starts_with(CAPABILITY_QUEUE_PREFIX) || name.starts_with(RULE_QUEUE_PREFIX)
}

/// The target and rule of a waiting queue (a rule queue's agents are the rule's current
/// ones); `None` for a rule that no longer exists, whose messages wait until it does.
fn target_of(state: &AppState, queue: &str) -> Option<(Target, Option<String>)> {
    if queue == ANY_AGENT_QUEUE {
        return Some((
            Target {
                capability: None,
                agents: Vec::new(),
                any: true,
            },
            None,
        ));
    }
    if let Some(capability) = queue.strip_prefix(CAPABILITY_QUEUE_PREFIX) {
        return Some((
            Target {
                capability: Some(capability.to_string()),
                agents: Vec::new(),
                any: false,
            },
            None,
        ));
    }
    let name = queue.strip_prefix(RULE_QUEUE_PREFIX)?;
    let rules = state.routing.rules();
    let rule = rules.rule(name)?;
    Some((
        Target {
            capability: rule.capability.clone(),
            agents: rule.spec.agents.clone(),
            any: rule.targets_any(),
        },
        Some(name.to_string()),
    ))
}

/// Headers a waiting message carries so that its move can finish the routing decision.
pub fn headers(
    strategy: StrategyKind,
    thread: Option<&str>,
    max_attempts: Option<u32>,
) -> switchboard_engine::Headers {
    let mut headers = switchboard_engine::Headers::new();
    headers.insert(HEADER_STRATEGY.into(), strategy.as_str().into());
    if let Some(thread) = thread {
        headers.insert(HEADER_THREAD.into(), thread.into());
    }
    if let Some(attempts) = max_attempts {
        headers.insert(HEADER_MAX_ATTEMPTS.into(), attempts.to_string());
    }
    headers
}

/// Moves what waits in `queue` to online candidates; returns how many moved.
pub async fn drain_queue(state: &AppState, queue: &str) -> ApiResult<usize> {
    let Some((target, rule)) = target_of(state, queue) else {
        return Ok(0);
    };
    let key = target.turn_key(rule.as_deref());
    let mut moved = 0;
    for _ in 0..MOVE_BATCHES_PER_DRAIN_MAX {
        let mut candidates = candidates(state, &target);
        let ready = state.engine.queue_stats(queue).map_or(0, |s| s.ready);
        if candidates.is_empty() || ready == 0 {
            break;
        }
        let batch_started = std::time::Instant::now();
        let deliveries = state
            .engine
            .lease(queue, MOVE_BATCH_MESSAGES_MAX, Some(MOVE_LEASE_MS))
            .await?;
        if deliveries.is_empty() {
            break;
        }
        let now = state.engine.now_ms();
        // Choose first, then enqueue per inbox in one batch each (one commit per inbox).
        let mut per_inbox: BTreeMap<String, Vec<(MessageId, LeaseToken, NewMessage)>> =
            BTreeMap::new();
        {
            let mut strategies = state.routing.strategies.lock();
            for delivery in &deliveries {
                let headers = &delivery.message.headers;
                let strategy = headers
                    .get(HEADER_STRATEGY)
                    .and_then(|s| StrategyKind::parse(s))
                    .unwrap_or_default();
                let thread = headers.get(HEADER_THREAD).map(String::as_str);
                let chosen = strategies
                    .choose(strategy, &key, &candidates, thread)
                    .expect("candidates is not empty")
                    .id
                    .clone();
                if let Some(agent) = candidates.iter_mut().find(|c| c.id == chosen) {
                    agent.queued += 1; // spreads a batch under least-loaded
                }
                per_inbox.entry(inbox_queue(&chosen)).or_default().push((
                    delivery.message.id,
                    delivery.token,
                    moved_message(delivery, now),
                ));
            }
        }
        let engine = &state.engine;
        let results = join_all(per_inbox.iter().map(|(inbox, items)| {
            let messages = items.iter().map(|(_, _, m)| m.clone()).collect();
            engine.enqueue_batch(inbox, messages)
        }))
        .await;
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for ((inbox, items), result) in per_inbox.iter().zip(results) {
            let settled = items.iter().map(|(id, token, _)| (*id, *token));
            match result {
                Ok(_) => done.extend(settled),
                Err(error) => {
                    tracing::warn!(%inbox, %error, queue, "could not hand waiting messages over; retrying later");
                    failed.extend(settled);
                }
            }
        }
        if !done.is_empty() {
            state.engine.ack_batch(&done).await?;
            state.routing.metrics.handed_over(done.len() as u64);
            state.monitor.sent(
                done.len() as u64,
                batch_started.elapsed(),
                state.engine.now_ms(),
            );
            moved += done.len();
        }
        if !failed.is_empty() {
            state
                .engine
                .nack_batch(&failed, Some(MOVE_RETRY_DELAY_MS))
                .await?;
            break;
        }
    }
    if moved > 0 {
        tracing::debug!(queue, moved, "waiting messages handed over");
    }
    Ok(moved)
}

/// The inbox message for a waiting one: same payload (with `metadata.routing.queued_message_id`
/// added), priority, remaining lifetime and requested attempts.
fn moved_message(delivery: &Delivery, now: UnixMillis) -> NewMessage {
    let stored = &delivery.message;
    let payload = match serde_json::from_slice::<serde_json::Value>(&stored.payload) {
        Ok(mut value) => {
            if let Some(routing) = value
                .pointer_mut("/metadata/routing")
                .and_then(|routing| routing.as_object_mut())
            {
                routing.insert("queued_message_id".into(), stored.id.to_string().into());
            }
            serde_json::to_vec(&value).expect("a JSON value always serializes")
        }
        Err(_) => stored.payload.to_vec(),
    };
    NewMessage {
        payload,
        priority: stored.priority,
        headers: Default::default(),
        delay_ms: 0,
        ttl_ms: Some(match stored.expires_at {
            None => 0,
            Some(at) => at.saturating_sub(now).max(1),
        }),
        max_attempts: stored
            .headers
            .get(HEADER_MAX_ATTEMPTS)
            .and_then(|n| n.parse().ok()),
        // A repeated move (crash before the ack) is recognised and stored once.
        dedup_key: Some(format!("moved:{}", stored.id)),
    }
}

/// Drains every waiting queue that holds ready messages; returns how many moved.
pub async fn sweep(state: &AppState) -> usize {
    let queues: Vec<String> = state
        .engine
        .all_queue_stats()
        .into_iter()
        .filter(|stats| is_waiting_queue(&stats.name) && stats.ready > 0)
        .map(|stats| stats.name.to_string())
        .collect();
    let mut moved = 0;
    for queue in queues {
        match drain_queue(state, &queue).await {
            Ok(count) => moved += count,
            Err(error) => tracing::warn!(%queue, %error, "could not drain waiting queue"),
        }
    }
    moved
}

/// Sweeps on every arrival and every [`WAITING_SWEEP_INTERVAL`] until the server shuts down.
pub fn spawn_sweeper(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut shutdown = state.shutdown.clone();
        loop {
            sweep(&state).await;
            tokio::select! {
                _ = state.registry.arrivals().notified() => {}
                _ = tokio::time::sleep(WAITING_SWEEP_INTERVAL) => {}
                _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => return,
            }
        }
    })
}

/// Messages waiting now per waiting queue, and dead letters as `NAME (dead)`.
pub fn waiting_counts(state: &AppState) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for stats in state.engine.all_queue_stats() {
        if !is_waiting_queue(&stats.name) {
            continue;
        }
        let waiting = stats.ready + stats.delayed + stats.leased;
        if waiting > 0 {
            counts.insert(stats.name.to_string(), waiting);
        }
        if stats.dead > 0 {
            counts.insert(format!("{} (dead)", stats.name), stats.dead);
        }
    }
    counts
}
