//! Rollback. One agent ([`roll_back_agent`]) returns to tmux delivery when it fails its
//! check: its messages are again typed into its pane (and still enqueued), and it is told so
//! in its pane. The whole migration ([`roll_back_all`]) does that for every agent, ends dual
//! mode, and says so in each pane.

use super::model::{AgentStage, Phase, RefusedDelivery};
use super::tmux::Tmux;
use crate::state::AppState;

/// What an agent reads in its pane when it goes back to tmux delivery.
fn agent_notice(reason: &str) -> String {
    format!(
        "[SWITCHBOARD] You stay on tmux delivery for now ({reason}). Messages for you keep \
         arriving in this pane as before; nothing else changes."
    )
}

/// What every agent reads when the whole migration is rolled back.
fn migration_notice(reason: &str) -> String {
    format!(
        "[SWITCHBOARD] The migration to the message queue was rolled back ({reason}). Messages \
         for you arrive in this pane again, as before the migration."
    )
}

/// Moves agent `name` back to tmux delivery for `reason`, saves, and tells it in its pane.
pub async fn roll_back_agent(state: &AppState, name: &str, reason: &str) {
    let now = state.engine.now_ms();
    let pane = state
        .migration
        .change(|run| {
            let tmux = Tmux::new(run.settings.tmux_socket.clone());
            let agent = run.agent_mut(name)?;
            if matches!(agent.stage, AgentStage::RolledBack { .. }) {
                return None;
            }
            agent.stage = AgentStage::RolledBack {
                reason: reason.to_string(),
                at: now,
            };
            agent.check = None;
            let pane = agent.pane_id.clone();
            run.event(
                now,
                format!("{name} rolled back to tmux delivery: {reason}"),
            );
            Some((tmux, pane))
        })
        .await
        .flatten();
    if let Some((tmux, pane)) = pane {
        let notice = agent_notice(reason);
        tell(state, &tmux, &pane, notice, name, "rollback notice").await;
    }
}

/// Rolls the whole migration back for `reason` (from outside the run's own task: it stops
/// that task first). False when there is no run to roll back.
pub async fn roll_back_all(state: &AppState, reason: &str) -> bool {
    state.migration.stop_runner().await;
    let rolled_back = roll_back_all_here(state, reason).await;
    if rolled_back {
        super::report::finish(state).await;
    }
    rolled_back
}

/// [`roll_back_all`] for the run's own task (which must not wait for itself, and writes the
/// report when it sees the final phase).
pub async fn roll_back_all_here(state: &AppState, reason: &str) -> bool {
    let now = state.engine.now_ms();
    let affected = state
        .migration
        .change(|run| {
            if run.phase == Phase::RolledBack {
                return None;
            }
            let whole = format!("whole migration rolled back: {reason}");
            let mut panes = Vec::new();
            for agent in &mut run.agents {
                agent.check = None;
                if !matches!(agent.stage, AgentStage::RolledBack { .. }) {
                    agent.stage = AgentStage::RolledBack {
                        reason: whole.clone(),
                        at: now,
                    };
                }
                panes.push((agent.name.clone(), agent.pane_id.clone()));
            }
            run.rollback_reason = Some(reason.to_string());
            run.enter(Phase::RolledBack, now);
            run.event(
                now,
                format!("migration rolled back: {reason}; every agent is on tmux delivery again"),
            );
            Some((Tmux::new(run.settings.tmux_socket.clone()), panes))
        })
        .await
        .flatten();
    let Some((tmux, panes)) = affected else {
        return false;
    };
    let notices = panes.iter().map(|(name, pane)| {
        let notice = migration_notice(reason);
        tell(state, &tmux, pane, notice, name, "rollback notice")
    });
    futures_util::future::join_all(notices).await;
    true
}

/// Types a notice into a pane and records how it went (`what` names the notice in the record
/// of a refusal: a shell pane is never typed into).
pub async fn tell(
    state: &AppState,
    tmux: &Tmux,
    pane: &super::tmux::PaneId,
    text: String,
    name: &str,
    what: &str,
) -> super::tmux::DeliveryOutcome {
    let options = super::dual_mode::delivery_options(state);
    let outcome = state
        .migration
        .panes
        .deliver(tmux, pane, text, &options)
        .await;
    if let super::tmux::DeliveryOutcome::Refused { reason } = &outcome {
        let record = RefusedDelivery {
            at: state.engine.now_ms(),
            agent: name.to_string(),
            pane: pane.clone(),
            what: what.to_string(),
            reason: reason.clone(),
        };
        state.migration.update(|run| run.refused(record));
        state.migration.save_soon(state);
    } else if let Some(reason) = outcome.reason() {
        let now = state.engine.now_ms();
        let line = format!(
            "telling {name} in pane {pane}: {} ({reason})",
            outcome.label()
        );
        state.migration.update(|run| run.event(now, line));
    }
    outcome
}
