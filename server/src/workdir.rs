//! The serving server's claim on its `--workdir`: an exclusive lock, and the stable owner id
//! kept there.
//!
//! The owner id names this server as owner of a Redis prefix. It is made once per workdir and
//! read back at every start, so a server restarted after `kill -9` is known as the same owner
//! and reclaims its lease at once instead of waiting it out. That is safe only if two live
//! servers never share a workdir (the second would silently take the first one's lease), so
//! the workdir is locked for as long as the server runs; the operating system drops the lock
//! when the process dies, however it dies.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Where the server keeps its own files, relative to `--workdir` (as the admin token hash).
const STATE_DIRECTORY: &str = ".switchboard";
/// The lock file, relative to [`STATE_DIRECTORY`]; it holds the pid of the server locking it.
const LOCK_FILE: &str = "serve.lock";
/// The owner id file, relative to [`STATE_DIRECTORY`].
const OWNER_ID_FILE: &str = "owner-id";
/// Random bytes in a new owner id.
const OWNER_ID_RANDOM_BYTES: usize = 8;
/// Longest owner id read back from the file, in bytes (anything longer was not written by us).
const OWNER_ID_BYTES_MAX: usize = 256;

/// The workdir, locked until this value is dropped (or the process ends).
#[derive(Debug)]
pub struct WorkdirLock {
    /// Holding the open file holds the lock.
    _file: File,
    directory: PathBuf,
}

impl WorkdirLock {
    /// Locks `workdir` for this server, or says which server holds it and what to do.
    pub fn acquire(workdir: &Path) -> Result<Self, String> {
        let directory = workdir.join(STATE_DIRECTORY);
        std::fs::create_dir_all(&directory).map_err(|error| {
            format!(
                "switchboard: cannot create {}: {error}. Check that --workdir names a directory \
                 this user may write to.",
                directory.display()
            )
        })?;
        let path = directory.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|error| {
                format!(
                    "switchboard: cannot open the lock file {}: {error}",
                    path.display()
                )
            })?;
        // Called through the trait: `File::try_lock` of std is newer than this workspace's
        // minimum Rust version.
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                };
                return Err(format!(
                    "switchboard: another switchboard server{holder} is running with the workdir \
                     {}: it holds {}. Two servers must not share a workdir (they would share \
                     one owner id and take each other's storage ownership). Stop that server, \
                     or start this one with its own --workdir.",
                    workdir.display(),
                    path.display()
                ));
            }
            Err(fs4::TryLockError::Error(error)) => {
                return Err(format!(
                    "switchboard: cannot lock {}: {error}. The workdir must be on a file system \
                     that supports file locks.",
                    path.display()
                ))
            }
        }
        // The pid is only for the message above; failing to write it changes nothing.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(Self {
            _file: file,
            directory,
        })
    }

    /// This workdir's owner id: read back, or made (`host:random`) and kept on the first start.
    pub fn owner_id(&self) -> Result<String, String> {
        let path = self.directory.join(OWNER_ID_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let id = text.trim();
                if id.is_empty() || id.len() > OWNER_ID_BYTES_MAX || id.contains(char::is_control) {
                    return Err(format!(
                        "switchboard: {} does not hold an owner id; delete it and start again \
                         (a new one is made)",
                        path.display()
                    ));
                }
                Ok(id.to_string())
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let id = new_owner_id()?;
                // Written aside and renamed, so a crash never leaves half an id behind.
                let partial = self.directory.join(format!("{OWNER_ID_FILE}.new"));
                std::fs::write(&partial, format!("{id}\n"))
                    .and_then(|()| std::fs::rename(&partial, &path))
                    .map_err(|error| {
                        format!("switchboard: cannot write {}: {error}", path.display())
                    })?;
                Ok(id)
            }
            Err(error) => Err(format!(
                "switchboard: cannot read {}: {error}",
                path.display()
            )),
        }
    }
}

/// `host:random`, so that a person reading "owned by ..." knows which machine holds a prefix.
fn new_owner_id() -> Result<String, String> {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    let mut random = [0u8; OWNER_ID_RANDOM_BYTES];
    getrandom::fill(&mut random).map_err(|error| {
        format!("switchboard: cannot read randomness for a new owner id: {error}")
    })?;
    let hex: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok(format!("{host}:{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_workdir_is_refused_and_names_the_holder() {
        let workdir = tempfile::tempdir().unwrap();
        let first = WorkdirLock::acquire(workdir.path()).unwrap();
        let refused = WorkdirLock::acquire(workdir.path()).unwrap_err();
        assert!(refused.contains("another switchboard server"), "{refused}");
        assert!(
            refused.contains(&std::process::id().to_string()),
            "{refused}"
        );
        assert!(refused.contains("--workdir"), "{refused}");
        drop(first);
        assert!(
            WorkdirLock::acquire(workdir.path()).is_ok(),
            "free once dropped"
        );
    }

    #[test]
    fn the_owner_id_is_made_once_and_read_back_after() {
        let workdir = tempfile::tempdir().unwrap();
        let lock = WorkdirLock::acquire(workdir.path()).unwrap();
        let first = lock.owner_id().unwrap();
        assert!(first.contains(':'), "host:random, got {first}");
        drop(lock);
        let again = WorkdirLock::acquire(workdir.path()).unwrap();
        assert_eq!(again.owner_id().unwrap(), first);
    }

    #[test]
    fn two_workdirs_get_different_owner_ids() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let one = WorkdirLock::acquire(one.path())
            .unwrap()
            .owner_id()
            .unwrap();
        let two = WorkdirLock::acquire(two.path())
            .unwrap()
            .owner_id()
            .unwrap();
        assert_ne!(one, two);
    }
}
