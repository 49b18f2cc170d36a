//! Where routing rules set over the API (`PUT /api/v1/routing/rules`) are kept.
//!
//! - With `--routing-rules FILE`: in that file. A PUT rewrites it (JSON for a `.json` name,
//!   YAML otherwise; written beside it and renamed over it, so a crash leaves the old or the
//!   new file, never half of one), and a restart loads it again: the file is the one source of
//!   truth, and an operator can read or edit it. Comments in a YAML file do not survive a PUT.
//! - Without a file: in the reserved engine queue [`RULES_QUEUE`], like the registry (see
//!   `registry/persist.rs`): durable on every backend with the messages' guarantees, and moved
//!   with the storage. Each PUT adds the whole set with a version; start-up keeps the highest
//!   version and compacts the log to it. With neither, the defaults apply.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switchboard_engine::{
    Engine, EngineError, LeaseToken, MessageId, NewMessage, QueueConfig, BATCH_MESSAGES_MAX,
};

use super::rules::RuleSetSpec;

/// The reserved engine queue holding rule sets set over the API when no file is configured.
pub const RULES_QUEUE: &str = "_routing_rules";
/// How long the start-up replay holds the log, in milliseconds (released by its acks).
const LOAD_LEASE_MS: u64 = 60_000;

/// Where rules are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleStore {
    /// `--routing-rules FILE`.
    File(PathBuf),
    /// The engine queue [`RULES_QUEUE`].
    Engine,
}

#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    version: u64,
    rules: RuleSetSpec,
}

/// Reads the rule set kept in the engine, if one was ever set; compacts the log. Returns the
/// set and its version.
pub async fn load_from_engine(engine: &Engine) -> Result<Option<(RuleSetSpec, u64)>, EngineError> {
    engine
        .configure_queue(
            RULES_QUEUE,
            QueueConfig {
                message_ttl_ms: 0,
                default_lease_ms: LOAD_LEASE_MS,
                max_attempts: u32::MAX,
                dead_letters: false,
                dedup_window_ms: 0,
                ..QueueConfig::default()
            },
        )
        .await?;
    let mut old: Vec<(MessageId, LeaseToken)> = Vec::new();
    let mut latest: Option<Saved> = None;
    loop {
        let deliveries = engine
            .lease(RULES_QUEUE, BATCH_MESSAGES_MAX, Some(LOAD_LEASE_MS))
            .await?;
        if deliveries.is_empty() {
            break;
        }
        for delivery in deliveries {
            match serde_json::from_slice::<Saved>(&delivery.message.payload) {
                Ok(saved) => {
                    old.push((delivery.message.id, delivery.token));
                    if latest.as_ref().is_none_or(|l| l.version < saved.version) {
                        latest = Some(saved);
                    }
                }
                // Kept (not acked) so nothing is thrown away; skipped on each start.
                Err(error) => {
                    tracing::error!(id = %delivery.message.id, %error, "unreadable routing rules record skipped")
                }
            }
        }
    }
    if let Some(saved) = &latest {
        engine.enqueue(RULES_QUEUE, message(saved)).await?;
    }
    for chunk in old.chunks(BATCH_MESSAGES_MAX) {
        engine.ack_batch(chunk).await?;
    }
    Ok(latest.map(|saved| (saved.rules, saved.version)))
}

fn message(saved: &Saved) -> NewMessage {
    NewMessage {
        payload: serde_json::to_vec(saved).expect("rules always serialize"),
        ttl_ms: Some(0),
        max_attempts: Some(u32::MAX),
        ..NewMessage::default()
    }
}

/// Keeps `rules` as version `version` in the engine.
pub async fn save_to_engine(
    engine: &Engine,
    rules: &RuleSetSpec,
    version: u64,
) -> Result<(), EngineError> {
    let saved = Saved {
        version,
        rules: rules.clone(),
    };
    engine.enqueue(RULES_QUEUE, message(&saved)).await.map(drop)
}

/// Writes `rules` to `path` atomically (temporary file, sync, rename).
pub fn save_to_file(path: &Path, rules: &RuleSetSpec) -> Result<(), String> {
    use std::io::Write;
    let is_json = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"));
    let text = if is_json {
        serde_json::to_string_pretty(rules).map_err(|e| e.to_string())?
    } else {
        serde_norway::to_string(rules).map_err(|e| e.to_string())?
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary).map_err(|e| e.to_string())?;
    file.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())?;
    std::fs::rename(&temporary, path).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_engine::{EngineOptions, MemoryStorage, SystemClock};

    use super::*;
    use crate::routing::rules::{self, RuleSet};

    #[tokio::test]
    async fn the_latest_saved_rules_survive_a_reload() {
        let engine = Engine::open(
            Box::new(MemoryStorage::new()),
            Arc::new(SystemClock),
            EngineOptions::default(),
        )
        .unwrap();
        assert!(load_from_engine(&engine).await.unwrap().is_none());
        let first = rules::parse(r#"[{"name": "one"}]"#).unwrap();
        let second = rules::parse(r#"[{"name": "two"}]"#).unwrap();
        save_to_engine(&engine, &second, 2).await.unwrap();
        save_to_engine(&engine, &first, 1).await.unwrap();
        let (loaded, version) = load_from_engine(&engine).await.unwrap().unwrap();
        assert_eq!((loaded.rules[0].name.as_str(), version), ("two", 2));
        // Compacted to one record, still readable.
        assert_eq!(engine.queue_stats(RULES_QUEUE).unwrap().ready, 1);
        let (again, _) = load_from_engine(&engine).await.unwrap().unwrap();
        assert_eq!(again, loaded);
    }

    #[test]
    fn a_saved_file_reads_back_the_same_rules() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["rules.json", "rules.yaml"] {
            let path = dir.path().join(name);
            let spec = rules::default_spec();
            save_to_file(&path, &spec).unwrap();
            let loaded = rules::load_file(&path).unwrap();
            assert_eq!(loaded.spec(), RuleSet::compile(spec).unwrap().spec());
        }
    }
}
