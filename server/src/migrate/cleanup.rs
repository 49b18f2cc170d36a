//! Cleanup: the old helper scripts are moved aside, never deleted, to `NAME.pre-switchboard`
//! beside where they were (a number is added if that name is taken). Where
//! `send-claude-message.sh` stood, a two-line shim calling `switchboard tmux-send` is put, so
//! agent prompts that still call the old script keep working through the queue.
//!
//! Scripts are looked for in the workdir, its `scripts/` directory, and each agent worktree.

use std::path::{Path, PathBuf};

use super::model::CleanupRecord;
use super::settings::RunSettings;
use super::tmux::discover::known_worktrees;

/// Suffix of a moved-aside script.
pub const MOVED_SUFFIX: &str = ".pre-switchboard";
/// The old sending script, replaced by a shim.
pub const SEND_SCRIPT: &str = "send-claude-message.sh";
/// The line that marks a shim, so a later run leaves it alone.
const SHIM_MARK: &str = "# Installed by `switchboard migrate`";
/// Bytes of a script read to tell whether it is a shim (the mark is on its second line).
const SHIM_HEAD_BYTES: u64 = 512;
/// Most numbered names tried when `NAME.pre-switchboard` is taken.
const FREE_NAME_ATTEMPTS_MAX: usize = 100;

/// Directories looked in.
fn search_dirs(settings: &RunSettings) -> Vec<PathBuf> {
    let mut dirs = vec![settings.workdir.clone(), settings.workdir.join("scripts")];
    dirs.extend(
        known_worktrees(&settings.workdir)
            .into_iter()
            .map(|(_, dir)| dir),
    );
    dirs
}

/// The helper scripts that exist, in search order.
pub fn find_scripts(settings: &RunSettings) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in search_dirs(settings) {
        for name in &settings.helper_scripts {
            let path = dir.join(name);
            // A symlink is moved too (it is what the agents call); a directory is not a script.
            if path.is_file() && !is_shim(&path) && !found.contains(&path) {
                found.push(path);
            }
        }
    }
    found
}

/// Moves every helper script aside (installing the shim for the send script) and says what
/// it did; a script that cannot be moved is reported in the error list and left in place.
pub fn run(settings: &RunSettings) -> (Vec<CleanupRecord>, Vec<String>) {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for path in find_scripts(settings) {
        match move_aside(&path, settings) {
            Ok(record) => records.push(record),
            Err(error) => errors.push(format!("{}: {error}", path.display())),
        }
    }
    (records, errors)
}

fn is_shim(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(SHIM_HEAD_BYTES).read_to_end(&mut head))
        .is_ok_and(|_| String::from_utf8_lossy(&head).contains(SHIM_MARK))
}

fn move_aside(path: &Path, settings: &RunSettings) -> std::io::Result<CleanupRecord> {
    let target = free_name(path)?;
    std::fs::rename(path, &target)?;
    let is_send_script = path.file_name().is_some_and(|name| name == SEND_SCRIPT);
    let shim = is_send_script && write_shim(path, &target, &settings.server_url).is_ok();
    Ok(CleanupRecord {
        original: path.display().to_string(),
        moved_to: target.display().to_string(),
        shim,
    })
}

fn free_name(path: &Path) -> std::io::Result<PathBuf> {
    let base = format!("{}{MOVED_SUFFIX}", path.display());
    let first = PathBuf::from(&base);
    if !first.exists() {
        return Ok(first);
    }
    (1..=FREE_NAME_ATTEMPTS_MAX)
        .map(|n| PathBuf::from(format!("{base}.{n}")))
        .find(|candidate| !candidate.exists())
        .ok_or_else(|| std::io::Error::other("no free name to move it to"))
}

/// Single-quotes `text` for sh.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn write_shim(path: &Path, original: &Path, server_url: &str) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let script = format!(
        "#!/bin/sh\n{SHIM_MARK}; the old script is {}.\n\
         exec {} tmux-send --server {} \"$@\"\n",
        original.display(),
        sh_quote(&exe.display().to_string()),
        sh_quote(server_url)
    );
    std::fs::write(path, script)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::settings::StartRequest;

    fn settings(workdir: &Path) -> RunSettings {
        RunSettings::check(
            &StartRequest::default(),
            None,
            workdir.to_path_buf(),
            "http://127.0.0.1:9".into(),
        )
        .unwrap()
    }

    #[test]
    fn scripts_are_moved_aside_not_deleted_and_the_send_script_gets_a_shim() {
        let dir = std::env::temp_dir().join(format!("sb-cleanup-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("scripts")).unwrap();
        std::fs::write(dir.join(SEND_SCRIPT), "old send").unwrap();
        std::fs::write(dir.join("scripts/schedule_with_note.sh"), "old schedule").unwrap();
        std::fs::write(dir.join("unrelated.sh"), "keep").unwrap();
        let (records, errors) = run(&settings(&dir));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(records.len(), 2, "{records:?}");
        let moved =
            std::fs::read_to_string(format!("{}/{SEND_SCRIPT}{MOVED_SUFFIX}", dir.display()));
        assert_eq!(moved.unwrap(), "old send");
        let shim = std::fs::read_to_string(dir.join(SEND_SCRIPT)).unwrap();
        assert!(
            shim.contains("tmux-send --server 'http://127.0.0.1:9'"),
            "{shim}"
        );
        assert!(dir
            .join("scripts/schedule_with_note.sh.pre-switchboard")
            .exists());
        assert!(!dir.join("scripts/schedule_with_note.sh").exists());
        assert!(dir.join("unrelated.sh").exists());
        assert!(
            find_scripts(&settings(&dir)).is_empty(),
            "a shim is not moved again"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
