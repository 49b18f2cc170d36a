//! Which panes are agents. Two rules, as the original and its worktree layout suggest:
//! - a window named `agent-NAME` in the agents' session (`agent-hive` by default) is agent
//!   NAME (its active pane, or the pane working in NAME's worktree when there is one);
//! - a pane, in any session, whose working directory is inside a known worktree
//!   (`worktrees/NAME` or `new-worktrees/NAME` holding a `CLAUDE.md`) is agent NAME.
//!
//! Discovery itself ([`discover`]) is a pure function of the pane list, so the rules are unit
//! tested without tmux.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::target::{list_panes, PaneInfo};
use super::{Tmux, TmuxError};

/// The session the original put its agents in.
pub const AGENT_SESSION_DEFAULT: &str = "agent-hive";
/// Session name meaning "every session" for the window rule.
pub const ANY_SESSION: &str = "*";
/// Prefix of agent windows' names.
pub const AGENT_WINDOW_PREFIX: &str = "agent-";
/// Directories under the workdir whose subdirectories are agents' worktrees.
pub const WORKTREE_DIRS: [&str; 2] = ["worktrees", "new-worktrees"];
/// Most worktrees read from one workdir.
pub const WORKTREES_MAX: usize = 1000;

/// What discovery looks for.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryRules {
    /// Session whose `agent-NAME` windows are agents ([`ANY_SESSION`] for all).
    pub session: String,
    /// Known worktrees: agent name and canonical directory.
    pub worktrees: Vec<(String, PathBuf)>,
}

/// Why a pane was taken for an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// Its window is named `agent-NAME`.
    WindowName,
    /// It works inside the agent's worktree.
    Worktree,
}

/// One agent found in tmux.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredAgent {
    /// Agent name.
    pub name: String,
    /// Its pane.
    pub pane: PaneInfo,
    /// Which rule found it.
    pub found_by: FoundBy,
}

/// The agents found, by name, and what was noticed on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// One entry per agent, sorted by name.
    pub agents: Vec<DiscoveredAgent>,
    /// Panes skipped and why (dead, duplicates).
    pub warnings: Vec<String>,
}

/// The worktrees under `workdir`: each immediate subdirectory of `worktrees/` and
/// `new-worktrees/` holding a `CLAUDE.md`, named after the directory (canonical paths).
pub fn known_worktrees(workdir: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    for dir in WORKTREE_DIRS {
        let Ok(entries) = std::fs::read_dir(workdir.join(dir)) else {
            continue;
        };
        for entry in entries.flatten().take(WORKTREES_MAX) {
            let path = entry.path();
            if !path.join("CLAUDE.md").is_file() {
                continue;
            }
            let (Some(name), Ok(canonical)) = (
                path.file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_string),
                path.canonicalize(),
            ) else {
                continue;
            };
            found.push((name, canonical));
        }
    }
    found.sort();
    found.truncate(WORKTREES_MAX);
    found
}

/// Lists the server's panes and applies [`discover`].
pub async fn discover_live(tmux: &Tmux, rules: &DiscoveryRules) -> Result<Discovery, TmuxError> {
    let panes = list_panes(tmux).await?;
    Ok(discover(&panes, rules))
}

/// Applies the rules of the module doc to `panes`.
pub fn discover(panes: &[PaneInfo], rules: &DiscoveryRules) -> Discovery {
    let mut warnings = Vec::new();
    let mut by_name: BTreeMap<String, DiscoveredAgent> = BTreeMap::new();
    let mut ordered: Vec<&PaneInfo> = panes.iter().collect();
    ordered.sort_by_key(|p| (p.session.clone(), p.window_index, p.pane_index));
    // Window rule first: it is the original's convention and wins over the worktree rule.
    for pane in &ordered {
        let Some(name) = window_agent(pane, rules) else {
            continue;
        };
        if pane.dead {
            warnings.push(format!(
                "{} ({}) skipped: its pane is dead",
                name, pane.pane_id
            ));
            continue;
        }
        let in_worktree = worktree_agent(pane, rules).as_deref() == Some(name.as_str());
        let better = match by_name.get(&name) {
            None => true,
            Some(seen)
                if seen.pane.window_index != pane.window_index
                    || seen.pane.session != pane.session =>
            {
                warnings.push(format!(
                    "{name}: window {} also named agent-{name}; keeping {}",
                    pane.target(),
                    seen.pane.target()
                ));
                false
            }
            // Same window, several panes: the one in the worktree, else the active one.
            Some(seen) => {
                let seen_in_worktree =
                    worktree_agent(&seen.pane, rules).as_deref() == Some(name.as_str());
                !seen_in_worktree && (in_worktree || pane.active)
            }
        };
        if better {
            by_name.insert(name.clone(), agent(&name, pane, FoundBy::WindowName));
        }
    }
    for pane in &ordered {
        let Some(name) = worktree_agent(pane, rules) else {
            continue;
        };
        if pane.dead || window_agent(pane, rules).is_some() {
            continue;
        }
        match by_name.get(&name) {
            None => {
                by_name.insert(name.clone(), agent(&name, pane, FoundBy::Worktree));
            }
            Some(seen) if seen.pane.pane_id != pane.pane_id => warnings.push(format!(
                "{name}: pane {} ({}) also works in its worktree; keeping {}",
                pane.pane_id,
                pane.target(),
                seen.pane.pane_id
            )),
            Some(_) => {}
        }
    }
    Discovery {
        agents: by_name.into_values().collect(),
        warnings,
    }
}

