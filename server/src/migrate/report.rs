//! The migration report: `migration_report.json` (written into the workdir when a run ends,
//! and by `switchboard migrate` where it is asked to) and a readable summary for stdout.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::model::{
    AgentStage, CheckResult, CheckRound, CleanupRecord, DualModeTally, MigrationRun,
};
use super::settings::RunSettings;
use super::tmux::DeliveryOutcome;
use crate::state::AppState;
use crate::time::iso8601;

/// File name of the report.
pub const REPORT_FILE: &str = "migration_report.json";

/// An agent as discovered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveredEntry {
    /// Name.
    pub name: String,
    /// `%N`.
    pub pane_id: String,
    /// `session:window.pane`.
    pub target: String,
    /// Working directory.
    pub current_path: String,
}

/// An agent back on tmux delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolledBackEntry {
    /// Name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// Dual-mode deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DualModeSection {
    /// Counts by outcome.
    #[serde(flatten)]
    pub tally: DualModeTally,
    /// The latest deliveries, each with its outcome.
    pub messages: Vec<DualModeRecordEntry>,
}

/// One dual-mode delivery, with a readable time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DualModeRecordEntry {
    /// When the pane copy finished, ISO-8601.
    pub at: String,
    /// Sender.
    pub sender: String,
    /// Recipient agent.
    pub recipient: String,
    /// The queue copy's id.
    pub message_id: String,
    /// The first characters of the text.
    pub preview: String,
    /// How the pane copy went.
    pub pane: DeliveryOutcome,
}

/// One validation, with a readable time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationEntry {
    /// Agent name.
    pub agent: String,
    /// Which round.
    pub round: CheckRound,
    /// The check message.
    pub message_id: Option<String>,
    /// When it ended, ISO-8601.
    pub at: String,
    /// How.
    #[serde(flatten)]
    pub result: CheckResult,
}

/// Text not typed into a pane because of the program reading it, with a readable time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusedEntry {
    /// When, ISO-8601.
    pub at: String,
    /// The agent whose pane it is.
    pub agent: String,
    /// The pane, `%N`.
    pub pane: String,
    /// What it was (`dual-mode copy of message ID`, `instructions`, `rollback notice`).
    pub what: String,
    /// Why, starting with `pane runs ...`.
    pub reason: String,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Run id.
    pub migration_id: String,
    /// `completed`, `rolled_back`, `failed`, or the phase it is still in.
    pub outcome: String,
    /// Why it was rolled back or failed.
    pub rollback_reason: Option<String>,
    /// Start, ISO-8601.
    pub started_at: String,
    /// End, ISO-8601 (none while it runs).
    pub ended_at: Option<String>,
    /// How it was asked to run.
    pub settings: RunSettings,
    /// Every agent discovery found.
    pub agents_discovered: Vec<DiscoveredEntry>,
    /// Agents on the queue.
    pub migrated: Vec<String>,
    /// Agents on tmux delivery, with reasons.
    pub rolled_back: Vec<RolledBackEntry>,
    /// Agents neither migrated nor rolled back (a run that has not ended).
    pub pending: Vec<String>,
    /// Messages typed into panes.
    pub dual_mode: DualModeSection,
    /// Every check and how it ended.
    pub validation: Vec<ValidationEntry>,
    /// Helper scripts moved aside.
    pub cleanup: Vec<CleanupRecord>,
    /// Texts not typed into panes because a shell (or a program that is not an agent) reads
    /// them: the latest ones, oldest first.
    #[serde(default)]
    pub refused_deliveries: Vec<RefusedEntry>,
    /// What discovery noticed.
    pub discovery_warnings: Vec<String>,
    /// Times the server restarted and resumed the run.
    pub resumed: u32,
}

