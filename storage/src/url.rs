//! Choosing a backend by URL: `redb:PATH`, `sled:PATH`, `memory:`, `redis://...`,
//! `rediss://...`.

use std::path::PathBuf;

use switchboard_engine::{MemoryStorage, Storage};

use crate::{Durability, OpenError};

/// A storage URL taken apart: which backend, and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// `redb:PATH[?durability=immediate|none]`: one redb file.
    Redb {
        /// The file.
        path: PathBuf,
        /// How hard commits try to reach the disk.
        durability: Durability,
    },
    /// `sled:PATH[?durability=immediate|none]`: one sled directory.
    Sled {
        /// The directory.
        path: PathBuf,
        /// How hard commits try to reach the disk.
        durability: Durability,
    },
    /// `memory:`: nothing survives the process.
    Memory,
    /// `redis://...`, `rediss://...` (TLS), `redis+cluster://...` or `redis+sentinel://...`:
    /// the URL is handed to the Redis backend whole.
    Redis {
        /// The URL as given.
        url: String,
    },
}

impl StorageUrl {
    /// Reads a storage URL. A path may be written `redb:/abs/path`, `redb:relative/path` or
    /// `redb:///abs/path`.
    pub fn parse(url: &str) -> Result<Self, OpenError> {
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(OpenError::UnknownScheme {
                url: url.to_string(),
            });
        };
        match scheme {
            "redb" => {
                let (path, durability) =
                    parse_file_url(url, rest, "redb:/var/lib/switchboard.redb")?;
                Ok(StorageUrl::Redb { path, durability })
            }
            "sled" => {
                let (path, durability) =
                    parse_file_url(url, rest, "sled:/var/lib/switchboard.sled")?;
                Ok(StorageUrl::Sled { path, durability })
            }
            "memory" if rest.is_empty() || rest == "//" => Ok(StorageUrl::Memory),
            "memory" => Err(OpenError::BadOption {
                url: url.to_string(),
                problem: "memory: takes no path or options".to_string(),
            }),
            "redis" | "rediss" | "redis+cluster" | "redis+sentinel" => Ok(StorageUrl::Redis {
                url: url.to_string(),
            }),
            _ => Err(OpenError::UnknownScheme {
                url: url.to_string(),
            }),
        }
    }
}

/// Splits `PATH[?OPTIONS]` and reads the options.
fn parse_file_url(
    url: &str,
    rest: &str,
    example: &'static str,
) -> Result<(PathBuf, Durability), OpenError> {
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    // `redb:///abs/path` is the URL spelling of `redb:/abs/path`; `redb://name/...` would name a
    // host, which a file store has not, so it is refused rather than guessed at.
    let path = match path.strip_prefix("//") {
        Some(absolute) if absolute.starts_with('/') => absolute,
        Some(_) => {
            return Err(OpenError::MissingPath {
                url: url.to_string(),
                example,
            })
        }
        None => path,
    };
    if path.is_empty() {
        return Err(OpenError::MissingPath {
            url: url.to_string(),
            example,
        });
    }
    let mut durability = Durability::default();
    for option in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|o| !o.is_empty())
    {
        let bad = |problem: String| OpenError::BadOption {
            url: url.to_string(),
            problem,
        };
        match option.split_once('=') {
            Some(("durability", value)) => {
                durability = Durability::from_query_value(value)
                    .ok_or_else(|| bad(format!("durability={value} is not immediate or none")))?;
            }
            _ => return Err(bad(format!("unknown option {option:?}"))),
        }
    }
    Ok((PathBuf::from(path), durability))
}

/// How a server opens shared storage, beyond what the URL says. Only the Redis backend, which
/// several servers can reach at once, uses these; the others ignore them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// A stable id for this server (e.g. kept in its working directory): a server restarted
    /// with the id of the lease's holder takes the lease back at once instead of waiting it
    /// out. `None`: a fresh id per process.
    pub owner_id: Option<String>,
    /// Where this server serves its API, stored beside the owner lease so that standbys and
    /// refusals can name it.
    pub advertise_url: Option<String>,
    /// How long the owner lease lasts without renewal (`None`: the backend's default).
    pub owner_lease: Option<std::time::Duration>,
}

/// Opens the store a URL names: `redb:PATH`, `sled:PATH` (both with an optional
/// `?durability=immediate|none`, see [`Durability`]), `memory:`, or a Redis URL
/// (`redis://...`, `rediss://...`, `redis+cluster://...`, `redis+sentinel://...`).
pub fn open(url: &str) -> Result<Box<dyn Storage>, OpenError> {
    open_with(url, &OpenOptions::default())
}

/// [`open`], with the options a server sharing Redis with others passes. Fails with
/// [`OpenError::Owned`] when another live server owns the Redis prefix.
pub fn open_with(url: &str, options: &OpenOptions) -> Result<Box<dyn Storage>, OpenError> {
    match StorageUrl::parse(url)? {
        StorageUrl::Memory => Ok(Box::new(MemoryStorage::new())),
        StorageUrl::Redb { path, durability } => open_redb(url, path, durability),
        StorageUrl::Sled { path, durability } => open_sled(url, path, durability),
        StorageUrl::Redis { url } => open_redis(&url, options),
    }
}

#[cfg(feature = "redb")]
fn open_redb(
    _url: &str,
    path: PathBuf,
    durability: Durability,
) -> Result<Box<dyn Storage>, OpenError> {
    Ok(Box::new(crate::RedbStorage::open(path, durability)?))
}

