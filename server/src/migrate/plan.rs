//! The plan: which agents discovery found, in which batch each moves, and what the cleanup
//! would move aside. `switchboard migrate --dry-run` prints it ([`Plan::render`]) and changes
//! nothing; a real run follows it. An agent whose pane runs a shell (or a program that is not
//! an agent) is listed with the refusal its pane deliveries would get.

use serde::{Deserialize, Serialize};

use super::cleanup;
use super::settings::RunSettings;
use super::tmux::discover::{
    discover_live, known_worktrees, DiscoveredAgent, DiscoveryRules, FoundBy,
};
use super::tmux::foreground::{judge_pane, Verdict};
use super::tmux::{PanePolicy, Tmux, TmuxError};
use crate::registry::validate_name;

/// One agent in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlannedAgent {
    /// Agent name.
    pub name: String,
    /// Its pane, `%N`.
    pub pane_id: String,
    /// `session:window.pane`.
    pub target: String,
    /// The pane's working directory.
    pub current_path: String,
    /// Which rule found it.
    #[schema(value_type = String)]
    pub found_by: FoundBy,
    /// Its batch (0-based).
    pub batch: usize,
    /// Why nothing would be typed into its pane (`pane runs a shell ...`), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pane_refusal: Option<String>,
}

/// What a run would do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plan {
    /// The tmux server looked at.
    pub tmux: String,
    /// Agents found, by name.
    pub agents: Vec<PlannedAgent>,
    /// Agent names per batch, in order.
    pub batches: Vec<Vec<String>>,
    /// Minutes of dual mode.
    pub dual_mode_minutes: f64,
    /// Seconds each agent has to acknowledge its check message.
    pub validation_timeout_seconds: u64,
    /// Helper scripts the cleanup would move aside.
    pub helper_scripts: Vec<String>,
    /// What discovery noticed (skipped panes, duplicates, unusable names).
    pub warnings: Vec<String>,
}

impl Plan {
    /// Discovers agents with `settings` and lays out the batches; `policy` says which panes
    /// may be typed into.
    pub async fn make(settings: &RunSettings, policy: &PanePolicy) -> Result<Plan, TmuxError> {
        let tmux = Tmux::new(settings.tmux_socket.clone());
        let rules = DiscoveryRules {
            session: settings.tmux_session.clone(),
            worktrees: known_worktrees(&settings.workdir),
        };
        let discovery = discover_live(&tmux, &rules).await?;
        let mut warnings = discovery.warnings;
        let usable: Vec<DiscoveredAgent> = discovery
            .agents
            .into_iter()
            .filter(|agent| match validate_name("agent name", &agent.name) {
                Ok(()) => true,
                Err(error) => {
                    warnings.push(format!("pane {} skipped: {error}", agent.pane.pane_id));
                    false
                }
            })
            .collect();
        let refusals = pane_refusals(&usable, policy).await;
        let mut agents: Vec<PlannedAgent> = Vec::with_capacity(usable.len());
        for (index, (agent, refusal)) in usable.iter().zip(refusals).enumerate() {
            if let Some(reason) = &refusal {
                warnings.push(format!(
                    "{} (pane {}): refused: {reason}; nothing is typed into it (dual-mode \
                     copies, instructions, notices) until an agent runs there",
                    agent.name, agent.pane.pane_id
                ));
            }
            agents.push(PlannedAgent {
                name: agent.name.clone(),
                pane_id: agent.pane.pane_id.to_string(),
                target: agent.pane.target(),
                current_path: agent.pane.current_path.display().to_string(),
                found_by: agent.found_by,
                batch: index / settings.batch_size,
                pane_refusal: refusal,
            });
        }
        let batches = agents
            .chunks(settings.batch_size)
            .map(|chunk| chunk.iter().map(|a| a.name.clone()).collect())
            .collect();
        let helper_scripts = if settings.skip_cleanup {
            Vec::new()
        } else {
            cleanup::find_scripts(settings)
                .iter()
                .map(|path| path.display().to_string())
                .collect()
        };
        Ok(Plan {
            tmux: tmux.describe(),
            agents,
            batches,
            dual_mode_minutes: settings.dual_mode_minutes,
            validation_timeout_seconds: settings.validation_timeout_seconds,
            helper_scripts,
            warnings,
        })
    }

    /// The plan as text for people.
    ///
    /// An agent whose pane would refuse deliveries has a `warning: refused: ...` line.
    pub fn render(&self) -> String {
        let mut out = format!(
            "Migration plan ({}): {} agent(s) in {} batch(es)\n",
            self.tmux,
            self.agents.len(),
            self.batches.len()
        );
        out.push_str("  1. discovery: register the agents below\n");
        for agent in &self.agents {
            out.push_str(&format!(
                "       {:<20} pane {:<5} {} ({})\n",
                agent.name,
                agent.pane_id,
                agent.target,
                match agent.found_by {
                    FoundBy::WindowName => "agent window",
                    FoundBy::Worktree => "in its worktree",
                }
            ));
            if let Some(reason) = &agent.pane_refusal {
                out.push_str(&format!("         warning: refused: {reason}\n"));
            }
        }
        out.push_str(&format!(
            "  2. dual mode: {} minute(s), every message also typed into the pane\n",
            self.dual_mode_minutes
        ));
        for (index, batch) in self.batches.iter().enumerate() {
            out.push_str(&format!(
                "  3. batch {}/{}: {}\n",
                index + 1,
                self.batches.len(),
                batch.join(", ")
            ));
        }
        out.push_str(&format!(
            "  4. validation: each migrated agent acknowledges a check message within {} s\n",
            self.validation_timeout_seconds
        ));
        if self.helper_scripts.is_empty() {
            out.push_str("  5. cleanup: no helper scripts to move aside\n");
        } else {
            out.push_str("  5. cleanup: move aside (not delete)\n");
            for script in &self.helper_scripts {
                out.push_str(&format!("       {script}\n"));
            }
        }
        for warning in &self.warnings {
            out.push_str(&format!("  note: {warning}\n"));
        }
        out
    }
}

/// For each agent, why its pane would refuse typed text (`None` when it would not).
async fn pane_refusals(agents: &[DiscoveredAgent], policy: &PanePolicy) -> Vec<Option<String>> {
    let panes: Vec<_> = agents.iter().map(|agent| agent.pane.clone()).collect();
    let policy = policy.clone();
    let judged = tokio::task::spawn_blocking(move || {
        panes
            .iter()
            .map(|pane| match judge_pane(pane, &policy) {
                Verdict::Agent { .. } => None,
                Verdict::Refused { reason } => Some(reason),
            })
            .collect::<Vec<_>>()
    })
    .await;
    judged.unwrap_or_else(|error| {
        let reason = format!("which program reads the pane could not be told: {error}");
        vec![Some(reason); agents.len()]
    })
}
