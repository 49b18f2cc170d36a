//! Which index (ready, delayed, leased, dead) holds each live message, kept beside Redis.
//!
//! It lets a commit remove an id from exactly the index that holds it (acks and leases are the
//! hot path: one ZREM instead of one per index) and skip records about messages that do not
//! exist, which the fold defines as no-ops and which would otherwise create a partial hash.
//! It is loaded from the indexes at recovery (or before the first commit) and changed only
//! once a commit succeeded, so a retried batch plans exactly the same commands.

use std::collections::HashMap;

use switchboard_engine::MessageId;

use super::keys::Index;

/// A set of indexes, one bit each (a message is in one index; more only if damaged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Places(u8);

impl Places {
    /// In no index: the message does not exist.
    pub(crate) const NONE: Places = Places(0);

    pub(crate) fn only(index: Index) -> Places {
        Places(bit(index))
    }

    pub(crate) fn with(self, index: Index) -> Places {
        Places(self.0 | bit(index))
    }

    pub(crate) fn contains(self, index: Index) -> bool {
        self.0 & bit(index) != 0
    }

    pub(crate) fn is_none(self) -> bool {
        self.0 == 0
    }

    /// The indexes in the set.
    pub(crate) fn indexes(self) -> impl Iterator<Item = Index> {
        Index::ALL
            .into_iter()
            .filter(move |index| self.contains(*index))
    }
}

fn bit(index: Index) -> u8 {
    match index {
        Index::Ready => 1,
        Index::Delayed => 2,
        Index::Leased => 4,
        Index::Dead => 8,
    }
}

/// Every live message's places, as of the last successful commit.
#[derive(Debug, Default)]
pub(crate) struct Placements {
    places: HashMap<MessageId, Places>,
}

impl Placements {
    pub(crate) fn from_map(places: HashMap<MessageId, Places>) -> Self {
        Self { places }
    }

    pub(crate) fn get(&self, id: MessageId) -> Places {
        self.places.get(&id).copied().unwrap_or(Places::NONE)
    }

    /// Applies the changes a successful commit made.
    pub(crate) fn apply(&mut self, changes: HashMap<MessageId, Places>) {
        for (id, places) in changes {
            if places.is_none() {
                self.places.remove(&id);
            } else {
                self.places.insert(id, places);
            }
        }
    }
}