impl Report {
    /// The report of `run`.
    pub fn of(run: &MigrationRun) -> Report {
        let mut migrated = Vec::new();
        let mut rolled_back = Vec::new();
        let mut pending = Vec::new();
        for agent in &run.agents {
            match &agent.stage {
                AgentStage::Migrated { .. } => migrated.push(agent.name.clone()),
                AgentStage::RolledBack { reason, .. } => rolled_back.push(RolledBackEntry {
                    name: agent.name.clone(),
                    reason: reason.clone(),
                }),
                AgentStage::Pending | AgentStage::Validating => pending.push(agent.name.clone()),
            }
        }
        Report {
            migration_id: run.id.clone(),
            outcome: run.phase.name().to_string(),
            rollback_reason: run.rollback_reason.clone(),
            started_at: iso8601(run.started_at),
            ended_at: run.ended_at.map(iso8601),
            settings: run.settings.clone(),
            agents_discovered: run
                .agents
                .iter()
                .map(|a| DiscoveredEntry {
                    name: a.name.clone(),
                    pane_id: a.pane_id.to_string(),
                    target: a.target.clone(),
                    current_path: a.current_path.clone(),
                })
                .collect(),
            migrated,
            rolled_back,
            pending,
            dual_mode: DualModeSection {
                tally: run.dual_mode.tally.clone(),
                messages: run
                    .dual_mode
                    .recent
                    .iter()
                    .map(|record| DualModeRecordEntry {
                        at: iso8601(record.at),
                        sender: record.sender.clone(),
                        recipient: record.recipient.clone(),
                        message_id: record.message_id.clone(),
                        preview: record.preview.clone(),
                        pane: record.pane.clone(),
                    })
                    .collect(),
            },
            validation: run
                .validations
                .iter()
                .map(|record| ValidationEntry {
                    agent: record.agent.clone(),
                    round: record.round,
                    message_id: record.message_id.clone(),
                    at: iso8601(record.at),
                    result: record.result.clone(),
                })
                .collect(),
            cleanup: run.cleanup.clone(),
            refused_deliveries: run
                .refused
                .iter()
                .map(|record| RefusedEntry {
                    at: iso8601(record.at),
                    agent: record.agent.clone(),
                    pane: record.pane.to_string(),
                    what: record.what.clone(),
                    reason: record.reason.clone(),
                })
                .collect(),
            discovery_warnings: run.discovery_warnings.clone(),
            resumed: run.resumed,
        }
    }

    /// The readable summary.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "Migration {}: {}\n  started {}, ended {}\n",
            self.migration_id,
            self.outcome,
            self.started_at,
            self.ended_at.as_deref().unwrap_or("(still running)")
        );
        if let Some(reason) = &self.rollback_reason {
            out.push_str(&format!("  reason: {reason}\n"));
        }
        out.push_str(&format!(
            "  agents discovered: {}\n  migrated ({}): {}\n",
            self.agents_discovered.len(),
            self.migrated.len(),
            list_or_none(&self.migrated)
        ));
        out.push_str(&format!("  rolled back ({}):", self.rolled_back.len()));
        if self.rolled_back.is_empty() {
            out.push_str(" none\n");
        } else {
            out.push('\n');
            for entry in &self.rolled_back {
                out.push_str(&format!("    {}: {}\n", entry.name, entry.reason));
            }
        }
        if !self.pending.is_empty() {
            out.push_str(&format!("  not moved yet: {}\n", self.pending.join(", ")));
        }
        let tally = &self.dual_mode.tally;
        out.push_str(&format!(
            "  dual-mode messages: {} (delivered {}, unconfirmed {}, failed {}, refused {})\n",
            tally.sent, tally.delivered, tally.unconfirmed, tally.failed, tally.refused
        ));
        if !self.refused_deliveries.is_empty() {
            out.push_str(&format!(
                "  not typed into panes ({}):\n",
                self.refused_deliveries.len()
            ));
            for entry in &self.refused_deliveries {
                out.push_str(&format!(
                    "    {} (pane {}) {}: refused: {}\n",
                    entry.agent, entry.pane, entry.what, entry.reason
                ));
            }
        }
        let passed = self
            .validation
            .iter()
            .filter(|v| matches!(v.result, CheckResult::Acknowledged { .. }))
            .count();
        out.push_str(&format!(
            "  validation checks: {} passed, {} failed\n",
            passed,
            self.validation.len() - passed
        ));
        if self.cleanup.is_empty() {
            out.push_str("  helper scripts moved aside: none\n");
        } else {
            out.push_str("  helper scripts moved aside:\n");
            for record in &self.cleanup {
                out.push_str(&format!(
                    "    {} -> {}{}\n",
                    record.original,
                    record.moved_to,
                    if record.shim { " (shim installed)" } else { "" }
                ));
            }
        }
        out
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Writes `report` to `path` atomically (a temporary file renamed over it).
pub fn write(report: &Report, path: &Path) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(report).expect("a report always serializes");
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, json)?;
    std::fs::rename(&temporary, path)
}

