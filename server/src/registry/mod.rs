//! The agent registry: unique names, stable ids, name-or-id resolution (an agent's own id
//! first, so no name can shadow an id; see [`names`] for the names an agent may take), and
//! presence.
//!
//! Records live in memory behind a `parking_lot::RwLock` that is never held across an `.await`;
//! every change is then made durable through [`persist`] before the caller is answered.
//! Presence (last seen, online/offline) is not persisted: after a restart an agent is offline
//! until it shows up again.
//!
//! Agents come from registrations over the API and from [`discovery`] (worktrees holding a
//! `CLAUDE.md`); both meet on the name, so one agent keeps one id whichever way it arrives.

pub mod discovery;
pub mod names;
mod persist;
mod register;

pub use names::reserved_name;

pub use register::TokenClaim;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use switchboard_engine::{Engine, EngineError, UnixMillis};
use tokio::sync::Notify;

use crate::api::wire::{AgentStatus, Metadata, RegisterRequest};
use crate::auth::TokenHash;
use crate::error::{ApiError, ApiResult};
use crate::limits;

/// What the registry keeps of an agent, and persists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Stable id (a UUID), kept on every re-registration of the name.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// What it can do.
    pub capabilities: Vec<String>,
    /// Where it listens, if anywhere.
    pub endpoint: Option<String>,
    /// Free-form object.
    pub metadata: Metadata,
    /// When the name was first registered.
    pub registered_at: UnixMillis,
    /// Capabilities last declared over the API, kept apart from the discovered ones so that a
    /// rescan can replace those without losing these. Only set once the agent was discovered
    /// (see [`AgentRecord::declared_capabilities`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_capabilities: Option<Vec<String>>,
    /// Where discovery found the agent, with the provenance of each discovered capability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Boxed: most agents are never discovered, and records are moved around a lot.
    pub discovery: Option<Box<discovery::Discovered>>,
    /// SHA-256 of the agent's token (hex), in `--auth token` mode: set when the name is first
    /// registered and when the admin re-issues it. Persisted with the record so tokens survive
    /// restarts on every backend; the token itself is never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
}

impl AgentRecord {
    /// The engine queue holding this agent's inbox. Keyed by id, so a rename never moves it.
    pub fn inbox(&self) -> String {
        inbox_queue(&self.id)
    }

    /// The capabilities declared over the API: all of them for an agent never discovered
    /// (records written before discovery existed included), none for an agent only discovered.
    pub fn declared_capabilities(&self) -> &[String] {
        match (&self.registered_capabilities, &self.discovery) {
            (Some(declared), _) => declared,
            (None, None) => &self.capabilities,
            (None, Some(_)) => &[],
        }
    }

    /// The stored token hash, if the agent has a token.
    pub fn token_hash(&self) -> Option<TokenHash> {
        self.token_sha256.as_deref().and_then(TokenHash::from_hex)
    }

    /// True when discovery found the agent and its worktree has since disappeared.
    pub fn is_gone(&self) -> bool {
        self.discovery
            .as_ref()
            .is_some_and(|found| found.gone_since.is_some())
    }
}

/// The engine queue holding the inbox of agent `id`.
pub fn inbox_queue(id: &str) -> String {
    format!("inbox:{id}")
}

/// Presence of one agent, kept in memory only.
#[derive(Debug, Clone, Copy)]
struct Presence {
    last_seen: UnixMillis,
    /// Set when the agent said so, or `Offline` when its socket closed; cleared by a heartbeat.
    reported: Option<AgentStatus>,
}

#[derive(Debug, Clone)]
struct Entry {
    record: Arc<AgentRecord>,
    version: u64,
    presence: Presence,
}

#[derive(Debug, Default)]
struct Agents {
    by_id: HashMap<String, Entry>,
    id_by_name: HashMap<String, String>,
    /// Agent id by token hash, to learn whose token a request presents.
    id_by_token: HashMap<TokenHash, String>,
    /// Last version handed out; versions order persisted changes (see [`persist`]).
    version: u64,
}

