//! The admin token: system operations (the queue API, routing rules, migration, discovery,
//! other agents' records) and re-issuing agent tokens need it.
//!
//! Given with `--admin-token` (or `SWITCHBOARD_ADMIN_TOKEN`), it is hashed in memory and never
//! written anywhere. Otherwise the first start in token mode generates one, prints it once on
//! stderr, and keeps only its hash in [`ADMIN_HASH_FILE`] under `--workdir` (mode 0600); later
//! starts read the hash and print nothing. Deleting the file makes the next start issue a new
//! one.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::tokens::{self, TokenHash, ADMIN_TOKEN_BYTES_MIN};

/// Where the generated admin token's hash is kept, relative to `--workdir`.
pub const ADMIN_HASH_FILE: &str = ".switchboard/admin-token.sha256";

/// Where the admin token comes from.
pub enum AdminSource<'a> {
    /// `--admin-token` / `SWITCHBOARD_ADMIN_TOKEN`.
    Given(&'a str),
    /// Generated once, its hash kept under this working directory.
    Workdir(&'a Path),
}

/// The admin token's hash, generating (and printing, with `announce`) a token on first use of
/// a working directory. Errors are one paragraph saying what to do.
pub fn admin_hash(
    source: AdminSource<'_>,
    announce: impl FnOnce(&str, &Path),
) -> Result<TokenHash, String> {
    match source {
        AdminSource::Given(token) => {
            let token = token.trim();
            if token.len() < ADMIN_TOKEN_BYTES_MIN {
                return Err(format!(
                    "switchboard: the admin token given with --admin-token (or \
                     SWITCHBOARD_ADMIN_TOKEN) is {} bytes; it must be at least \
                     {ADMIN_TOKEN_BYTES_MIN}. Choose a long random one (e.g. `openssl rand -hex \
                     32`), or leave both unset to have one generated and printed once.",
                    token.len()
                ));
            }
            Ok(TokenHash::of(token))
        }
        AdminSource::Workdir(workdir) => {
            let path = workdir.join(ADMIN_HASH_FILE);
            match std::fs::read_to_string(&path) {
                Ok(text) => TokenHash::from_hex(&text).ok_or_else(|| {
                    format!(
                        "switchboard: {} does not hold an admin token hash (64 hex digits). \
                         Delete it to have a new admin token generated and printed at the next \
                         start, or pass --admin-token.",
                        path.display()
                    )
                }),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    let token = tokens::generate();
                    let hash = TokenHash::of(&token);
                    write_hash_file(&path, &hash)?;
                    announce(&token, &path);
                    Ok(hash)
                }
                Err(error) => Err(format!(
                    "switchboard: cannot read the admin token hash in {}: {error}. Fix its \
                     permissions, or pass --admin-token.",
                    path.display()
                )),
            }
        }
    }
}

/// What `serve` prints on stderr when it generated the admin token: the only time it is shown.
pub fn announcement(token: &str, path: &Path) -> String {
    format!(
        "switchboard: no admin token was given, so one was generated. It is shown this once \
         only: the server keeps just its SHA-256 hash, in {}.\n\
         switchboard admin token: {token}\n\
         Keep it somewhere safe: it is needed for the queue API, routing rules, migration, \
         discovery, deleting agents and re-issuing agent tokens. To replace it, delete that \
         file and restart (a new one is printed), or pass --admin-token \
         (SWITCHBOARD_ADMIN_TOKEN).",
        path.display()
    )
}

fn write_hash_file(path: &PathBuf, hash: &TokenHash) -> Result<(), String> {
    let fail = |error: std::io::Error| {
        format!(
            "switchboard: cannot keep the admin token hash in {}: {error}. Check that --workdir \
             is writable, or pass --admin-token.",
            path.display()
        )
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Only a hash, but still nobody else's business.
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(format!("{}\n", hash.to_hex()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_generates_and_announces_later_starts_reuse_silently() {
        let dir = tempfile::tempdir().unwrap();
        let mut shown = None;
        let first = admin_hash(AdminSource::Workdir(dir.path()), |token, _| {
            shown = Some(token.to_string())
        })
        .unwrap();
        let token = shown.expect("the first start shows the token");
        assert!(first.matches(&TokenHash::of(&token)));
        let second = admin_hash(AdminSource::Workdir(dir.path()), |_, _| {
            panic!("a later start must not show a token")
        })
        .unwrap();
        assert!(second.matches(&first));
        let text = std::fs::read_to_string(dir.path().join(ADMIN_HASH_FILE)).unwrap();
        assert!(!text.contains(&token), "only the hash is kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(ADMIN_HASH_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_short_given_admin_token_is_refused_with_advice() {
        let error = admin_hash(AdminSource::Given("short"), |_, _| {}).unwrap_err();
        assert!(error.contains("at least 16"), "{error}");
    }

    #[test]
    fn a_garbled_hash_file_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ADMIN_HASH_FILE);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "garbage").unwrap();
        let error = admin_hash(AdminSource::Workdir(dir.path()), |_, _| {}).unwrap_err();
        assert!(error.contains("Delete it"), "{error}");
    }
}
