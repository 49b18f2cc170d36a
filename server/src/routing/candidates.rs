//! Who may receive a routed message: agents that are online (a heartbeat within 5 minutes or
//! a socket open), whose worktree is not gone, and that match the target.

use super::strategy::Candidate;
use crate::api::wire::AgentStatus;
use crate::state::AppState;

/// What a routing decision aims at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Agents with this capability (lower case; compared without case).
    pub capability: Option<String>,
    /// These agents, by name or id.
    pub agents: Vec<String>,
    /// Any agent (a catch-all rule, or `capability:*`).
    pub any: bool,
}

impl Target {
    /// The key of round-robin turns and least-loaded ties: the capability, else `*` for any
    /// agent, else the rule's name.
    pub fn turn_key(&self, rule: Option<&str>) -> String {
        match (&self.capability, self.any) {
            (Some(capability), _) => capability.clone(),
            (None, true) => "*".into(),
            (None, false) => format!("rule:{}", rule.unwrap_or_default()),
        }
    }
}

/// The candidates for `target`, ordered by name, with their inbox load.
pub fn candidates(state: &AppState, target: &Target) -> Vec<Candidate> {
    state
        .registry
        .list()
        .into_iter()
        .filter(|view| {
            let record = &view.record;
            let online =
                view.status == AgentStatus::Online || state.sockets.is_connected(&record.id);
            online
                && !record.is_gone()
                && matches(target, &record.id, &record.name, &record.capabilities)
        })
        .map(|view| {
            let stats = state.engine.queue_stats(&view.record.inbox());
            Candidate {
                id: view.record.id.clone(),
                name: view.record.name.clone(),
                leased: stats.as_ref().map_or(0, |s| s.leased),
                queued: stats.as_ref().map_or(0, |s| s.ready + s.delayed),
            }
        })
        .collect()
}

fn matches(target: &Target, id: &str, name: &str, capabilities: &[String]) -> bool {
    target.any
        || target
            .capability
            .as_ref()
            .is_some_and(|wanted| capabilities.iter().any(|c| c.eq_ignore_ascii_case(wanted)))
        || target
            .agents
            .iter()
            .any(|agent| agent == name || agent == id)
}