impl Agents {
    /// The id of the agent with id `key`, else of the agent named `key`. Ids go first: a record
    /// stored before names were checked may carry another agent's id as its name, and must not
    /// capture what is addressed to that agent.
    fn id_of(&self, key: &str) -> Option<String> {
        if self.by_id.contains_key(key) {
            return Some(key.to_string());
        }
        self.id_by_name.get(key).cloned()
    }

    /// Adds a new agent under its id, its name and (if it has one) its token hash.
    fn index(&mut self, record: Arc<AgentRecord>, version: u64, presence: Presence) {
        self.id_by_name
            .insert(record.name.clone(), record.id.clone());
        if let Some(hash) = record.token_hash() {
            self.id_by_token.insert(hash, record.id.clone());
        }
        self.by_id.insert(
            record.id.clone(),
            Entry {
                record,
                version,
                presence,
            },
        );
    }
}

/// An agent as seen now: its record and its presence.
#[derive(Debug, Clone)]
pub struct AgentView {
    /// The record.
    pub record: Arc<AgentRecord>,
    /// Last heartbeat, registration or socket activity.
    pub last_seen: UnixMillis,
    /// Presence, not counting an open socket (the caller knows about sockets).
    pub status: AgentStatus,
}

/// The registry. Cheap to share behind an `Arc`.
pub struct Registry {
    engine: Engine,
    agents: RwLock<Agents>,
    /// Notified when an agent comes online or (re-)registers, so that messages waiting for a
    /// capability are handed over at once (see `routing::waiting`).
    arrivals: Notify,
}

impl Registry {
    /// Loads the registry persisted in `engine` (compacting its log).
    pub async fn load(engine: Engine) -> Result<Registry, EngineError> {
        let (records, version) = persist::load(&engine).await?;
        let now = engine.now_ms();
        let mut agents = Agents {
            version,
            ..Agents::default()
        };
        for (version, record) in records {
            let presence = Presence {
                last_seen: now,
                reported: Some(AgentStatus::Offline),
            };
            agents.index(Arc::new(record), version, presence);
        }
        Ok(Registry {
            engine,
            agents: RwLock::new(agents),
            arrivals: Notify::new(),
        })
    }

    /// Notified (one stored permit) whenever an agent comes online or registers.
    pub fn arrivals(&self) -> &Notify {
        &self.arrivals
    }

    /// The agent whose current token has hash `hash`. The index finds the candidate; the
    /// stored hash is then compared in constant time.
    pub fn agent_by_token(&self, hash: &TokenHash) -> Option<Arc<AgentRecord>> {
        let agents = self.agents.read();
        let id = agents.id_by_token.get(hash)?;
        let record = &agents.by_id.get(id)?.record;
        record
            .token_hash()
            .is_some_and(|stored| stored.matches(hash))
            .then(|| record.clone())
    }

    /// The agent whose id is `key`, else the agent named `key`. (The original looked names up
    /// first; as names may not look like ids, the order only matters for records stored
    /// before that was checked, where the id must win.)
    pub fn resolve(&self, key: &str) -> Option<Arc<AgentRecord>> {
        let agents = self.agents.read();
        let id = agents.id_of(key)?;
        agents.by_id.get(&id).map(|entry| entry.record.clone())
    }

    /// Like [`Registry::resolve`], as a 404 naming `key` when there is no such agent.
    pub fn require(&self, key: &str) -> ApiResult<Arc<AgentRecord>> {
        self.resolve(key)
            .ok_or_else(|| ApiError::NotFound(format!("Agent not found: {key}")))
    }

