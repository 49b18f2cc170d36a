//! The phases, one after the other, in a task of their own. Each phase's outcome is saved
//! before the next begins, so [`run_phases`] can be started again on a loaded run (after a
//! restart) and carries on where it stopped.

use std::time::Duration;

use serde::Serialize;

use super::model::{AgentMigration, AgentStage, MigrationRun, Phase};
use super::plan::Plan;
use super::settings::{RunSettings, StartRequest};
use super::tmux::PaneId;
use super::{batches, cleanup, report, rollback, validate};
use crate::api::wire::{Metadata, RegisterRequest};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// What `POST /api/v1/migration/start` answers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Started {
    /// A dry run: the plan, and the same as text.
    Plan {
        /// What would happen.
        plan: Plan,
        /// The plan for people.
        text: String,
    },
    /// The run started.
    Started {
        /// Its id.
        migration_id: String,
    },
}

/// Starts a run (or, for a dry run, only makes the plan).
pub async fn start(state: &AppState, request: StartRequest) -> ApiResult<Started> {
    let Some(config) = state.migration.config().cloned() else {
        return Err(ApiError::Conflict(
            "the migration is not set up on this server".into(),
        ));
    };
    let settings = RunSettings::check(
        &request,
        config.tmux_socket.clone(),
        config.workdir.clone(),
        config.server_url.clone(),
    )
    .map_err(ApiError::invalid)?;
    if request.dry_run {
        let plan = Plan::make(&settings, &config.delivery.policy)
            .await
            .map_err(|error| {
                ApiError::Conflict(format!(
                    "cannot look at tmux ({}): {error}",
                    settings_tmux(&settings)
                ))
            })?;
        let text = plan.render();
        return Ok(Started::Plan { plan, text });
    }
    if !config.enabled {
        return Err(ApiError::Conflict(
            "this server was started without --enable-migration: restart it with \
             --enable-migration (and --tmux-socket NAME if the agents run on a private tmux \
             server) to migrate"
                .into(),
        ));
    }
    if state.migration.is_running() {
        return Err(ApiError::Conflict(
            "a migration is already running; follow it with GET /api/v1/migration/status or \
             roll it back with POST /api/v1/migration/rollback"
                .into(),
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let now = state.engine.now_ms();
    let tmux = settings_tmux(&settings);
    let mut run = MigrationRun::new(id.clone(), settings, now);
    run.event(
        now,
        format!(
            "[1/{}] discovery: looking for agents on {tmux}",
            Phase::STEPS
        ),
    );
    state.migration.replace(run).await;
    spawn(state);
    Ok(Started::Started { migration_id: id })
}

fn settings_tmux(settings: &RunSettings) -> String {
    super::tmux::Tmux::new(settings.tmux_socket.clone()).describe()
}

/// Runs the phases of the loaded run in a new task.
pub fn spawn(state: &AppState) {
    let task_state = state.clone();
    let handle = tokio::spawn(async move { run_phases(&task_state).await });
    state.migration.set_runner(handle);
}

/// Runs phases until the run is final.
async fn run_phases(state: &AppState) {
    loop {
        let Some(phase) = state.migration.snapshot().map(|run| run.phase) else {
            return;
        };
        match phase {
            Phase::Discovery => discovery(state).await,
            Phase::DualMode => dual_mode(state).await,
            Phase::Batches => batches_phase(state).await,
            Phase::Validation => validation(state).await,
            Phase::Cleanup => cleanup_phase(state).await,
            Phase::Completed | Phase::RolledBack | Phase::Failed => {
                report::finish(state).await;
                return;
            }
        }
    }
}

async fn next_phase(state: &AppState, phase: Phase, line: String) {
    let now = state.engine.now_ms();
    state
        .migration
        .change(|run| {
            run.enter(phase, now);
            if let Some(step) = phase.step() {
                run.event(
                    now,
                    format!("[{step}/{}] {}: {line}", Phase::STEPS, phase.name()),
                );
            } else {
                run.event(now, format!("{}: {line}", phase.name()));
            }
        })
        .await;
}

async fn fail(state: &AppState, reason: String) {
    let now = state.engine.now_ms();
    state
        .migration
        .change(|run| {
            run.rollback_reason = Some(reason.clone());
            run.enter(Phase::Failed, now);
            run.event(
                now,
                format!("migration failed: {reason}; nothing changed for the agents"),
            );
        })
        .await;
}

async fn discovery(state: &AppState) {
    let Some(run) = state.migration.snapshot() else {
        return;
    };
    let policy = super::dual_mode::delivery_options(state).policy;
    let plan = match Plan::make(&run.settings, &policy).await {
        Ok(plan) => plan,
        Err(error) => return fail(state, format!("cannot look at tmux: {error}")).await,
    };
    if plan.agents.is_empty() {
        let reason = format!(
            "no agents found on {} (windows named agent-NAME in session {:?}, or panes in a \
             worktree)",
            plan.tmux, run.settings.tmux_session
        );
        return fail(state, reason).await;
    }
    let mut agents = Vec::with_capacity(plan.agents.len());
    let mut warnings = plan.warnings.clone();
    for planned in &plan.agents {
        match register(state, planned).await {
            Ok(agent) => agents.push(agent),
            Err(error) => warnings.push(format!("{} not registered: {error}", planned.name)),
        }
    }
    let count = agents.len();
    let batches_total = agents.iter().map(|a| a.batch + 1).max().unwrap_or(0);
    let now = state.engine.now_ms();
    let until = now + run.settings.dual_mode_ms();
    state
        .migration
        .change(|run| {
            for warning in &warnings {
                run.event(now, format!("note: {warning}"));
            }
            run.agents = agents;
            run.batches_total = batches_total;
            run.discovery_warnings = warnings;
            run.dual_mode_until = Some(until);
        })
        .await;
    let minutes = run.settings.dual_mode_minutes;
    next_phase(
        state,
        Phase::DualMode,
        format!("{count} agent(s) found; every message also goes into their panes for {minutes} minute(s)"),
    )
    .await;
}

/// The agent in the registry (registered when new), as a run member.
async fn register(
    state: &AppState,
    planned: &super::plan::PlannedAgent,
) -> Result<AgentMigration, ApiError> {
    let record = match state.registry.resolve(&planned.name) {
        Some(record) => record,
        None => {
            let mut metadata = Metadata::new();
            metadata.insert("discovered_by".into(), "tmux".into());
            metadata.insert("tmux_pane".into(), planned.pane_id.clone().into());
            metadata.insert("tmux_target".into(), planned.target.clone().into());
            let request = RegisterRequest {
                name: planned.name.clone(),
                capabilities: Vec::new(),
                endpoint: None,
                metadata,
            };
            state.registry.register(request).await?.0
        }
    };
    let (session, window) = split_target(&planned.target);
    Ok(AgentMigration {
        name: planned.name.clone(),
        agent_id: record.id.clone(),
        pane_id: planned
            .pane_id
            .parse::<PaneId>()
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        target: planned.target.clone(),
        session,
        window,
        current_path: planned.current_path.clone(),
        found_by: planned.found_by,
        batch: planned.batch,
        stage: AgentStage::Pending,
        check: None,
        final_checked: false,
    })
}

/// `session:window.pane` → (session, window).
fn split_target(target: &str) -> (String, String) {
    let (session, rest) = target.split_once(':').unwrap_or((target, ""));
    let window = rest.rsplit_once('.').map_or(rest, |(window, _)| window);
    (session.to_string(), window.to_string())
}

async fn dual_mode(state: &AppState) {
    let until = state
        .migration
        .snapshot()
        .and_then(|run| run.dual_mode_until)
        .unwrap_or(0);
    let left_ms = until.saturating_sub(state.engine.now_ms());
    let proceeded = tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(left_ms)) => false,
        _ = state.migration.proceed.notified() => true,
    };
    let line = if proceeded {
        "dual mode ended early on request"
    } else {
        "dual mode over"
    };
    next_phase(
        state,
        Phase::Batches,
        format!("{line}; migrating agents batch by batch"),
    )
    .await;
}

async fn batches_phase(state: &AppState) {
    let Some(run) = state.migration.snapshot() else {
        return;
    };
    let first = run.current_batch.unwrap_or(0);
    for batch in first..run.batches_total {
        batches::run_batch(state, batch).await;
    }
    next_phase(
        state,
        Phase::Validation,
        "checking every migrated agent once more".into(),
    )
    .await;
}

async fn validation(state: &AppState) {
    validate::final_round(state).await;
    let migrated = state
        .migration
        .snapshot()
        .map(|run| run.agents.iter().filter(|a| !a.uses_tmux()).count())
        .unwrap_or(0);
    if migrated == 0 {
        rollback::roll_back_all_here(state, "no agent passed validation").await;
        return;
    }
    next_phase(
        state,
        Phase::Cleanup,
        format!("{migrated} agent(s) on the queue; moving old helper scripts aside"),
    )
    .await;
}

async fn cleanup_phase(state: &AppState) {
    let Some(run) = state.migration.snapshot() else {
        return;
    };
    let (records, errors) = if run.settings.skip_cleanup {
        (Vec::new(), Vec::new())
    } else {
        let settings = run.settings.clone();
        tokio::task::spawn_blocking(move || cleanup::run(&settings))
            .await
            .unwrap_or_else(|error| (Vec::new(), vec![format!("cleanup panicked: {error}")]))
    };
    let now = state.engine.now_ms();
    state
        .migration
        .change(|run| {
            for record in &records {
                run.event(
                    now,
                    format!("moved {} to {}", record.original, record.moved_to),
                );
            }
            for error in &errors {
                run.event(now, format!("could not move {error}"));
            }
            run.cleanup.extend(records);
        })
        .await;
    next_phase(state, Phase::Completed, "migration complete".into()).await;
}

#[cfg(test)]
mod tests {
    use super::split_target;

    #[test]
    fn targets_split_into_session_and_window() {
        assert_eq!(
            split_target("agent-hive:agent-a.0"),
            ("agent-hive".into(), "agent-a".into())
        );
        assert_eq!(split_target("s:v1.2.3"), ("s".into(), "v1.2".into()));
    }
}
