//! Cleaning up stale agents without losing messages.
//!
//! An agent is stale when it has shown no sign of life for [`STALE_AGENT_AFTER`] (the
//! original's 10 minutes), has no socket open, and is not backed by a worktree that still
//! exists (a present worktree would only be rediscovered). A stale agent is removed from the
//! registry only when its inbox holds nothing at all (ready, delayed, leased or dead): an agent
//! with messages stays, so they remain reachable through it. Should a message arrive between
//! the check and the removal, the record is put back.

use std::time::Duration;

use crate::registry::{AgentRecord, Registry};
use crate::state::AppState;

/// No sign of life for this long makes an agent stale (as the original).
pub const STALE_AGENT_AFTER: Duration = Duration::from_secs(10 * 60);
/// Time between two stale sweeps.
pub const STALE_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Removes the stale agents that hold no messages; returns their names.
pub async fn remove_stale(state: &AppState) -> Vec<String> {
    let now = state.engine.now_ms();
    let stale_after_ms = STALE_AGENT_AFTER.as_millis() as u64;
    let mut removed = Vec::new();
    for view in state.registry.list() {
        let record = &view.record;
        let worktree_present = record.discovery.is_some() && !record.is_gone();
        let unseen = now.saturating_sub(view.last_seen) > stale_after_ms;
        if !unseen || worktree_present || state.sockets.is_connected(&record.id) {
            continue;
        }
        if holds_messages(state, record) {
            continue;
        }
        let Ok(taken) = state.registry.remove(&record.id).await else {
            continue;
        };
        if holds_messages(state, &taken) {
            // A message arrived meanwhile: keep the agent (same id) so it stays reachable.
            if let Err(error) = state.registry.restore(taken.clone()).await {
                tracing::error!(agent = %taken.name, id = %taken.id, %error, "could not restore an agent whose inbox got a message while it was removed; its inbox is kept in storage");
            }
            continue;
        }
        tracing::info!(agent = %taken.name, id = %taken.id, "stale agent removed (its inbox was empty)");
        removed.push(taken.name.clone());
    }
    removed
}

fn holds_messages(state: &AppState, record: &AgentRecord) -> bool {
    state
        .engine
        .queue_stats(&record.inbox())
        .is_some_and(|stats| stats.ready + stats.delayed + stats.leased + stats.dead > 0)
}

/// Runs [`remove_stale`] every [`STALE_SWEEP_INTERVAL`] until the server shuts down.
pub fn spawn_stale_cleanup(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut shutdown = state.shutdown.clone();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(STALE_SWEEP_INTERVAL) => {}
                _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => return,
            }
            remove_stale(&state).await;
        }
    })
}

impl Registry {
    /// Puts a removed record back under its id (offline), unless its name was taken meanwhile.
    async fn restore(&self, record: std::sync::Arc<AgentRecord>) -> crate::error::ApiResult<()> {
        let version = {
            let mut agents = self.agents.write();
            if agents.id_by_name.contains_key(&record.name) {
                return Ok(());
            }
            agents.version += 1;
            let version = agents.version;
            agents
                .id_by_name
                .insert(record.name.clone(), record.id.clone());
            agents.by_id.insert(
                record.id.clone(),
                crate::registry::Entry {
                    record: record.clone(),
                    version,
                    presence: crate::registry::Presence {
                        last_seen: self.engine.now_ms(),
                        reported: Some(crate::api::wire::AgentStatus::Offline),
                    },
                },
            );
            version
        };
        crate::registry::persist::put(&self.engine, version, &record).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchboard_engine::{Engine, EngineOptions, ManualClock, MemoryStorage, NewMessage};

    use super::*;
    use crate::api::wire::RegisterRequest;
    use crate::config::Settings;

    async fn state_at(clock: Arc<ManualClock>) -> AppState {
        let engine = Engine::open(
            Box::new(MemoryStorage::new()),
            clock,
            EngineOptions {
                tick_interval: None,
                ..EngineOptions::default()
            },
        )
        .unwrap();
        let registry = Registry::load(engine.clone()).await.unwrap();
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        AppState::new(engine, registry, Settings::default(), stopped)
    }

    fn register(name: &str) -> RegisterRequest {
        RegisterRequest {
            name: name.into(),
            capabilities: Vec::new(),
            endpoint: None,
            metadata: Default::default(),
        }
    }

    #[tokio::test]
    async fn stale_agents_go_only_when_their_inbox_is_empty() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let state = state_at(clock.clone()).await;
        state.registry.register(register("idle")).await.unwrap();
        let (busy, _) = state.registry.register(register("busy")).await.unwrap();
        state
            .engine
            .enqueue(&busy.inbox(), NewMessage::new("kept"))
            .await
            .unwrap();
        clock.advance_ms(STALE_AGENT_AFTER.as_millis() as u64 - 1);
        assert!(remove_stale(&state).await.is_empty(), "not stale yet");
        clock.advance_ms(2);
        assert_eq!(remove_stale(&state).await, ["idle"]);
        assert!(state.registry.resolve("idle").is_none());
        let kept = state
            .registry
            .resolve("busy")
            .expect("an agent with messages stays");
        assert_eq!(kept.id, busy.id);
    }
}