    /// Records a sign of life; `reported` overrides the computed status until the next one.
    /// Returns true when the agent was not online before and is now (it *arrived*).
    pub fn touch(&self, id: &str, reported: Option<AgentStatus>) -> bool {
        let now = self.engine.now_ms();
        let arrived = match self.agents.write().by_id.get_mut(id) {
            Some(entry) => {
                let was_online = view(entry, now).status == AgentStatus::Online;
                entry.presence = Presence {
                    last_seen: now,
                    reported,
                };
                !was_online && view(entry, now).status == AgentStatus::Online
            }
            None => false,
        };
        if arrived {
            self.arrivals.notify_one();
        }
        arrived
    }

    /// Removes the agent named (or with id) `key`; its inbox stays in the engine.
    pub async fn remove(&self, key: &str) -> ApiResult<Arc<AgentRecord>> {
        let (record, version) = {
            let mut agents = self.agents.write();
            let Some(entry) = agents.id_of(key).and_then(|id| agents.by_id.remove(&id)) else {
                return Err(ApiError::NotFound(format!("Agent not found: {key}")));
            };
            agents.id_by_name.remove(&entry.record.name);
            if let Some(hash) = entry.record.token_hash() {
                agents.id_by_token.remove(&hash);
            }
            agents.version += 1;
            (entry.record, agents.version)
        };
        persist::delete(&self.engine, version, &record.id).await?;
        Ok(record)
    }

    /// One agent's view.
    pub fn view(&self, id: &str) -> Option<AgentView> {
        let now = self.engine.now_ms();
        self.agents
            .read()
            .by_id
            .get(id)
            .map(|entry| view(entry, now))
    }

    /// Every agent's view, by name.
    pub fn list(&self) -> Vec<AgentView> {
        let now = self.engine.now_ms();
        let agents = self.agents.read();
        let mut views: Vec<AgentView> = agents.by_id.values().map(|e| view(e, now)).collect();
        views.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        views
    }

    /// The capabilities registered agents have, in lower case, not counting agents whose
    /// worktree is gone (routing never picks those).
    pub fn capabilities(&self) -> std::collections::BTreeSet<String> {
        self.agents
            .read()
            .by_id
            .values()
            .filter(|entry| !entry.record.is_gone())
            .flat_map(|entry| entry.record.capabilities.iter())
            .map(|capability| capability.to_lowercase())
            .collect()
    }

    /// Agents per capability.
    pub fn capability_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for entry in self.agents.read().by_id.values() {
            for capability in &entry.record.capabilities {
                *counts.entry(capability.clone()).or_insert(0) += 1;
            }
        }
        counts
    }
}

fn view(entry: &Entry, now: UnixMillis) -> AgentView {
    let fresh =
        now.saturating_sub(entry.presence.last_seen) <= limits::PRESENCE_WINDOW.as_millis() as u64;
    let status = match entry.presence.reported {
        Some(status) => status,
        None if fresh => AgentStatus::Online,
        None => AgentStatus::Offline,
    };
    AgentView {
        record: entry.record.clone(),
        last_seen: entry.presence.last_seen,
        status,
    }
}

fn validate_registration(request: &RegisterRequest) -> ApiResult<()> {
    validate_name("name", &request.name)?;
    if let Some(refusal) = names::refusal(&request.name) {
        return Err(ApiError::invalid(refusal));
    }
    if request.capabilities.len() > limits::CAPABILITIES_MAX {
        return Err(ApiError::invalid(format!(
            "capabilities: at most {} allowed",
            limits::CAPABILITIES_MAX
        )));
    }
    if request.capabilities.iter().any(|c| c.trim().is_empty()) {
        return Err(ApiError::invalid(
            "capabilities must not contain empty strings",
        ));
    }
    Ok(())
}

/// Checks an agent, sender or recipient name: not empty, not too long, no control characters.
pub fn validate_name(field: &str, value: &str) -> ApiResult<()> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid(format!("{field} must not be empty")));
    }
    if value.len() > limits::NAME_BYTES_MAX {
        return Err(ApiError::invalid(format!(
            "{field} is {} bytes, the limit is {}",
            value.len(),
            limits::NAME_BYTES_MAX
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
