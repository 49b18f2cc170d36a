//! The worktrees `git worktree list --porcelain` reports for the working directory.
//!
//! The main worktree (the first entry) is not an agent: it is the checkout the operator and
//! the server work in, and its `CLAUDE.md` usually describes the whole project. Bare entries
//! and entries git marks `prunable` (their directory is gone) are skipped too, so an agent
//! whose worktree was deleted is reported gone rather than found.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest time `git worktree list` may take before the scan goes on without it.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most worktrees read from git's answer.
pub const GIT_WORKTREES_MAX: usize = 10_000;

/// One entry of `git worktree list --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Worktree {
    /// Its directory.
    pub path: PathBuf,
    /// The branch checked out (`refs/heads/...`), if any.
    pub branch: Option<String>,
    /// The repository's bare entry.
    pub bare: bool,
    /// Git says the directory is gone.
    pub prunable: bool,
}

/// Reads porcelain output: blocks separated by blank lines, each starting `worktree PATH`.
pub fn parse_porcelain(text: &str) -> Vec<Worktree> {
    let mut worktrees = Vec::new();
    let mut current: Option<Worktree> = None;
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("worktree ") {
            worktrees.extend(current.take());
            current = Some(Worktree {
                path: PathBuf::from(path),
                ..Worktree::default()
            });
            continue;
        }
        let Some(worktree) = current.as_mut() else {
            continue;
        };
        if let Some(branch) = line.strip_prefix("branch ") {
            worktree.branch = Some(branch.to_string());
        } else if line == "bare" {
            worktree.bare = true;
        } else if line == "prunable" || line.starts_with("prunable ") {
            worktree.prunable = true;
        }
    }
    worktrees.extend(current);
    worktrees.truncate(GIT_WORKTREES_MAX);
    worktrees
}

/// The linked worktrees that may hold agents: all but the main one, bare and prunable ones.
pub fn agent_candidates(worktrees: Vec<Worktree>) -> Vec<PathBuf> {
    worktrees
        .into_iter()
        .skip(1)
        .filter(|worktree| !worktree.bare && !worktree.prunable)
        .map(|worktree| worktree.path)
        .collect()
}

/// Runs `git -C workdir worktree list --porcelain`. `Ok(empty)` when `workdir` is not in a git
/// repository or git is not installed: discovery then uses the worktree roots alone.
pub async fn list(workdir: &Path) -> Result<Vec<Worktree>, String> {
    let mut command = tokio::process::Command::new("git");
    command
        .arg("-C")
        .arg(workdir)
        .args(["worktree", "list", "--porcelain"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(GIT_TIMEOUT, command.output()).await {
        Err(_) => {
            return Err(format!(
                "git worktree list took longer than {GIT_TIMEOUT:?}"
            ))
        }
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Ok(Err(error)) => return Err(format!("cannot run git: {error}")),
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        // Not a repository (the usual case outside git) is not a problem worth reporting.
        tracing::debug!(
            stderr = %String::from_utf8_lossy(&output.stderr),
            "git worktree list failed; using worktree roots only"
        );
        return Ok(Vec::new());
    }
    Ok(parse_porcelain(&String::from_utf8_lossy(&output.stdout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORCELAIN: &str = "worktree /repo\nHEAD 1111\nbranch refs/heads/main\n\n\
        worktree /repo/worktrees/tester\nHEAD 2222\nbranch refs/heads/tester\n\n\
        worktree /elsewhere/docs\nHEAD 3333\ndetached\nlocked reason here\n\n\
        worktree /tmp/deleted\nHEAD 4444\nbranch refs/heads/old\nprunable gitdir file points to non-existent location\n";

    #[test]
    fn porcelain_blocks_become_worktrees() {
        let worktrees = parse_porcelain(PORCELAIN);
        assert_eq!(worktrees.len(), 4);
        assert_eq!(worktrees[1].path, PathBuf::from("/repo/worktrees/tester"));
        assert_eq!(worktrees[1].branch.as_deref(), Some("refs/heads/tester"));
        assert_eq!(worktrees[2].branch, None);
        assert!(worktrees[3].prunable);
    }

    #[test]
    fn the_main_worktree_and_prunable_ones_are_not_candidates() {
        let candidates = agent_candidates(parse_porcelain(PORCELAIN));
        assert_eq!(
            candidates,
            [
                PathBuf::from("/repo/worktrees/tester"),
                PathBuf::from("/elsewhere/docs")
            ]
        );
    }

    #[test]
    fn bare_repositories_are_skipped() {
        let text = "worktree /repo.git\nbare\n\nworktree /work/a\nHEAD 1\nbranch refs/heads/a\n";
        assert_eq!(
            agent_candidates(parse_porcelain(text)),
            [PathBuf::from("/work/a")]
        );
    }

    #[tokio::test]
    async fn a_directory_outside_git_has_no_worktrees() {
        let directory = std::env::temp_dir();
        let listed = list(&directory).await.unwrap();
        assert!(listed.len() <= 1, "{listed:?}");
    }
}
