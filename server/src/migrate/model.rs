//! What a migration run is made of: phases, each agent's stage, the records the report is
//! built from. All of it is serialized as one snapshot by `migrate::state`, and shown as is
//! by `GET /api/v1/migration/status`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use switchboard_engine::UnixMillis;

use super::settings::RunSettings;
use super::tmux::discover::FoundBy;
use super::tmux::{DeliveryOutcome, PaneId};

/// Most dual-mode deliveries kept one by one in a run (older ones only count in the tally).
pub const DUAL_MODE_RECORDS_MAX: usize = 500;
/// Most progress events kept in a run (older ones are dropped; their numbers stay unique).
pub const EVENTS_MAX: usize = 500;
/// Most refused pane deliveries kept one by one in a run.
pub const REFUSED_RECORDS_MAX: usize = 500;
/// Most characters of a message kept in a dual-mode record.
pub const PREVIEW_CHARS_MAX: usize = 120;

/// The phases, in order; the last three are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Finding agents in tmux and registering them.
    Discovery,
    /// Every message goes to the queue and into the pane, for the configured time.
    DualMode,
    /// Agents are told how to use the queue and validated, a batch at a time.
    Batches,
    /// A last check that every migrated agent still acknowledges.
    Validation,
    /// Old helper scripts moved aside.
    Cleanup,
    /// Done; migrated agents use the queue, rolled-back ones tmux.
    Completed,
    /// The whole migration was rolled back; every agent uses tmux delivery again.
    RolledBack,
    /// It could not run (e.g. no tmux server); nothing changed for the agents.
    Failed,
}

impl Phase {
    /// True for `completed`, `rolled_back` and `failed`.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Completed | Phase::RolledBack | Phase::Failed)
    }

    /// Step number (1 to [`Phase::STEPS`]) of a working phase.
    pub fn step(self) -> Option<usize> {
        match self {
            Phase::Discovery => Some(1),
            Phase::DualMode => Some(2),
            Phase::Batches => Some(3),
            Phase::Validation => Some(4),
            Phase::Cleanup => Some(5),
            _ => None,
        }
    }

    /// Working phases.
    pub const STEPS: usize = 5;

    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Discovery => "discovery",
            Phase::DualMode => "dual_mode",
            Phase::Batches => "batches",
            Phase::Validation => "validation",
            Phase::Cleanup => "cleanup",
            Phase::Completed => "completed",
            Phase::RolledBack => "rolled_back",
            Phase::Failed => "failed",
        }
    }
}

/// Where one agent is in its move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum AgentStage {
    /// Not moved yet: messages go to the queue and, in dual mode, into its pane.
    Pending,
    /// Told how to use the queue; its check message must be acknowledged. Dual mode goes on
    /// until it is.
    Validating,
    /// On the queue only.
    Migrated {
        /// When it passed validation.
        at: UnixMillis,
    },
    /// Back on tmux delivery: messages go to the queue and into its pane.
    RolledBack {
        /// Why.
        reason: String,
        /// When.
        at: UnixMillis,
    },
}

/// Which validation a check message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckRound {
    /// The check of the agent's batch.
    Batch,
    /// The last check of every migrated agent (validation phase).
    Final,
}

/// A check message waiting for its acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCheck {
    /// Which round.
    pub round: CheckRound,
    /// The message in the agent's inbox.
    pub message_id: String,
    /// When it was sent.
    pub sent_at: UnixMillis,
    /// When it counts as not acknowledged.
    pub deadline: UnixMillis,
}

/// One agent of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMigration {
    /// Agent name (also its registry name).
    pub name: String,
    /// Registry id.
    pub agent_id: String,
    /// Its pane.
    pub pane_id: PaneId,
    /// `session:window.pane` when discovered.
    pub target: String,
    /// Session name when discovered.
    pub session: String,
    /// Window name when discovered.
    pub window: String,
    /// Working directory of the pane when discovered.
    pub current_path: String,
    /// Which discovery rule found it.
    pub found_by: FoundBy,
    /// Its batch (0-based).
    pub batch: usize,
    /// Where it is.
    #[serde(flatten)]
    pub stage: AgentStage,
    /// The check message it must acknowledge now, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<PendingCheck>,
    /// Passed (or failed) the final round already.
    #[serde(default)]
    pub final_checked: bool,
}

impl AgentMigration {
    /// Its messages are also typed into its pane (not migrated yet, or rolled back).
    pub fn uses_tmux(&self) -> bool {
        !matches!(self.stage, AgentStage::Migrated { .. })
    }
}

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CheckResult {
    /// Acknowledged through the queue.
    Acknowledged {
        /// Seconds from send to ack (as seen by polling).
        seconds: f64,
    },
    /// Not acknowledged in time, or it could not be sent.
    Failed {
        /// Why.
        reason: String,
    },
}

/// One validation, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationRecord {
    /// Agent name.
    pub agent: String,
    /// Which round.
    pub round: CheckRound,
    /// The check message.
    pub message_id: Option<String>,
    /// When it ended.
    pub at: UnixMillis,
    /// How.
    #[serde(flatten)]
    pub result: CheckResult,
}

/// One message typed into a pane because its recipient was not (only) on the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DualModeRecord {
    /// When the pane copy finished.
    pub at: UnixMillis,
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

/// Dual-mode deliveries counted by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DualModeTally {
    /// Messages copied into panes (each is also in the queue).
    pub sent: u64,
    /// Pane copies seen submitted.
    pub delivered: u64,
    /// Pane copies typed but not seen submitted.
    pub unconfirmed: u64,
    /// Pane copies that could not be made.
    pub failed: u64,
    /// Pane copies refused because the pane runs a shell or a program that is not an agent
    /// (nothing typed; the message is in the queue).
    #[serde(default)]
    pub refused: u64,
}

