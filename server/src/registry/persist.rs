//! Persisting the registry *inside the engine*, as a log of changes in the reserved queue
//! [`REGISTRY_QUEUE`].
//!
//! Why there: the `Storage` trait only knows engine records, and every backend (Redis, redb,
//! sled, memory) stores those, so a queue is the one place that is durable on every backend
//! with the same guarantees as the messages, moves with the data (a Redis URL brings its
//! agents along), and needs no second file or second consistency story. A JSON file beside the
//! server would be lost when the storage moves, and could disagree with it after a crash.
//!
//! How: a [`crate::durable::log::EngineLog`]; each change (put or delete) is one record
//! carrying a version from one counter, appended before the API answers. On start the whole
//! log is replayed (highest version per agent wins) and compacted to the live agents' puts.
//! A crash between the write back and the acks leaves duplicates that the next replay folds
//! the same way.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use switchboard_engine::{Engine, EngineError};

use super::AgentRecord;
use crate::durable::log::EngineLog;

/// The reserved engine queue holding the registry's log. Queue names starting with `_` are
/// refused by the queue API.
pub const REGISTRY_QUEUE: &str = "_registry";

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
    log(engine).append(&[change]).await
}

/// Makes a removal durable.
pub(super) async fn delete(engine: &Engine, version: u64, id: &str) -> Result<(), EngineError> {
    let change = Change::Delete {
        version,
        id: id.to_string(),
    };
    log(engine).append(&[change]).await
}

/// The registry's log, opened by [`load`] at start.
fn log(engine: &Engine) -> EngineLog {
    EngineLog::opened(engine.clone(), REGISTRY_QUEUE)
}

/// Replays and compacts the log; returns the live records with their versions, and the highest
/// version seen.
pub(super) async fn load(engine: &Engine) -> Result<(Vec<(u64, AgentRecord)>, u64), EngineError> {
    let log = EngineLog::open(engine.clone(), REGISTRY_QUEUE, 0).await?;
    let (changes, read) = log.replay::<Change>().await?;
    let replayed = changes.len();
    let mut latest: HashMap<String, Change> = HashMap::new();
    let mut highest = 0;
    for change in changes {
        highest = highest.max(change.version());
        let newer = latest
            .get(change.id())
            .is_none_or(|seen| seen.version() < change.version());
        if newer {
            latest.insert(change.id().to_string(), change);
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
    let compacted: Vec<Change> = live
        .iter()
        .map(|(version, agent)| Change::Put {
            version: *version,
            agent: agent.clone(),
        })
        .collect();
    log.compact(read, &compacted).await?;
    tracing::info!(agents = live.len(), replayed, "registry loaded");
    Ok((live, highest))
}
