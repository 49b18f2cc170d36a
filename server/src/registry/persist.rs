//! Persisting the registry *inside the engine*, as a log of changes in the reserved queue
//! [`REGISTRY_QUEUE`].
//!
//! Why there: the `Storage` trait only knows engine records, and every backend (Redis, redb,
//! sled, memory) stores those, so a queue is the one place that is durable on every backend
//! with the same guarantees as the messages, moves with the data (a Redis URL brings its
//! agents along), and needs no second file or second consistency story. A JSON file beside the
//! server would be lost when the storage moves, and could disagree with it after a crash.
//!
//! How: each change (put or delete) is one message carrying a version from one counter. The
//! messages are never leased while the server runs, so they stay ready. On start the whole log
//! is leased, replayed (highest version per agent wins), written back as one batch of puts, and
//! the old messages are acked: the log is compacted on every start. A crash between the write
//! back and the acks leaves duplicates that the next replay folds the same way.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use switchboard_engine::{
    Engine, EngineError, LeaseToken, MessageId, NewMessage, QueueConfig, BATCH_MESSAGES_MAX,
};

use super::AgentRecord;

/// The reserved engine queue holding the registry's log. Queue names starting with `_` are
/// refused by the queue API.
pub const REGISTRY_QUEUE: &str = "_registry";

/// How long the start-up replay holds the log, in milliseconds (released by its acks).
const LOAD_LEASE_MS: u64 = 60_000;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Change {
    Put { version: u64, agent: AgentRecord },
    Delete { version: u64, id: String },
}

impl Change {
    fn version(&self) -> u64 {
        match self {
            Change::Put { version, .. } | Change::Delete { version, .. } => *version,
        }
    }

    fn id(&self) -> &str {
        match self {
            Change::Put { agent, .. } => &agent.id,
            Change::Delete { id, .. } => id,
        }
    }
}

fn log_config() -> QueueConfig {
    QueueConfig {
        max_size: 10_000_000,
        message_ttl_ms: 0,
        default_lease_ms: LOAD_LEASE_MS,
        max_attempts: u32::MAX,
        dead_letters: false,
        dedup_window_ms: 0,
        ..QueueConfig::default()
    }
}

fn message(change: &Change) -> NewMessage {
    let payload = serde_json::to_vec(change).expect("a registry change always serializes");
    NewMessage {
        payload,
        ttl_ms: Some(0),
        max_attempts: Some(u32::MAX),
        ..NewMessage::default()
    }
}

/// Makes a new or changed record durable.
pub(super) async fn put(
    engine: &Engine,
    version: u64,
    agent: &AgentRecord,
) -> Result<(), EngineError> {
    let change = Change::Put {
        version,
        agent: agent.clone(),
    };
    engine
        .enqueue(REGISTRY_QUEUE, message(&change))
        .await
        .map(drop)
}

/// Makes a removal durable.
pub(super) async fn delete(engine: &Engine, version: u64, id: &str) -> Result<(), EngineError> {
    let change = Change::Delete {
        version,
        id: id.to_string(),
    };
    engine
        .enqueue(REGISTRY_QUEUE, message(&change))
        .await
        .map(drop)
}

/// Replays and compacts the log; returns the live records with their versions, and the highest
/// version seen.
pub(super) async fn load(engine: &Engine) -> Result<(Vec<(u64, AgentRecord)>, u64), EngineError> {
    engine.configure_queue(REGISTRY_QUEUE, log_config()).await?;
    let mut old: Vec<(MessageId, LeaseToken)> = Vec::new();
    let mut latest: HashMap<String, Change> = HashMap::new();
    let mut highest = 0;
    loop {
        let deliveries = engine
            .lease(REGISTRY_QUEUE, BATCH_MESSAGES_MAX, Some(LOAD_LEASE_MS))
            .await?;
        if deliveries.is_empty() {
            break;
        }
        for delivery in deliveries {
            let change: Change = match serde_json::from_slice(&delivery.message.payload) {
                Ok(change) => change,
                Err(error) => {
                    // Kept (not acked) so that nothing is thrown away; it is skipped each start.
                    tracing::error!(id = %delivery.message.id, %error, "unreadable registry record skipped");
                    continue;
                }
            };
            old.push((delivery.message.id, delivery.token));
            highest = highest.max(change.version());
            let newer = latest
                .get(change.id())
                .is_none_or(|seen| seen.version() < change.version());
            if newer {
                latest.insert(change.id().to_string(), change);
            }
        }
    }
    let mut live: Vec<(u64, AgentRecord)> = latest
        .into_values()
        .filter_map(|change| match change {
            Change::Put { version, agent } => Some((version, agent)),
            Change::Delete { .. } => None,
        })
        .collect();
    // Names are unique: should two live records share one, the later change wins.
    live.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    let mut names = std::collections::HashSet::new();
    live.retain(|(_, agent)| names.insert(agent.name.clone()));
    let compacted: Vec<NewMessage> = live
        .iter()
        .map(|(version, agent)| {
            message(&Change::Put {
                version: *version,
                agent: agent.clone(),
            })
        })
        .collect();
    for chunk in compacted.chunks(BATCH_MESSAGES_MAX) {
        engine.enqueue_batch(REGISTRY_QUEUE, chunk.to_vec()).await?;
    }
    for chunk in old.chunks(BATCH_MESSAGES_MAX) {
        engine.ack_batch(chunk).await?;
    }
    tracing::info!(agents = live.len(), replayed = old.len(), "registry loaded");
    Ok((live, highest))
}
