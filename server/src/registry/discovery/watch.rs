//! Watching the discovered directories with `notify` (inotify on Linux), so that a new
//! worktree, a removed one, or an edited `CLAUDE.md` / `agent.yml` triggers a rescan within
//! [`WATCH_DEBOUNCE`] instead of waiting for the next periodic scan.
//!
//! Every watch is non-recursive: the working directory (roots appearing), each root (agent
//! directories appearing or vanishing), each subdirectory of a root, agent directory and
//! linked git worktree (their agent and declaration files changing) and git's
//! worktree list (`.git/worktrees`, or `.git` until that exists). Events only *signal*; the
//! scan itself decides what changed, so lost or merged events cost nothing but latency.
//!
//! Only events that can change a scan's result signal ([`Scope::is_relevant`]): an agent or
//! declaration file changing, an entry of the working directory or of a root appearing,
//! vanishing or being renamed, git's worktree list changing, a watched directory vanishing.
//! Agents write in their worktrees all day, and logs or data files may live in the working
//! directory: without this, each of those writes (and the scan's own reads) would cost a scan.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use parking_lot::RwLock;
use tokio::sync::mpsc;

use super::scan::{AGENT_FILES, DECLARATION_FILES};

/// Quiet time after a change before the rescan starts, so that a burst of writes (a
/// `git worktree add` touches many files) costs one scan.
pub const WATCH_DEBOUNCE: Duration = Duration::from_millis(300);
/// Most directories watched at once (each costs an inotify watch).
pub const WATCHED_DIRECTORIES_MAX: usize = 4096;

/// Which events matter, given what is watched.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Directories whose entries appearing or vanishing matter: the working directory and the
    /// worktree roots.
    pub containers: BTreeSet<PathBuf>,
    /// Every watched directory (a watched agent directory vanishing matters).
    pub watched: BTreeSet<PathBuf>,
}

impl Scope {
    /// True when `event` may change what a scan finds.
    pub fn is_relevant(&self, event: &notify::Event) -> bool {
        if matches!(event.kind, EventKind::Access(_)) {
            return false; // reads, the scan's own among them
        }
        let structural = matches!(
            event.kind,
            EventKind::Create(_)
                | EventKind::Remove(_)
                | EventKind::Modify(notify::event::ModifyKind::Name(_))
        );
        event.paths.iter().any(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let parent = path.parent().unwrap_or(Path::new(""));
            AGENT_FILES.contains(&name)
                || DECLARATION_FILES.contains(&name)
                || (structural && self.containers.contains(parent))
                || is_git_worktree_list(path)
                || (structural && self.watched.contains(path))
        })
    }
}

/// `.git/worktrees` or an entry of it: git added or removed a linked worktree.
fn is_git_worktree_list(path: &Path) -> bool {
    let under = |path: &Path| {
        path.file_name().is_some_and(|n| n == "worktrees")
            && path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == ".git")
    };
    under(path) || path.parent().is_some_and(under)
}

/// A set of watched directories that signals on every relevant change in them.
pub struct DirectoryWatcher {
    watcher: RecommendedWatcher,
    watched: BTreeSet<PathBuf>,
    scope: Arc<RwLock<Scope>>,
}

impl DirectoryWatcher {
    /// A watcher that sends on `changed` (without waiting: a full channel already holds a
    /// signal) for every relevant event.
    pub fn new(changed: mpsc::Sender<()>) -> notify::Result<Self> {
        let scope = Arc::new(RwLock::new(Scope::default()));
        let in_scope = scope.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                if in_scope.read().is_relevant(&event) {
                    tracing::trace!(?event, "watched directory changed");
                    let _ = changed.try_send(());
                }
            }
        })?;
        Ok(Self {
            watcher,
            watched: BTreeSet::new(),
            scope,
        })
    }

    /// Watches exactly the existing directories of `wanted` (at most
    /// [`WATCHED_DIRECTORIES_MAX`]), adding and removing watches as needed; entries appearing
    /// or vanishing in `containers` are what matter among structural changes.
    pub fn sync(&mut self, wanted: &BTreeSet<PathBuf>, containers: &BTreeSet<PathBuf>) {
        let wanted: BTreeSet<PathBuf> = wanted
            .iter()
            .filter(|path| path.is_dir())
            .take(WATCHED_DIRECTORIES_MAX)
            .cloned()
            .collect();
        for gone in self.watched.difference(&wanted) {
            // A deleted directory's watch is already gone: nothing to report.
            let _ = self.watcher.unwatch(gone);
        }
        let mut watched = BTreeSet::new();
        for path in &wanted {
            if self.watched.contains(path) {
                watched.insert(path.clone());
                continue;
            }
            match self.watcher.watch(path, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    watched.insert(path.clone());
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot watch directory; periodic rescans still see it")
                }
            }
        }
        *self.scope.write() = Scope {
            containers: containers.clone(),
            watched: watched.clone(),
        };
        self.watched = watched;
    }

    /// The directories watched now.
    pub fn watched(&self) -> &BTreeSet<PathBuf> {
        &self.watched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_subdirectory_of_a_watched_directory_signals() {
        let dir = tempfile::tempdir().unwrap();
        let (sender, mut changed) = mpsc::channel(1);
        let mut watcher = DirectoryWatcher::new(sender).unwrap();
        let watched = BTreeSet::from([dir.path().to_path_buf()]);
        watcher.sync(&watched, &watched);
        assert_eq!(watcher.watched().len(), 1);
        std::fs::create_dir(dir.path().join("new-agent")).unwrap();
        let signal = tokio::time::timeout(Duration::from_secs(5), changed.recv()).await;
        assert!(
            matches!(signal, Ok(Some(()))),
            "no signal for a new directory"
        );
    }

    fn event(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn only_changes_that_can_change_a_scan_are_relevant() {
        use notify::event::{CreateKind, DataChange, ModifyKind, RemoveKind};
        let scope = Scope {
            containers: BTreeSet::from([PathBuf::from("/w"), PathBuf::from("/w/worktrees")]),
            watched: BTreeSet::from([PathBuf::from("/w/worktrees/a")]),
        };
        let data = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let created = EventKind::Create(CreateKind::Folder);
        let removed = EventKind::Remove(RemoveKind::Folder);
        let relevant = [
            event(data, "/w/worktrees/a/CLAUDE.md"),
            event(data, "/w/worktrees/a/agent.yml"),
            event(created, "/w/worktrees/new"),
            event(created, "/w/new-worktrees"),
            event(removed, "/w/worktrees/a"),
            event(created, "/w/.git/worktrees"),
            event(removed, "/w/.git/worktrees/b"),
        ];
        for event in &relevant {
            assert!(scope.is_relevant(event), "{event:?}");
        }
        let irrelevant = [
            event(data, "/w/server.log"),
            event(data, "/w/worktrees/a/src/main.rs"),
            event(created, "/w/worktrees/a/target"),
            event(created, "/w/.git/index.lock"),
            event(
                EventKind::Access(notify::event::AccessKind::Any),
                "/w/worktrees/a/CLAUDE.md",
            ),
        ];
        for event in &irrelevant {
            assert!(!scope.is_relevant(event), "{event:?}");
        }
    }

    #[test]
    fn missing_directories_are_not_watched() {
        let (sender, _changed) = mpsc::channel(1);
        let mut watcher = DirectoryWatcher::new(sender).unwrap();
        let missing = BTreeSet::from([PathBuf::from("/no/such/dir/here")]);
        watcher.sync(&missing, &missing);
        assert!(watcher.watched().is_empty());
    }
}
