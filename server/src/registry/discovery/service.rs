//! Running discovery: one scan at a time, its report, and the background task that rescans
//! on a timer and when a watched directory changes.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use utoipa::ToSchema;

pub use super::apply::AgentChange;
use super::capabilities::CapabilityOrigin;
use super::git;
use super::scan::{self, ScanInput, Skipped};
use super::watch::{DirectoryWatcher, WATCH_DEBOUNCE};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::time::iso8601;

/// Worktree roots under `--workdir` when none are named (as the original).
pub const WORKTREE_ROOTS_DEFAULT: [&str; 2] = ["worktrees", "new-worktrees"];
/// Time between periodic rescans when the operator does not choose (as the original).
pub const DISCOVERY_INTERVAL_DEFAULT: Duration = Duration::from_secs(60);

/// Where and when to look.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// The working directory (`--workdir`); git worktrees are listed for it.
    pub workdir: PathBuf,
    /// Directories whose subdirectories may be agents (absolute, or relative to the process).
    pub roots: Vec<PathBuf>,
    /// Ask git for linked worktrees.
    pub git: bool,
    /// Periodic rescans; `None` turns them off (on-demand and watched rescans still run).
    pub interval: Option<Duration>,
    /// Watch directories for changes.
    pub watch: bool,
}

impl DiscoveryConfig {
    /// The defaults for `workdir`: its `worktrees/` and `new-worktrees/`, git, a rescan a
    /// minute, watching on.
    pub fn for_workdir(workdir: PathBuf) -> Self {
        Self {
            roots: WORKTREE_ROOTS_DEFAULT
                .iter()
                .map(|root| workdir.join(root))
                .collect(),
            workdir,
            git: true,
            interval: Some(DISCOVERY_INTERVAL_DEFAULT),
            watch: true,
        }
    }

    /// Nothing to look at: no roots and no git (what tests of other features use).
    pub fn disabled() -> Self {
        Self {
            workdir: PathBuf::from("."),
            roots: Vec::new(),
            git: false,
            interval: None,
            watch: false,
        }
    }
}

/// One agent in a report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportedAgent {
    /// Its name (the directory's).
    pub name: String,
    /// Its stable id.
    pub id: String,
    /// Its worktree.
    pub path: String,
    /// What this scan did to it.
    pub change: AgentChange,
    /// Its discovered capabilities, with provenance.
    pub capabilities: Vec<CapabilityOrigin>,
    /// Declarations that could not be read.
    pub warnings: Vec<String>,
}

/// What one scan saw and did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiscoveryReport {
    /// When the scan started (ISO-8601 UTC).
    pub scanned_at: String,
    /// How long it took, in milliseconds.
    pub took_ms: u64,
    /// The worktree roots looked at (missing ones included).
    pub roots: Vec<String>,
    /// The linked git worktrees looked at.
    pub git_worktrees: Vec<String>,
    /// Why git could not be asked, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_error: Option<String>,
    /// Every agent found, and those that disappeared now.
    pub agents: Vec<ReportedAgent>,
    /// Directories with an agent file that were not taken, and why.
    pub skipped: Vec<Skipped>,
    /// Directories watched for changes after this scan.
    pub watched_directories: usize,
}

/// The discovery service of a server.
pub struct Discovery {
    config: DiscoveryConfig,
    /// One scan at a time: two concurrent scans could mark each other's finds gone.
    scanning: tokio::sync::Mutex<()>,
    /// Set by [`spawn`] when watching is on; synced after every scan.
    watcher: parking_lot::Mutex<Option<DirectoryWatcher>>,
}

