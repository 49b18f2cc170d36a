//! Whether Redis itself keeps what switchboard acknowledges: read once at open with
//! `CONFIG GET`, logged, and reported to the server.

use std::collections::HashMap;
use std::fmt;

use super::link::Conn;

/// How the Redis server persists its data, as far as `CONFIG GET` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisPersistence {
    /// The append-only file is on: acknowledged messages survive a Redis restart, except those
    /// of the last second with `appendfsync everysec`, or more with `no`.
    AppendOnly {
        /// The `appendfsync` setting: `always`, `everysec` or `no`.
        fsync: String,
    },
    /// Only RDB snapshots: messages acknowledged since the last snapshot are lost if Redis
    /// restarts.
    SnapshotsOnly {
        /// The `save` setting (snapshot points).
        save: String,
    },
    /// Nothing is persisted: a Redis restart loses every message.
    None,
    /// `CONFIG GET` is not allowed (common on managed Redis), so persistence is unknown.
    Unknown {
        /// Why it could not be checked.
        reason: String,
    },
}

impl RedisPersistence {
    /// True when acknowledged messages survive a Redis restart (AOF with fsync `always` or
    /// `everysec`, the latter losing at most about a second).
    pub fn is_durable(&self) -> bool {
        matches!(self, RedisPersistence::AppendOnly { fsync } if fsync != "no")
    }

    /// Reads the settings; never fails (an error becomes [`RedisPersistence::Unknown`]).
    pub(crate) fn query(connection: &mut Conn) -> Self {
        // One command at a time: a Redis Cluster connection does not pipeline.
        let settings: Result<Vec<HashMap<String, String>>, _> =
            ["appendonly", "appendfsync", "save"]
                .into_iter()
                .map(|name| redis::cmd("CONFIG").arg("GET").arg(name).query(connection))
                .collect();
        let settings = match settings {
            Ok(settings) => settings.into_iter().flatten().collect::<HashMap<_, _>>(),
            Err(error) => {
                return RedisPersistence::Unknown {
                    reason: error.to_string(),
                }
            }
        };
        let appendonly = settings.get("appendonly").map(String::as_str);
        let save = settings.get("save").cloned().unwrap_or_default();
        match appendonly {
            Some("yes") => RedisPersistence::AppendOnly {
                fsync: settings
                    .get("appendfsync")
                    .cloned()
                    .unwrap_or_else(|| "everysec".into()),
            },
            Some(_) if !save.trim().is_empty() => RedisPersistence::SnapshotsOnly { save },
            Some(_) => RedisPersistence::None,
            None => RedisPersistence::Unknown {
                reason: "CONFIG GET appendonly returned nothing".into(),
            },
        }
    }

    /// Logs what a person running switchboard should know about this setting.
    pub(crate) fn log(&self, shown_url: &str) {
        const ENABLE_AOF: &str =
            "enable AOF with `CONFIG SET appendonly yes` and `CONFIG SET appendfsync everysec` \
             (and put them in redis.conf)";
        match self {
            RedisPersistence::AppendOnly { fsync } if fsync == "no" => tracing::warn!(
                url = shown_url,
                "Redis has AOF on but appendfsync no: the OS decides when data reaches disk, so \
                 a machine crash can lose acknowledged messages; use appendfsync everysec or always"
            ),
            RedisPersistence::AppendOnly { fsync } => {
                tracing::info!(url = shown_url, appendfsync = %fsync, "Redis persists with AOF")
            }
            RedisPersistence::SnapshotsOnly { save } => tracing::warn!(
                url = shown_url, save = %save,
                "Redis persists only RDB snapshots: messages acknowledged since the last snapshot \
                 would be lost if Redis restarts; {ENABLE_AOF}"
            ),
            RedisPersistence::None => tracing::warn!(
                url = shown_url,
                "Redis is not persisting at all (no AOF, no snapshots): every acknowledged message \
                 would be lost if Redis restarts; {ENABLE_AOF}"
            ),
            RedisPersistence::Unknown { reason } => tracing::warn!(
                url = shown_url, %reason,
                "could not check whether Redis persists its data (CONFIG GET refused, common on \
                 managed Redis): make sure AOF is on, or acknowledged messages may be lost on a \
                 Redis restart"
            ),
        }
    }
}

impl fmt::Display for RedisPersistence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisPersistence::AppendOnly { fsync } => write!(f, "aof (appendfsync {fsync})"),
            RedisPersistence::SnapshotsOnly { save } => {
                write!(f, "rdb snapshots only (save {save:?})")
            }
            RedisPersistence::None => f.write_str("none"),
            RedisPersistence::Unknown { reason } => write!(f, "unknown ({reason})"),
        }
    }
}