/// Writes the current run's report into its workdir, and logs the summary. Called when a run
/// reaches a final phase.
pub async fn finish(state: &AppState) {
    let Some(run) = state.migration.snapshot() else {
        return;
    };
    let report = Report::of(&run);
    let path = run.settings.workdir.join(REPORT_FILE);
    let written = tokio::task::spawn_blocking({
        let report = report.clone();
        let path = path.clone();
        move || write(&report, &path)
    })
    .await;
    match written {
        Ok(Ok(())) => tracing::info!(path = %path.display(), "migration report written"),
        Ok(Err(error)) => {
            tracing::error!(path = %path.display(), %error, "cannot write the migration report")
        }
        Err(error) => tracing::error!(%error, "writing the migration report panicked"),
    }
    tracing::info!("{}", report.summary());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::model::{
        AgentMigration, DualModeRecord, RefusedDelivery, ValidationRecord,
    };
    use crate::migrate::settings::StartRequest;
    use crate::migrate::tmux::discover::FoundBy;

    fn run() -> MigrationRun {
        let settings = RunSettings::check(
            &StartRequest::default(),
            None,
            ".".into(),
            "http://x".into(),
        )
        .unwrap();
        let mut run = MigrationRun::new("run-1".into(), settings, 1_000);
        for (name, stage) in [
            ("alpha", AgentStage::Migrated { at: 2_000 }),
            (
                "gamma",
                AgentStage::RolledBack {
                    reason: "no ack".into(),
                    at: 3_000,
                },
            ),
        ] {
            run.agents.push(AgentMigration {
                name: name.into(),
                agent_id: format!("id-{name}"),
                pane_id: "%1".parse().unwrap(),
                target: "agent-hive:agent-x.0".into(),
                session: "agent-hive".into(),
                window: format!("agent-{name}"),
                current_path: "/tmp".into(),
                found_by: FoundBy::WindowName,
                batch: 0,
                stage,
                check: None,
                final_checked: false,
            });
        }
        run.dual_mode.push(DualModeRecord {
            at: 1_500,
            sender: "lead".into(),
            recipient: "alpha".into(),
            message_id: "m1".into(),
            preview: "hi".into(),
            pane: DeliveryOutcome::Delivered,
        });
        run.refused(RefusedDelivery {
            at: 2_500,
            agent: "gamma".into(),
            pane: "%1".parse().unwrap(),
            what: "instructions".into(),
            reason: "pane runs a shell (bash)".into(),
        });
        run.validations.push(ValidationRecord {
            agent: "alpha".into(),
            round: CheckRound::Batch,
            message_id: Some("m2".into()),
            at: 2_000,
            result: CheckResult::Acknowledged { seconds: 0.5 },
        });
        run
    }

    #[test]
    fn the_report_reads_back_as_written() {
        let report = Report::of(&run());
        let json = serde_json::to_string(&report).unwrap();
        let read: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(read, report);
        assert_eq!(read.migrated, vec!["alpha"]);
        assert_eq!(read.rolled_back[0].reason, "no ack");
        assert_eq!(read.dual_mode.tally.delivered, 1);
    }

    #[test]
    fn the_summary_names_rolled_back_agents_with_their_reasons() {
        let summary = Report::of(&run()).summary();
        assert!(summary.contains("migrated (1): alpha"), "{summary}");
        assert!(summary.contains("gamma: no ack"), "{summary}");
        assert!(
            summary.contains("dual-mode messages: 1 (delivered 1"),
            "{summary}"
        );
        assert!(summary.contains("1 passed, 0 failed"), "{summary}");
        assert!(
            summary.contains(
                "not typed into panes (1):\n    gamma (pane %1) instructions: refused: pane runs \
                 a shell (bash)"
            ),
            "{summary}"
        );
    }
}
