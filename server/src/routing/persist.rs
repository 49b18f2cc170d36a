//! Where routing rules set over the API (`PUT /api/v1/routing/rules`) are kept.
//!
//! - With `--routing-rules FILE`: in that file. A PUT rewrites it (JSON for a `.json` name,
//!   YAML otherwise; written beside it and renamed over it, so a crash leaves the old or the
//!   new file, never half of one), and a restart loads it again: the file is the one source of
//!   truth, and an operator can read or edit it. Comments in a YAML file do not survive a PUT.
//! - Without a file: in the reserved engine queue [`RULES_QUEUE`], an
//!   [`EngineLog`] like the registry's: durable on every backend with the messages'
//!   guarantees, and moved with the storage. Each PUT adds the whole set with a version; start-up keeps the highest
//!   version and compacts the log to it. With neither, the defaults apply.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switchboard_engine::{Engine, EngineError};

use super::rules::RuleSetSpec;
use crate::durable::log::EngineLog;

/// The reserved engine queue holding rule sets set over the API when no file is configured.
pub const RULES_QUEUE: &str = "_routing_rules";

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
    let log = EngineLog::open(engine.clone(), RULES_QUEUE, 0).await?;
    let (saved, read) = log.replay::<Saved>().await?;
    let latest = saved.into_iter().max_by_key(|saved| saved.version);
    let kept: Vec<&Saved> = latest.iter().collect();
    log.compact(read, &kept).await?;
    Ok(latest.map(|saved| (saved.rules, saved.version)))
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
    EngineLog::opened(engine.clone(), RULES_QUEUE)
        .append(&[saved])
        .await
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
