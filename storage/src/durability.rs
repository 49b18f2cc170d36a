//! How hard a commit tries to reach the disk before the engine acknowledges it.

/// How often sled writes and syncs its buffers in the background under
/// [`Durability::NoSync`], in milliseconds: at most this much acknowledged work is lost on
/// `kill -9`.
pub const NO_SYNC_FLUSH_EVERY_MS: u64 = 500;

/// The durability of the embedded backends' commits, chosen with the URL query
/// `?durability=immediate` (the default) or `?durability=none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is on disk (fsync) before it is acknowledged: a crash, `kill -9` or power
    /// loss loses nothing that was acknowledged.
    #[default]
    Immediate,
    /// Commits are acknowledged before they are synced to disk. Acknowledged writes since the
    /// last sync are lost on power loss or an operating-system crash (redb and sled), and also
    /// on `kill -9` of the process (sled, which keeps them in its own buffers and syncs every
    /// [`NO_SYNC_FLUSH_EVERY_MS`] in this mode).
    /// What survives is still a consistent state of some earlier moment.
    NoSync,
}

impl Durability {
    /// The URL query value that selects this mode.
    pub fn as_query_value(self) -> &'static str {
        match self {
            Durability::Immediate => "immediate",
            Durability::NoSync => "none",
        }
    }

    /// Reads a `durability=` query value.
    pub fn from_query_value(value: &str) -> Option<Self> {
        match value {
            "immediate" => Some(Durability::Immediate),
            "none" => Some(Durability::NoSync),
            _ => None,
        }
    }
}
