//! Which index (ready, delayed, dead, or none while leased) holds each live message, and the
//! message's meta field, kept beside Redis.
//!
//! It lets a commit remove an id from exactly the index that holds it (acks and leases are the
//! hot path: one ZREM instead of one per index), write a message's whole meta field when a
//! record changes part of it (a delivery knows only the attempts), and skip records about
//! messages that do not exist, which the fold defines as no-ops and which would otherwise
//! create partial entries. It is loaded at recovery (or before the first commit) and changed
//! only once a commit succeeded, so a retried batch plans exactly the same commands.

use switchboard_engine::{IdMap, MessageId};

use super::keys::Index;
use super::message_fields::Meta;

/// A set of indexes, one bit each (a message is in one index, or in none while leased; more
/// only if damaged).
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
        Index::Dead => 4,
    }
}

/// What Redis holds of one live message that a commit needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placed {
    /// The indexes listing it (none while it is leased).
    pub places: Places,
    /// Its meta field.
    pub meta: Meta,
}

/// Every live message's places and meta, as of the last successful commit.
#[derive(Debug, Default)]
pub(crate) struct Placements {
    messages: IdMap<Placed>,
}

impl Placements {
    pub(crate) fn from_map(messages: IdMap<Placed>) -> Self {
        Self { messages }
    }

    pub(crate) fn get(&self, id: MessageId) -> Option<&Placed> {
        self.messages.get(&id)
    }

    /// Applies the changes a successful commit made (`None`: the message is gone).
    pub(crate) fn apply(&mut self, changes: IdMap<Option<Placed>>) {
        for (id, placed) in changes {
            match placed {
                Some(placed) => self.messages.insert(id, placed),
                None => self.messages.remove(&id),
            };
        }
    }
}