/// The dual-mode part of a run: counts, and the latest records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DualModeLog {
    /// Every delivery counted.
    pub tally: DualModeTally,
    /// The latest [`DUAL_MODE_RECORDS_MAX`] deliveries, oldest first.
    pub recent: VecDeque<DualModeRecord>,
}

impl DualModeLog {
    /// Counts and keeps `record`.
    pub fn push(&mut self, record: DualModeRecord) {
        self.tally.sent += 1;
        match record.pane {
            DeliveryOutcome::Delivered => self.tally.delivered += 1,
            DeliveryOutcome::Unconfirmed { .. } => self.tally.unconfirmed += 1,
            DeliveryOutcome::Failed { .. } => self.tally.failed += 1,
            DeliveryOutcome::Refused { .. } => self.tally.refused += 1,
        }
        if self.recent.len() == DUAL_MODE_RECORDS_MAX {
            self.recent.pop_front();
        }
        self.recent.push_back(record);
    }
}

/// Text the migration would have typed into a pane, refused because of the program reading it
/// (a shell, or a program that is not an agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedDelivery {
    /// When.
    pub at: UnixMillis,
    /// The agent whose pane it is.
    pub agent: String,
    /// The pane.
    pub pane: PaneId,
    /// What it was: `dual-mode copy of message ID`, `instructions`, `notice`...
    pub what: String,
    /// Why, starting with `pane runs ...`.
    pub reason: String,
}

/// A helper script moved aside by the cleanup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupRecord {
    /// Where it was.
    pub original: String,
    /// Where it is now.
    pub moved_to: String,
    /// A shim calling `switchboard tmux-send` now stands at the original path.
    pub shim: bool,
}

/// A line of progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Increasing number, so a client can print each event once.
    pub seq: u64,
    /// When.
    pub at: UnixMillis,
    /// What happened, in a sentence.
    pub text: String,
}

/// One migration, from discovery to its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationRun {
    /// Unique id.
    pub id: String,
    /// How it was asked to run.
    pub settings: RunSettings,
    /// Where it is.
    pub phase: Phase,
    /// When it started.
    pub started_at: UnixMillis,
    /// When it reached a final phase.
    pub ended_at: Option<UnixMillis>,
    /// When dual mode ends (set on entering it).
    pub dual_mode_until: Option<UnixMillis>,
    /// Batches in the plan.
    pub batches_total: usize,
    /// The batch being migrated (0-based).
    pub current_batch: Option<usize>,
    /// The agents, by name.
    pub agents: Vec<AgentMigration>,
    /// What discovery noticed.
    pub discovery_warnings: Vec<String>,
    /// Messages typed into panes.
    pub dual_mode: DualModeLog,
    /// Every check.
    pub validations: Vec<ValidationRecord>,
    /// Scripts moved aside.
    pub cleanup: Vec<CleanupRecord>,
    /// The latest [`REFUSED_RECORDS_MAX`] texts not typed because of the pane's program.
    #[serde(default)]
    pub refused: VecDeque<RefusedDelivery>,
    /// Why the whole migration was rolled back, or why it failed.
    pub rollback_reason: Option<String>,
    /// Times the server restarted during the run and resumed it.
    pub resumed: u32,
    /// Progress, newest last.
    pub events: VecDeque<Event>,
    /// Number of the next event.
    pub next_event: u64,
}

impl MigrationRun {
    /// A run in its discovery phase.
    pub fn new(id: String, settings: RunSettings, now: UnixMillis) -> Self {
        Self {
            id,
            settings,
            phase: Phase::Discovery,
            started_at: now,
            ended_at: None,
            dual_mode_until: None,
            batches_total: 0,
            current_batch: None,
            agents: Vec::new(),
            discovery_warnings: Vec::new(),
            dual_mode: DualModeLog::default(),
            validations: Vec::new(),
            cleanup: Vec::new(),
            refused: VecDeque::new(),
            rollback_reason: None,
            resumed: 0,
            events: VecDeque::new(),
            next_event: 1,
        }
    }

    /// Notes a line of progress (also logged).
    pub fn event(&mut self, now: UnixMillis, text: impl Into<String>) {
        let text = text.into();
        tracing::info!(migration = %self.id, "{text}");
        if self.events.len() == EVENTS_MAX {
            self.events.pop_front();
        }
        self.events.push_back(Event {
            seq: self.next_event,
            at: now,
            text,
        });
        self.next_event += 1;
    }

    /// Keeps a refused delivery (and notes it as an event).
    pub fn refused(&mut self, record: RefusedDelivery) {
        self.event(
            record.at,
            format!(
                "{} for {} not typed into pane {}: refused: {}",
                record.what, record.agent, record.pane, record.reason
            ),
        );
        if self.refused.len() == REFUSED_RECORDS_MAX {
            self.refused.pop_front();
        }
        self.refused.push_back(record);
    }

    /// The agent named `name`.
    pub fn agent_mut(&mut self, name: &str) -> Option<&mut AgentMigration> {
        self.agents.iter_mut().find(|agent| agent.name == name)
    }

    /// Names of the agents in batch `batch`.
    pub fn batch_members(&self, batch: usize) -> Vec<String> {
        self.agents
            .iter()
            .filter(|agent| agent.batch == batch)
            .map(|agent| agent.name.clone())
            .collect()
    }

    /// Moves to `phase` (and stamps the end when it is final).
    pub fn enter(&mut self, phase: Phase, now: UnixMillis) {
        self.phase = phase;
        if phase.is_final() {
            self.ended_at = Some(now);
        }
    }
}

/// The first [`PREVIEW_CHARS_MAX`] characters of `text`, with `…` when cut.
pub fn preview(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(PREVIEW_CHARS_MAX).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}
