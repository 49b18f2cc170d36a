//! Applying a scan to the registry: found agents are created or updated by name (so ids stay
//! stable), vanished ones are marked gone, and only records that changed are persisted, so a
//! rescan that finds nothing new writes nothing.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::future::try_join_all;
use serde::Serialize;
use utoipa::ToSchema;

use super::scan::Found;
use super::{effective_capabilities, Discovered};
use crate::api::wire::AgentStatus;
use crate::error::{ApiError, ApiResult};
use crate::limits;
use crate::registry::{persist, AgentRecord, Entry, Presence, Registry};

/// What a scan did to one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentChange {
    /// First seen now: a new id.
    Created,
    /// Known already; its discovered facts changed.
    Updated,
    /// Known already; nothing changed.
    Unchanged,
    /// Its worktree was gone and is back.
    Returned,
    /// Its worktree disappeared now.
    Gone,
}

/// The agents a scan touched.
#[derive(Debug, Default)]
pub struct Applied {
    /// Each found or newly gone agent, with what happened to it.
    pub agents: Vec<(Arc<AgentRecord>, AgentChange)>,
}

impl Registry {
    /// Makes the registry agree with `found`, the complete result of a scan.
    pub(super) async fn apply_scan(&self, found: &[Found]) -> ApiResult<Applied> {
        let now = self.engine.now_ms();
        let mut applied = Applied::default();
        let mut to_persist: Vec<(u64, Arc<AgentRecord>)> = Vec::new();
        {
            let mut agents = self.agents.write();
            for agent in found {
                let discovered = Discovered {
                    path: agent.path.display().to_string(),
                    agent_file: agent.agent_file.clone(),
                    found_by: agent.found_by,
                    capabilities: agent.capabilities.clone(),
                    role: agent.role.clone(),
                    metadata: agent.metadata.clone(),
                    warnings: agent.warnings.clone(),
                    gone_since: None,
                };
                let existing = agents.id_by_name.get(&agent.name).cloned();
                if existing.is_none() && agents.by_id.len() >= limits::AGENTS_MAX {
                    return Err(ApiError::invalid(format!(
                        "the registry holds its limit of {} agents; {} was not added",
                        limits::AGENTS_MAX,
                        agent.name
                    )));
                }
                agents.version += 1;
                let version = agents.version;
                match existing.and_then(|id| agents.by_id.get_mut(&id)) {
                    Some(entry) => {
                        let old = &entry.record;
                        let change = if old.is_gone() {
                            AgentChange::Returned
                        } else {
                            AgentChange::Updated
                        };
                        let updated = rediscovered(old, discovered);
                        if updated == **old {
                            applied.agents.push((old.clone(), AgentChange::Unchanged));
                            continue;
                        }
                        entry.record = Arc::new(updated);
                        entry.version = version;
                        to_persist.push((version, entry.record.clone()));
                        applied.agents.push((entry.record.clone(), change));
                    }
                    None => {
                        let record = Arc::new(AgentRecord {
                            id: uuid::Uuid::new_v4().to_string(),
                            name: agent.name.clone(),
                            capabilities: effective_capabilities(&[], Some(&discovered)),
                            endpoint: None,
                            metadata: discovered.metadata.clone(),
                            registered_at: now,
                            registered_capabilities: None,
                            discovery: Some(Box::new(discovered)),
                            token_sha256: None,
                        });
                        agents
                            .id_by_name
                            .insert(record.name.clone(), record.id.clone());
                        agents.by_id.insert(
                            record.id.clone(),
                            Entry {
                                record: record.clone(),
                                version,
                                // Found is not running: offline until it shows up.
                                presence: Presence {
                                    last_seen: now,
                                    reported: Some(AgentStatus::Offline),
                                },
                            },
                        );
                        to_persist.push((version, record.clone()));
                        applied.agents.push((record, AgentChange::Created));
                    }
                }
            }
            let found_names: HashSet<&str> = found.iter().map(|f| f.name.as_str()).collect();
            let mut version = agents.version;
            for entry in agents.by_id.values_mut() {
                let vanished = entry.record.discovery.is_some()
                    && !entry.record.is_gone()
                    && !found_names.contains(entry.record.name.as_str());
                if !vanished {
                    continue;
                }
                let mut record = (*entry.record).clone();
                if let Some(discovered) = record.discovery.as_mut() {
                    discovered.gone_since = Some(now);
                }
                version += 1;
                entry.record = Arc::new(record);
                entry.version = version;
                to_persist.push((version, entry.record.clone()));
                applied
                    .agents
                    .push((entry.record.clone(), AgentChange::Gone));
            }
            agents.version = version;
        }
        // Concurrent puts share group commits.
        try_join_all(
            to_persist
                .iter()
                .map(|(version, record)| persist::put(&self.engine, *version, record)),
        )
        .await?;
        Ok(applied)
    }
}

/// `old` with freshly `discovered` facts: the declared capabilities are kept beside the new
/// discovered ones; metadata follows the files only while the agent never registered itself.
fn rediscovered(old: &AgentRecord, discovered: Discovered) -> AgentRecord {
    let declared = old.declared_capabilities().to_vec();
    let never_registered = old.discovery.is_some() && old.registered_capabilities.is_none();
    AgentRecord {
        capabilities: effective_capabilities(&declared, Some(&discovered)),
        registered_capabilities: (!never_registered).then_some(declared),
        metadata: if never_registered {
            discovered.metadata.clone()
        } else {
            old.metadata.clone()
        },
        discovery: Some(Box::new(discovered)),
        ..old.clone()
    }
}