impl Discovery {
    /// A service for `config`; nothing runs until [`Discovery::rescan`] or [`spawn`].
    pub fn new(config: DiscoveryConfig) -> Self {
        Self {
            config,
            scanning: tokio::sync::Mutex::new(()),
            watcher: parking_lot::Mutex::new(None),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    /// Scans now and applies the result to the registry.
    pub async fn rescan(&self, state: &AppState) -> ApiResult<DiscoveryReport> {
        let _one_at_a_time = self.scanning.lock().await;
        let started = Instant::now();
        let scanned_at = state.engine.now_ms();
        let (git_worktrees, git_error) = if self.config.git {
            match git::list(&self.config.workdir).await {
                Ok(listed) => (git::agent_candidates(listed), None),
                Err(error) => (Vec::new(), Some(error)),
            }
        } else {
            (Vec::new(), None)
        };
        let input = ScanInput {
            roots: self.config.roots.clone(),
            git_worktrees: git_worktrees.clone(),
        };
        let result = tokio::task::spawn_blocking(move || scan::scan(&input))
            .await
            .map_err(|error| ApiError::Internal(format!("discovery scan failed: {error}")))?;
        let applied = state.registry.apply_scan(&result.found).await?;
        // New or changed capabilities may match messages waiting for one.
        state.registry.arrivals().notify_one();
        let watched_directories = self.sync_watcher(&result.found, &git_worktrees);
        let agents = applied
            .agents
            .iter()
            .map(|(record, change)| {
                let discovered = record.discovery.as_ref();
                ReportedAgent {
                    name: record.name.clone(),
                    id: record.id.clone(),
                    path: discovered.map(|d| d.path.clone()).unwrap_or_default(),
                    change: *change,
                    capabilities: discovered
                        .map(|d| d.capabilities.clone())
                        .unwrap_or_default(),
                    warnings: discovered.map(|d| d.warnings.clone()).unwrap_or_default(),
                }
            })
            .collect::<Vec<_>>();
        let changed = agents
            .iter()
            .filter(|a| a.change != AgentChange::Unchanged)
            .count();
        if changed > 0 {
            tracing::info!(
                found = result.found.len(),
                changed,
                "agent discovery applied"
            );
        } else {
            tracing::debug!(found = result.found.len(), "agent discovery: no change");
        }
        Ok(DiscoveryReport {
            scanned_at: iso8601(scanned_at),
            took_ms: started.elapsed().as_millis() as u64,
            roots: display_all(&self.config.roots),
            git_worktrees: display_all(&git_worktrees),
            git_error,
            agents,
            skipped: result.skipped,
            watched_directories,
        })
    }

    fn sync_watcher(&self, found: &[scan::Found], git_worktrees: &[PathBuf]) -> usize {
        let mut watcher = self.watcher.lock();
        let Some(watcher) = watcher.as_mut() else {
            return 0;
        };
        let mut containers: BTreeSet<PathBuf> = self.config.roots.iter().cloned().collect();
        containers.insert(self.config.workdir.clone());
        let mut wanted = containers.clone();
        if self.config.git {
            let git_dir = self.config.workdir.join(".git");
            let worktrees = git_dir.join("worktrees");
            wanted.insert(if worktrees.is_dir() {
                worktrees
            } else {
                git_dir
            });
        }
        wanted.extend(found.iter().map(|agent| agent.path.clone()));
        // Every subdirectory of a root, agent or not yet: a CLAUDE.md written into a new
        // directory after the scan its creation caused is still seen.
        for root in &self.config.roots {
            wanted.extend(scan::subdirectories(root));
        }
        wanted.extend(git_worktrees.iter().cloned());
        watcher.sync(&wanted, &containers);
        watcher.watched().len()
    }
}

fn display_all(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

/// Starts watching (the watcher is in place when this returns) and the background rescans: on
/// the interval and (debounced) on watched changes, until the server shuts down. The first
/// scan is the caller's, after this, so that it fills the watcher.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    let (changed_sender, mut changed) = mpsc::channel::<()>(1);
    let config = state.discovery.config().clone();
    if config.watch {
        match DirectoryWatcher::new(changed_sender) {
            Ok(watcher) => *state.discovery.watcher.lock() = Some(watcher),
            Err(error) => {
                tracing::warn!(%error, "cannot watch directories; discovery rescans on its interval only")
            }
        }
    }
    tokio::spawn(async move {
        let mut shutdown = state.shutdown.clone();
        loop {
            let wait_interval = async {
                match config.interval {
                    Some(interval) => tokio::time::sleep(interval).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = wait_interval => {}
                Some(()) = changed.recv() => {
                    tokio::time::sleep(WATCH_DEBOUNCE).await;
                    while changed.try_recv().is_ok() {}
                }
                _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => return,
            }
            if let Err(error) = state.discovery.rescan(&state).await {
                tracing::warn!(%error, "agent discovery failed");
            }
        }
    })
}