#[cfg(not(feature = "redb"))]
fn open_redb(url: &str, _: PathBuf, _: Durability) -> Result<Box<dyn Storage>, OpenError> {
    Err(OpenError::NotBuilt {
        url: url.to_string(),
        backend: "redb",
    })
}

#[cfg(feature = "sled")]
fn open_sled(
    _url: &str,
    path: PathBuf,
    durability: Durability,
) -> Result<Box<dyn Storage>, OpenError> {
    Ok(Box::new(crate::SledStorage::open(path, durability)?))
}

#[cfg(not(feature = "sled"))]
fn open_sled(url: &str, _: PathBuf, _: Durability) -> Result<Box<dyn Storage>, OpenError> {
    Err(OpenError::NotBuilt {
        url: url.to_string(),
        backend: "sled",
    })
}

/// Opens the Redis backend with its default options (prefix `switchboard:`) and `options`.
#[cfg(feature = "redis")]
fn open_redis(url: &str, options: &OpenOptions) -> Result<Box<dyn Storage>, OpenError> {
    use crate::redis::{RedisOpenError, RedisOptions, RedisStorage};
    let defaults = RedisOptions::default();
    let redis_options = RedisOptions {
        owner_id: options.owner_id.clone(),
        advertise_url: options.advertise_url.clone(),
        owner_lease: options.owner_lease.unwrap_or(defaults.owner_lease),
        ..defaults
    };
    let shown_url = crate::redis::redact_url(url);
    match RedisStorage::open(url, redis_options) {
        Ok(storage) => Ok(Box::new(storage)),
        Err(RedisOpenError::Owned(owned)) => Err(OpenError::Owned {
            url: shown_url,
            prefix: owned.prefix,
            holder: owned.holder,
            active_url: owned.active_url,
            lease_remaining_ms: owned.lease_remaining_ms,
        }),
        Err(RedisOpenError::Storage(error)) => Err(OpenError::Backend {
            url: shown_url,
            detail: error.to_string(),
        }),
    }
}

#[cfg(not(feature = "redis"))]
fn open_redis(url: &str, _: &OpenOptions) -> Result<Box<dyn Storage>, OpenError> {
    Err(OpenError::NotBuilt {
        url: url.to_string(),
        backend: "redis",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(url: &str) -> StorageUrl {
        StorageUrl::parse(url).unwrap_or_else(|error| panic!("{url} should parse: {error}"))
    }

    #[test]
    fn file_urls_give_path_and_durability() {
        assert_eq!(
            parsed("redb:/var/lib/q.redb"),
            StorageUrl::Redb {
                path: "/var/lib/q.redb".into(),
                durability: Durability::Immediate
            }
        );
        assert_eq!(
            parsed("redb:///var/lib/q.redb?durability=none"),
            StorageUrl::Redb {
                path: "/var/lib/q.redb".into(),
                durability: Durability::NoSync
            }
        );
        assert_eq!(
            parsed("sled:data/q?durability=immediate"),
            StorageUrl::Sled {
                path: "data/q".into(),
                durability: Durability::Immediate
            }
        );
        assert_eq!(parsed("memory:"), StorageUrl::Memory);
        assert_eq!(
            parsed("rediss://cache:6380/2"),
            StorageUrl::Redis {
                url: "rediss://cache:6380/2".into()
            }
        );
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        let unknown = StorageUrl::parse("postgres://x").expect_err("unknown scheme");
        assert!(unknown.to_string().contains("redb:PATH"), "{unknown}");
        let no_scheme = StorageUrl::parse("/var/lib/q").expect_err("no scheme");
        assert!(matches!(no_scheme, OpenError::UnknownScheme { .. }));
        let host = StorageUrl::parse("redb://data/q.redb").expect_err("a host, not a path");
        assert!(matches!(host, OpenError::MissingPath { .. }), "{host}");
        let no_path = StorageUrl::parse("sled:").expect_err("no path");
        assert!(no_path.to_string().contains("sled:/var/lib"), "{no_path}");
        let bad_value = StorageUrl::parse("redb:x?durability=maybe").expect_err("bad value");
        assert!(bad_value.to_string().contains("maybe"), "{bad_value}");
        let bad_option = StorageUrl::parse("redb:x?fsync=0").expect_err("bad option");
        assert!(bad_option.to_string().contains("fsync"), "{bad_option}");
    }

    #[cfg(feature = "redb")]
    #[test]
    fn a_missing_directory_is_created() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("new/nested/q.redb");
        open(&format!("redb:{}", path.display()))?;
        assert!(path.is_file());
        Ok(())
    }

    #[cfg(feature = "sled")]
    #[test]
    fn a_directory_that_cannot_be_made_is_named() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let blocker = dir.path().join("a-file");
        std::fs::write(&blocker, b"not a directory")?;
        let url = format!("sled:{}", blocker.join("q.sled").display());
        match open(&url) {
            Err(OpenError::NoDirectory { directory, .. }) => assert_eq!(directory, blocker),
            Err(other) => panic!("expected NoDirectory, got {other}"),
            Ok(_) => panic!("a store opened under a plain file"),
        }
        Ok(())
    }

    #[test]
    fn memory_opens_empty() -> Result<(), Box<dyn std::error::Error>> {
        let mut storage = open("memory:")?;
        assert_eq!(storage.recover()?, Default::default());
        Ok(())
    }
}
