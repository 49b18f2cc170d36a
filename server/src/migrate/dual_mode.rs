//! Dual mode: a message for an agent that is not (only) on the queue is enqueued as usual
//! *and* typed into its pane; both outcomes are recorded (the queue's by the send itself, the
//! pane's in the run's dual-mode log).
//!
//! The send path calls [`wants_pane_copy`] (an atomic load when no agent needs copies) and,
//! after the enqueue, [`copy_to_pane`], which returns at once: the typing and its check run in
//! the pane's writer task, so a slow pane never slows the queue.
//!
//! A pane whose terminal is read by a shell (or by a program that is not an agent) gets
//! nothing typed (see [`super::tmux::foreground`]): the copy is `refused`, which the run's
//! report and the message's delivery receipt record; the message is in the queue regardless.

use std::sync::atomic::Ordering;

use switchboard_engine::MessageId;

use super::model::{
    preview, AgentMigration, AgentStage, DualModeRecord, MigrationRun, RefusedDelivery,
};
use super::tmux::DeliveryOutcome;
use super::tmux::{PaneId, Tmux};
use crate::registry::AgentRecord;
use crate::state::AppState;

/// Prefix of dual-mode copies, as the original wrote them.
pub const DUAL_MODE_PREFIX: &str = "[DUAL MODE]";

/// How an agent's messages are typed into its pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaneKind {
    /// During a run, before the agent is migrated: `[DUAL MODE] From S: TEXT`.
    DualMode,
    /// After a rollback: `From S: TEXT`, as its only delivery it reads.
    TmuxDelivery,
}

/// Whether `agent`'s messages go into its pane, and how.
pub fn pane_kind(run: &MigrationRun, agent: &AgentMigration) -> Option<PaneKind> {
    match agent.stage {
        AgentStage::Migrated { .. } => None,
        AgentStage::RolledBack { .. } => Some(PaneKind::TmuxDelivery),
        AgentStage::Pending | AgentStage::Validating if !run.phase.is_final() => {
            Some(PaneKind::DualMode)
        }
        AgentStage::Pending | AgentStage::Validating => None,
    }
}

/// The text typed into the pane for a message.
pub fn pane_text(kind: PaneKind, sender: &str, content: &str) -> String {
    match kind {
        PaneKind::DualMode => format!("{DUAL_MODE_PREFIX} From {sender}: {content}"),
        PaneKind::TmuxDelivery => format!("From {sender}: {content}"),
    }
}

/// True when messages for agent `agent_id` must also be typed into a pane. Cheap: callers
/// ask before copying a message's text.
pub fn wants_pane_copy(state: &AppState, agent_id: &str) -> bool {
    let migration = &state.migration;
    if !migration.pane_delivery.load(Ordering::Relaxed) {
        return false;
    }
    route(state, agent_id).is_some()
}

fn route(state: &AppState, agent_id: &str) -> Option<(Tmux, PaneId, PaneKind)> {
    let guard = state.migration.run.lock();
    let run = guard.as_ref()?;
    let agent = run.agents.iter().find(|a| a.agent_id == agent_id)?;
    let kind = pane_kind(run, agent)?;
    Some((
        Tmux::new(run.settings.tmux_socket.clone()),
        agent.pane_id.clone(),
        kind,
    ))
}

/// Types the message `message_id` (already enqueued for `recipient`) into the recipient's
/// pane, in the background, and records the outcome. Does nothing for agents on the queue.
pub fn copy_to_pane(
    state: &AppState,
    recipient: &AgentRecord,
    sender: &str,
    content: &str,
    message_id: MessageId,
) {
    let Some((tmux, pane, kind)) = route(state, &recipient.id) else {
        return;
    };
    let text = pane_text(kind, sender, content);
    let record_base = DualModeRecord {
        at: 0,
        sender: sender.to_string(),
        recipient: recipient.name.clone(),
        message_id: message_id.to_string(),
        preview: preview(content),
        pane: DeliveryOutcome::Delivered,
    };
    let state = state.clone();
    tokio::spawn(async move {
        let options = delivery_options(&state);
        let outcome = state
            .migration
            .panes
            .deliver(&tmux, &pane, text, &options)
            .await;
        if let Some(reason) = outcome.reason() {
            tracing::warn!(recipient = %record_base.recipient, %pane, outcome = outcome.label(), reason, "pane copy");
        }
        let now = state.engine.now_ms();
        if let DeliveryOutcome::Refused { reason } = &outcome {
            state
                .receipts
                .pane_refused(message_id, &record_base.recipient, reason, now);
        }
        state.migration.update(|run| {
            if let DeliveryOutcome::Refused { reason } = &outcome {
                run.refused(RefusedDelivery {
                    at: now,
                    agent: record_base.recipient.clone(),
                    pane: pane.clone(),
                    what: format!("dual-mode copy of message {message_id}"),
                    reason: reason.clone(),
                });
            }
            run.dual_mode.push(DualModeRecord {
                at: now,
                pane: outcome,
                ..record_base
            })
        });
        state.migration.save_soon(&state);
    });
}

/// The delivery options the server was configured with.
pub fn delivery_options(state: &AppState) -> super::tmux::DeliveryOptions {
    state
        .migration
        .config()
        .map(|config| config.delivery.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dual_mode_copies_carry_the_originals_prefix() {
        assert_eq!(
            pane_text(PaneKind::DualMode, "lead", "run the tests"),
            "[DUAL MODE] From lead: run the tests"
        );
        assert_eq!(
            pane_text(PaneKind::TmuxDelivery, "lead", "hi"),
            "From lead: hi"
        );
    }
}