fn agent(name: &str, pane: &PaneInfo, found_by: FoundBy) -> DiscoveredAgent {
    DiscoveredAgent {
        name: name.to_string(),
        pane: pane.clone(),
        found_by,
    }
}

fn window_agent(pane: &PaneInfo, rules: &DiscoveryRules) -> Option<String> {
    if rules.session != ANY_SESSION && pane.session != rules.session {
        return None;
    }
    let name = pane.window_name.strip_prefix(AGENT_WINDOW_PREFIX)?.trim();
    (!name.is_empty()).then(|| name.to_string())
}

fn worktree_agent(pane: &PaneInfo, rules: &DiscoveryRules) -> Option<String> {
    // The deepest worktree containing the path wins (worktrees may nest).
    rules
        .worktrees
        .iter()
        .filter(|(_, dir)| pane.current_path.starts_with(dir))
        .max_by_key(|(_, dir)| dir.components().count())
        .map(|(name, _)| name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pane(id: &str, session: &str, window: (u32, &str), index: u32, path: &str) -> PaneInfo {
        PaneInfo {
            pane_id: id.parse().unwrap(),
            session: session.into(),
            window_index: window.0,
            window_name: window.1.into(),
            pane_index: index,
            active: index == 0,
            window_active: true,
            dead: false,
            in_mode: false,
            cursor_x: 0,
            cursor_y: 0,
            current_command: "claude".into(),
            pid: 0,
            tty: String::new(),
            current_path: path.into(),
        }
    }

    fn rules() -> DiscoveryRules {
        DiscoveryRules {
            session: AGENT_SESSION_DEFAULT.into(),
            worktrees: vec![
                ("docs".into(), "/w/worktrees/docs".into()),
                ("qa".into(), "/w/worktrees/qa".into()),
            ],
        }
    }

    fn names(discovery: &Discovery) -> Vec<(String, String, FoundBy)> {
        discovery
            .agents
            .iter()
            .map(|a| (a.name.clone(), a.pane.pane_id.to_string(), a.found_by))
            .collect()
    }

    #[test]
    fn agent_windows_in_the_agent_session_are_agents() {
        let panes = vec![
            pane("%1", "agent-hive", (0, "agent-alice"), 0, "/tmp"),
            pane("%2", "other", (0, "agent-bob"), 0, "/tmp"),
            pane("%3", "agent-hive", (1, "editor"), 0, "/tmp"),
        ];
        let found = discover(&panes, &rules());
        assert_eq!(
            names(&found),
            vec![("alice".into(), "%1".into(), FoundBy::WindowName)]
        );
    }

    #[test]
    fn panes_inside_a_worktree_are_agents_in_any_session() {
        let panes = vec![
            pane("%4", "dev", (0, "shell"), 0, "/w/worktrees/qa/src"),
            pane("%5", "dev", (1, "shell"), 0, "/w/worktrees/qa"),
            pane("%6", "dev", (2, "shell"), 0, "/w/worktrees/docsx"),
        ];
        let found = discover(&panes, &rules());
        assert_eq!(
            names(&found),
            vec![("qa".into(), "%4".into(), FoundBy::Worktree)]
        );
        assert_eq!(found.warnings.len(), 1, "{:?}", found.warnings);
    }

    #[test]
    fn the_window_rule_wins_and_prefers_the_pane_in_the_worktree() {
        let panes = vec![
            pane("%7", "agent-hive", (0, "agent-docs"), 0, "/tmp"),
            pane(
                "%8",
                "agent-hive",
                (0, "agent-docs"),
                1,
                "/w/worktrees/docs",
            ),
            pane("%9", "dev", (0, "shell"), 0, "/w/worktrees/docs"),
        ];
        let found = discover(&panes, &rules());
        assert_eq!(
            names(&found),
            vec![("docs".into(), "%8".into(), FoundBy::WindowName)]
        );
    }

    #[test]
    fn dead_panes_are_skipped_with_a_warning() {
        let mut dead = pane("%1", "agent-hive", (0, "agent-alice"), 0, "/tmp");
        dead.dead = true;
        let found = discover(&[dead], &rules());
        assert!(found.agents.is_empty());
        assert!(found.warnings[0].contains("dead"));
    }
}
