//! Agent discovery: worktrees holding a `CLAUDE.md` (or `AGENTS.md`) are agents, named after
//! their directory, with capabilities from the original's keyword table or from an explicit
//! declaration (see [`capabilities`]), each with its provenance.
//!
//! Where it looks: the immediate subdirectories of the worktree roots (default `worktrees/`
//! and `new-worktrees/` under `--workdir`) and the linked worktrees `git worktree list` reports
//! for `--workdir` ([`git`]). When: once before the server listens, then every
//! `--discovery-interval-seconds`, whenever a watched directory changes ([`watch`]), and on
//! demand (`POST /api/v1/agents/discover`, `switchboard discover`).
//!
//! What it changes (see `apply`): a found name that exists keeps its id (whether it was
//! discovered or registered over the API first) and gets the discovered capabilities beside
//! the declared ones; a new name is created *offline* (found is not running: routing only
//! picks agents that show up). An agent whose worktree disappeared is marked gone
//! (`discovery.gone_since`): it stays in the registry with its inbox, so nothing queued for it
//! is lost, routing stops choosing it, and it comes back with the same id when the worktree
//! does. `stale` removes agents nobody has seen for [`stale::STALE_AGENT_AFTER`] only once
//! they hold no messages.
//!
//! Layout: `scan` (file system), `front_matter` (declarations), [`capabilities`], [`git`],
//! [`watch`], `apply` (registry changes), `service` (scheduling and reports), `stale`.

mod apply;
mod args;
pub mod capabilities;
pub mod command;
mod front_matter;
pub mod git;
pub mod scan;
mod service;
pub mod stale;
pub mod watch;

use serde::{Deserialize, Serialize};
use switchboard_engine::UnixMillis;

use crate::api::wire::Metadata;
pub use args::DiscoveryArgs;
pub use capabilities::CapabilityOrigin;
pub use scan::FoundBy;
pub use service::{spawn, Discovery, DiscoveryConfig, DiscoveryReport};

/// Where discovery found an agent; kept (and persisted) in its registry record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discovered {
    /// The worktree directory.
    pub path: String,
    /// `CLAUDE.md` or `AGENTS.md`.
    pub agent_file: String,
    /// A worktree root's subdirectory or a git worktree.
    pub found_by: FoundBy,
    /// Discovered capabilities and where each came from.
    pub capabilities: Vec<CapabilityOrigin>,
    /// `role` of its declarations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `metadata` of its declarations.
    #[serde(default)]
    pub metadata: Metadata,
    /// Declarations that could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// When the worktree was first found missing; `None` while it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone_since: Option<UnixMillis>,
}

/// The capabilities an agent has: those declared over the API, then the discovered ones not
/// already among them (compared without case).
pub fn effective_capabilities(declared: &[String], discovered: Option<&Discovered>) -> Vec<String> {
    let mut capabilities: Vec<String> = declared.to_vec();
    for origin in discovered.map(|d| d.capabilities.as_slice()).unwrap_or(&[]) {
        if !capabilities
            .iter()
            .any(|have| have.eq_ignore_ascii_case(&origin.name))
        {
            capabilities.push(origin.name.clone());
        }
    }
    capabilities
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_capabilities_come_first_and_are_not_repeated() {
        let discovered = Discovered {
            path: "/w/tester".into(),
            agent_file: "CLAUDE.md".into(),
            found_by: FoundBy::WorktreeRoot,
            capabilities: capabilities::from_keywords("quality agent", "CLAUDE.md"),
            role: None,
            metadata: Metadata::new(),
            warnings: Vec::new(),
            gone_since: None,
        };
        let declared = vec!["Quality".to_string(), "review".to_string()];
        assert_eq!(
            effective_capabilities(&declared, Some(&discovered)),
            ["Quality", "review", "general"]
        );
        assert_eq!(effective_capabilities(&declared, None), declared);
    }
}
