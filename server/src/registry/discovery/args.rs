//! The `switchboard serve` flags of agent discovery (flattened into `ServeArgs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::service::{DiscoveryConfig, DISCOVERY_INTERVAL_DEFAULT};

/// Discovery flags; `--workdir` (in `ServeArgs`) names the directory they apply to.
#[derive(Debug, Clone, Args)]
pub struct DiscoveryArgs {
    /// A directory whose subdirectories holding CLAUDE.md or AGENTS.md are agents; repeat
    /// for several. Relative paths are under --workdir. Default: worktrees and new-worktrees.
    #[arg(long = "worktree-root", value_name = "DIR")]
    pub worktree_roots: Vec<PathBuf>,
    /// Seconds between rescans (0: only at start, on changes and on demand).
    #[arg(long, value_name = "SECONDS", default_value_t = DISCOVERY_INTERVAL_DEFAULT.as_secs())]
    pub discovery_interval_seconds: u64,
    /// Do not watch the worktree directories for changes (rescan on the interval only).
    #[arg(long)]
    pub no_discovery_watch: bool,
    /// Do not ask git for the worktrees of --workdir.
    #[arg(long)]
    pub no_git_worktrees: bool,
    /// Turn agent discovery off entirely.
    #[arg(long)]
    pub no_discovery: bool,
}

impl DiscoveryArgs {
    /// The configuration these flags give for `workdir`.
    pub fn config(&self, workdir: &Path) -> DiscoveryConfig {
        if self.no_discovery {
            return DiscoveryConfig::disabled();
        }
        let mut config = DiscoveryConfig::for_workdir(workdir.to_path_buf());
        if !self.worktree_roots.is_empty() {
            config.roots = self
                .worktree_roots
                .iter()
                .map(|root| workdir.join(root))
                .collect();
        }
        config.interval = (self.discovery_interval_seconds > 0)
            .then(|| Duration::from_secs(self.discovery_interval_seconds));
        config.watch = !self.no_discovery_watch;
        config.git = !self.no_git_worktrees;
        config
    }
}
