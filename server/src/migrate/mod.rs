//! Zero-disruption migration from tmux `send-keys` messaging to the queue.
//!
//! A run goes through five phases (see [`model::Phase`]): **discovery** finds agents in tmux
//! and registers them; **dual mode** copies every message for a not-yet-migrated agent into
//! its pane as `[DUAL MODE] From S: TEXT` besides enqueuing it; **batches** tell a few agents
//! at a time, in their panes, how to use the queue, then require each to acknowledge a check
//! message through the queue (an agent that does not is rolled back to tmux delivery, with
//! the reason); **validation** checks every migrated agent once more; **cleanup** moves the old
//! helper scripts aside. The whole migration can be rolled back at any time, and every step is
//! persisted, so a server restart resumes it or rolls it back.
//!
//! ## Layout
//! - [`tmux`]: the tmux adapter (targets, discovery, safe delivery).
//! - [`settings`]: flags and the start request; [`model`]: the run and its records.
//! - `state`: persistence in the engine; `panes`: one ordered writer per pane.
//! - `plan`: discovery turned into batches (and the dry-run text); `runner`: the phases;
//!   `dual_mode`, `batches`, `validate`, `rollback`, `cleanup`: one phase or action each.
//! - [`report`]: `migration_report.json` and its readable summary.
//! - [`boot`]: what `serve` does at start (load, resume or roll back, `--migrate-now`).

mod batches;
mod boot;
mod cleanup;
mod dual_mode;
pub mod model;
mod panes;
pub mod plan;
pub mod report;
mod rollback;
mod runner;
pub mod settings;
mod state;
pub mod tmux;
mod validate;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use boot::boot;
pub use dual_mode::{copy_to_pane, wants_pane_copy};
pub use rollback::roll_back_all;
pub use runner::{start, Started};

use crate::state::AppState;
use model::MigrationRun;
use settings::RestartPolicy;
use state::StateStore;
use tmux::DeliveryOptions;

/// Longest time a dual-mode record waits before it is saved with the run.
pub const SAVE_DEBOUNCE: Duration = Duration::from_millis(500);
/// Sender name of the migration's own messages (instructions, checks).
pub const MIGRATION_SENDER: &str = "switchboard-migration";

/// What the server was started with.
#[derive(Debug, Clone)]
pub struct MigrationConfig {
    /// `--enable-migration` or `--migrate-now`: runs may be started.
    pub enabled: bool,
    /// `--tmux-socket`.
    pub tmux_socket: Option<String>,
    /// `--workdir`.
    pub workdir: PathBuf,
    /// This server's URL, as agents are told to reach it.
    pub server_url: String,
    /// `--migration-on-restart`.
    pub on_restart: RestartPolicy,
    /// How text is typed into panes.
    pub delivery: DeliveryOptions,
}

/// The migration subsystem, one per server (in [`AppState`]). Inert until [`boot`] configures
/// it; every send asks it (cheaply) whether the recipient's messages also go into a pane.
#[derive(Default)]
pub struct Migration {
    /// The current or last run. A sync mutex, never held across an `.await`.
    run: Mutex<Option<MigrationRun>>,
    config: OnceLock<MigrationConfig>,
    store: OnceLock<StateStore>,
    /// True when some agent's messages are typed into a pane: lets every other send skip the
    /// lock.
    pane_delivery: AtomicBool,
    panes: panes::PaneWriters,
    /// The task running the phases.
    runner: Mutex<Option<JoinHandle<()>>>,
    /// Ends a dual-mode wait early (`POST /api/v1/migration/proceed`).
    proceed: Notify,
    save_scheduled: AtomicBool,
}

impl Migration {
    /// The configuration, once booted.
    pub fn config(&self) -> Option<&MigrationConfig> {
        self.config.get()
    }

    /// True when runs may be started.
    pub fn enabled(&self) -> bool {
        self.config.get().is_some_and(|config| config.enabled)
    }

    /// A copy of the current or last run.
    pub fn snapshot(&self) -> Option<MigrationRun> {
        self.run.lock().clone()
    }

    /// True while a run has not reached a final phase.
    pub fn is_running(&self) -> bool {
        self.run
            .lock()
            .as_ref()
            .is_some_and(|run| !run.phase.is_final())
    }

    /// Changes the run in memory (not saved; see [`Migration::change`]). `None` without a run.
    fn update<R>(&self, change: impl FnOnce(&mut MigrationRun) -> R) -> Option<R> {
        let mut guard = self.run.lock();
        let result = guard.as_mut().map(change);
        let any = guard.as_ref().is_some_and(|run| {
            run.agents
                .iter()
                .any(|a| dual_mode::pane_kind(run, a).is_some())
        });
        self.pane_delivery.store(any, Ordering::Relaxed);
        result
    }

    /// Changes the run and saves it before returning.
    async fn change<R>(&self, change: impl FnOnce(&mut MigrationRun) -> R) -> Option<R> {
        let result = self.update(change);
        self.save().await;
        result
    }

    /// Replaces the run (a new start) and saves it.
    async fn replace(&self, run: MigrationRun) {
        *self.run.lock() = Some(run);
        self.update(|_| ());
        self.save().await;
    }

    /// Saves the run now. A failure is logged: the engine poisons itself on storage errors,
    /// so the server reports it on every request anyway.
    async fn save(&self) {
        let Some(store) = self.store.get() else {
            return;
        };
        let run = self.snapshot();
        if let Err(error) = store.save(run.as_ref()).await {
            tracing::error!(%error, "could not save the migration state");
        }
    }

    /// Saves the run within [`SAVE_DEBOUNCE`], once for many calls.
    fn save_soon(&self, state: &AppState) {
        if self.save_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let state = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SAVE_DEBOUNCE).await;
            state
                .migration
                .save_scheduled
                .store(false, Ordering::Release);
            state.migration.save().await;
        });
    }

    /// Ends the dual-mode wait now. False when not in dual mode.
    pub fn proceed(&self) -> bool {
        let in_dual_mode = self
            .run
            .lock()
            .as_ref()
            .is_some_and(|run| run.phase == model::Phase::DualMode);
        if in_dual_mode {
            self.proceed.notify_one();
        }
        in_dual_mode
    }

    fn set_runner(&self, handle: JoinHandle<()>) {
        if let Some(old) = self.runner.lock().replace(handle) {
            old.abort();
        }
    }

    /// Stops the phases' task and waits until it is gone, so that it cannot change the run
    /// behind the caller's back. Never called from that task itself.
    async fn stop_runner(&self) {
        let handle = self.runner.lock().take();
        if let Some(handle) = handle {
            handle.abort();
            let _ = handle.await;
        }
    }
}
