//! Validation: an agent counts as migrated only once it has *acknowledged* a check message
//! through the queue (REST or WebSocket), which proves it reads its inbox and settles what it
//! reads. The check is an ordinary inbox message from [`super::MIGRATION_SENDER`] that never
//! expires; its disappearance from the engine is the acknowledgement.

use std::time::Duration;

use switchboard_engine::{MessageId, MessageState, NewMessage};

use super::model::{CheckResult, CheckRound, PendingCheck, Phase, ValidationRecord};
use super::MIGRATION_SENDER;
use crate::api::wire::{Metadata, Priority};
use crate::inbox::InboxPayload;
use crate::registry::inbox_queue;
use crate::state::AppState;

/// How often a check message is looked up while waiting for its acknowledgement.
const ACK_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Deliveries a check message gets before it dies (nacks and lease timeouts count).
const CHECK_ATTEMPTS_MAX: u32 = 1000;

/// Enqueues a check message for the agent `name` (`agent_id`) and returns it as pending.
pub async fn send_check(
    state: &AppState,
    migration_id: &str,
    name: &str,
    agent_id: &str,
    round: CheckRound,
    timeout_ms: u64,
) -> Result<PendingCheck, String> {
    let now = state.engine.now_ms();
    let mut marker = Metadata::new();
    marker.insert("kind".into(), "validation".into());
    marker.insert("migration_id".into(), migration_id.into());
    marker.insert(
        "round".into(),
        match round {
            CheckRound::Batch => "batch",
            CheckRound::Final => "final",
        }
        .into(),
    );
    let mut metadata = Metadata::new();
    metadata.insert("switchboard_migration".into(), marker.into());
    let payload = InboxPayload {
        sender: MIGRATION_SENDER.into(),
        content: format!(
            "switchboard migration check for {name}: acknowledge this message to confirm that \
             you read your messages from the queue."
        ),
        priority: Priority::Critical,
        created_at: now,
        metadata,
        reply_to: None,
    };
    let message = NewMessage {
        payload: serde_json::to_vec(&payload).expect("a payload always serializes"),
        priority: Priority::Critical.engine(),
        ttl_ms: Some(0),
        max_attempts: Some(CHECK_ATTEMPTS_MAX),
        ..NewMessage::default()
    };
    let enqueued = state
        .engine
        .enqueue(&inbox_queue(agent_id), message)
        .await
        .map_err(|error| format!("the check message could not be enqueued: {error}"))?;
    Ok(PendingCheck {
        round,
        message_id: enqueued.id.to_string(),
        sent_at: now,
        deadline: now + timeout_ms,
    })
}

/// Waits until the check is acknowledged, dies, or its deadline passes.
pub async fn await_check(state: &AppState, check: &PendingCheck) -> CheckResult {
    let Ok(id) = check.message_id.parse::<MessageId>() else {
        return CheckResult::Failed {
            reason: format!("the check message id {:?} is unreadable", check.message_id),
        };
    };
    loop {
        let now = state.engine.now_ms();
        match state.engine.message(id).await {
            Ok(None) => {
                return CheckResult::Acknowledged {
                    seconds: now.saturating_sub(check.sent_at) as f64 / 1000.0,
                }
            }
            Ok(Some((message, MessageState::Dead { reason, .. }))) => {
                return CheckResult::Failed {
                    reason: format!(
                        "the check message became a dead letter ({}) after {} deliveries \
                         without an acknowledgement",
                        reason.as_str(),
                        message.attempts
                    ),
                }
            }
            Ok(Some(_)) => {}
            Err(error) => {
                tracing::warn!(%error, "looking up a check message failed; retrying");
            }
        }
        if now >= check.deadline {
            let seconds = check.deadline.saturating_sub(check.sent_at) / 1000;
            return CheckResult::Failed {
                reason: format!(
                    "no acknowledgement of the check message within {seconds} s (the agent \
                     did not read its queue, or did not ack what it read)"
                ),
            };
        }
        tokio::time::sleep(ACK_POLL_INTERVAL).await;
    }
}

/// Records the end of a check in the run and clears the agent's pending check.
pub fn record(state: &AppState, name: &str, check: &PendingCheck, result: &CheckResult) {
    let now = state.engine.now_ms();
    state.migration.update(|run| {
        run.validations.push(ValidationRecord {
            agent: name.to_string(),
            round: check.round,
            message_id: Some(check.message_id.clone()),
            at: now,
            result: result.clone(),
        });
        if let Some(agent) = run.agent_mut(name) {
            agent.check = None;
            if check.round == CheckRound::Final {
                agent.final_checked = true;
            }
        }
    });
}

/// The validation phase: every migrated agent not checked yet gets a final check, all at
/// once; an agent that fails it is rolled back to tmux delivery.
pub async fn final_round(state: &AppState) {
    let Some(run) = state.migration.snapshot() else {
        return;
    };
    debug_assert_eq!(run.phase, Phase::Validation);
    let timeout_ms = run.settings.validation_timeout_ms();
    let names: Vec<String> = run
        .agents
        .iter()
        .filter(|a| !a.uses_tmux() && !a.final_checked)
        .map(|a| a.name.clone())
        .collect();
    let checks = names
        .iter()
        .map(|name| final_check(state, &run.id, name, timeout_ms));
    futures_util::future::join_all(checks).await;
}

async fn final_check(state: &AppState, migration_id: &str, name: &str, timeout_ms: u64) {
    let Some(agent) = state
        .migration
        .snapshot()
        .and_then(|run| run.agents.into_iter().find(|a| a.name == name))
    else {
        return;
    };
    let check = match agent.check.filter(|c| c.round == CheckRound::Final) {
        Some(check) => check,
        None => {
            match send_check(
                state,
                migration_id,
                name,
                &agent.agent_id,
                CheckRound::Final,
                timeout_ms,
            )
            .await
            {
                Ok(check) => {
                    let pending = check.clone();
                    state
                        .migration
                        .change(|run| {
                            if let Some(agent) = run.agent_mut(name) {
                                agent.check = Some(pending);
                            }
                        })
                        .await;
                    check
                }
                Err(reason) => {
                    super::rollback::roll_back_agent(state, name, &reason).await;
                    return;
                }
            }
        }
    };
    let result = await_check(state, &check).await;
    record(state, name, &check, &result);
    match result {
        CheckResult::Acknowledged { seconds } => {
            let now = state.engine.now_ms();
            state
                .migration
                .change(|run| {
                    run.event(
                        now,
                        format!("{name} passed the final check in {seconds:.1} s"),
                    )
                })
                .await;
        }
        CheckResult::Failed { reason } => {
            super::rollback::roll_back_agent(state, name, &format!("final check failed: {reason}"))
                .await;
        }
    }
}
