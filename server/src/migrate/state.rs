//! Persisting the migration, so a server restart in the middle resumes it or rolls it back
//! cleanly (see [`super::settings::RestartPolicy`]).
//!
//! Where: *inside the engine*, in the reserved queue [`MIGRATION_QUEUE`], the way the registry
//! persists itself (`registry/persist.rs`), and not in a JSON file under `--workdir`. Why: the
//! state names registry agents and check messages that live in the engine; kept in the same
//! store, with the same durability on every backend, a restart sees the three agree (a file
//! could survive a storage that did not, or be lost with a storage that moved). The readable
//! copy for people is the report, `migration_report.json`, which is written as a file.
//!
//! How: each save enqueues the whole run as one snapshot with a higher version, then leases
//! what the queue holds, acks every older snapshot and keeps the newest leased (its lease is
//! renewed by the next save; one that runs out just makes it ready again). At start the queue
//! is leased whole and the highest version wins. A crash between the enqueue and the acks
//! leaves an older snapshot beside the newer one, which the version settles.
//!
//! Phase changes and agent moves are saved before the migration goes on; dual-mode records
//! are saved in the background at most every [`super::SAVE_DEBOUNCE`], so a `kill -9` may
//! lose the last few of those report lines but never a decision.

use serde::{Deserialize, Serialize};
use switchboard_engine::{
    Engine, EngineError, LeaseToken, MessageId, NewMessage, QueueConfig, BATCH_MESSAGES_MAX,
    LEASE_MS_MAX,
};
use tokio::sync::Mutex;

use super::model::MigrationRun;

/// The reserved engine queue holding the migration's snapshots. Queue names starting with `_`
/// are refused by the queue API.
pub const MIGRATION_QUEUE: &str = "_migration";

#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    version: u64,
    run: Option<MigrationRun>,
}

fn queue_config() -> QueueConfig {
    QueueConfig {
        max_size: 1_000_000,
        message_ttl_ms: 0,
        default_lease_ms: LEASE_MS_MAX,
        max_attempts: u32::MAX,
        dead_letters: false,
        dedup_window_ms: 0,
        ..QueueConfig::default()
    }
}

/// Saves and loads the run. Saves are serialized by an async mutex (held across the engine
/// calls on purpose: two saves must not interleave their acks).
pub struct StateStore {
    engine: Engine,
    /// The newest snapshot's version and lease, held between saves.
    held: Mutex<(u64, Option<(MessageId, LeaseToken)>)>,
}

impl StateStore {
    /// Loads the newest snapshot (compacting the queue to it).
    pub async fn load(engine: Engine) -> Result<(StateStore, Option<MigrationRun>), EngineError> {
        engine
            .configure_queue(MIGRATION_QUEUE, queue_config())
            .await?;
        let mut newest: Option<(u64, MessageId, LeaseToken, Option<MigrationRun>)> = None;
        let mut older: Vec<(MessageId, LeaseToken)> = Vec::new();
        loop {
            let deliveries = engine
                .lease(MIGRATION_QUEUE, BATCH_MESSAGES_MAX, Some(LEASE_MS_MAX))
                .await?;
            if deliveries.is_empty() {
                break;
            }
            for delivery in deliveries {
                let id = delivery.message.id;
                let snapshot: Snapshot = match serde_json::from_slice(&delivery.message.payload) {
                    Ok(snapshot) => snapshot,
                    Err(error) => {
                        tracing::error!(%id, %error, "unreadable migration snapshot dropped");
                        older.push((id, delivery.token));
                        continue;
                    }
                };
                match &newest {
                    Some((version, ..)) if *version >= snapshot.version => {
                        older.push((id, delivery.token))
                    }
                    _ => {
                        if let Some((_, old_id, old_token, _)) = newest.take() {
                            older.push((old_id, old_token));
                        }
                        newest = Some((snapshot.version, id, delivery.token, snapshot.run));
                    }
                }
            }
        }
        for chunk in older.chunks(BATCH_MESSAGES_MAX) {
            engine.ack_batch(chunk).await?;
        }
        let (held, run) = match newest {
            Some((version, id, token, run)) => ((version, Some((id, token))), run),
            None => ((0, None), None),
        };
        Ok((
            StateStore {
                engine,
                held: Mutex::new(held),
            },
            run,
        ))
    }

    /// Makes `run` the durable state.
    pub async fn save(&self, run: Option<&MigrationRun>) -> Result<(), EngineError> {
        let mut held = self.held.lock().await;
        let version = held.0 + 1;
        let payload = serde_json::to_vec(&SnapshotRef { version, run })
            .expect("a migration run always serializes");
        let message = NewMessage {
            payload,
            ttl_ms: Some(0),
            max_attempts: Some(u32::MAX),
            ..NewMessage::default()
        };
        let written = self.engine.enqueue(MIGRATION_QUEUE, message).await?.id;
        let mut newest = None;
        let mut older = Vec::new();
        if let Some(previous) = held.1.take() {
            older.push(previous);
        }
        let deliveries = self
            .engine
            .lease(MIGRATION_QUEUE, BATCH_MESSAGES_MAX, Some(LEASE_MS_MAX))
            .await?;
        for delivery in deliveries {
            if delivery.message.id == written {
                newest = Some((delivery.message.id, delivery.token));
            } else {
                older.push((delivery.message.id, delivery.token));
            }
        }
        // A previous lease may have run out and been replaced: its ack just fails.
        let _ = self.engine.ack_batch(&older).await?;
        *held = (version, newest);
        Ok(())
    }
}

/// [`Snapshot`] by reference, so saving does not clone the run.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u64,
    run: Option<&'a MigrationRun>,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_engine::{EngineOptions, MemoryStorage, SystemClock};

    use super::*;
    use crate::migrate::settings::{RunSettings, StartRequest};

    fn run(id: &str) -> MigrationRun {
        let settings = RunSettings::check(
            &StartRequest::default(),
            None,
            ".".into(),
            "http://x".into(),
        )
        .unwrap();
        MigrationRun::new(id.into(), settings, 1)
    }

    #[tokio::test]
    async fn the_newest_save_is_loaded_and_older_snapshots_are_gone() {
        let storage = MemoryStorage::new();
        let engine = Engine::open(
            Box::new(storage.clone()),
            Arc::new(SystemClock),
            EngineOptions::default(),
        )
        .unwrap();
        let (store, loaded) = StateStore::load(engine.clone()).await.unwrap();
        assert!(loaded.is_none());
        store.save(Some(&run("first"))).await.unwrap();
        store.save(Some(&run("second"))).await.unwrap();
        store.save(Some(&run("third"))).await.unwrap();
        let stats = engine.queue_stats(MIGRATION_QUEUE).unwrap();
        assert_eq!(stats.ready + stats.leased + stats.delayed, 1, "{stats:?}");
        engine.flush().await.unwrap();
        drop(store);
        drop(engine);
        let reopened = Engine::open(
            Box::new(storage),
            Arc::new(SystemClock),
            EngineOptions::default(),
        )
        .unwrap();
        let (_store, loaded) = StateStore::load(reopened).await.unwrap();
        assert_eq!(loaded.unwrap().id, "third");
    }
}
