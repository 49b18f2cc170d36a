//! Idempotent routed sends. The engine deduplicates a `dedup_key` within one queue, but a
//! `capability:NAME` or `auto` send picks its queue anew on each try: the retry of a send
//! whose answer was lost (same key) could be routed to another agent and stored twice. So the
//! router remembers, per sender, requested recipient and key, the answer the first try got,
//! for as long as the engine remembers a key ([`ROUTED_KEY_WINDOW_MS`]), and answers a retry
//! with it (marked deduplicated) without routing again. A retry arriving while the first try
//! is still being routed waits for that try's answer; a try that failed leaves nothing
//! behind, so the next one routes afresh.
//!
//! These slots live in memory: they make concurrent tries share one routing. Across a
//! restart or a failover, the claims kept in the engine (`claims`) send a retry where its
//! first try went, so it is still stored once. Bounded: at most [`ROUTED_KEYS_MAX`] keys,
//! the oldest forgotten first, and keys, senders or recipients longer than
//! [`KEY_PART_BYTES_MAX`] are not remembered (the engine refuses such keys anyway).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use switchboard_engine::{Enqueued, UnixMillis, DEDUP_KEY_BYTES_MAX};
use tokio::sync::OnceCell;

use super::broker::Routed;

/// How long a routed send's answer is remembered, in milliseconds: the dedup window of an
/// agent's inbox (the engine's default queue config), so that a key means the same whether
/// the send named an agent or was routed.
pub const ROUTED_KEY_WINDOW_MS: u64 = 300_000;
/// Most routed-send keys remembered at once; past it the oldest is forgotten first (a retry
/// of a forgotten key is routed again).
pub const ROUTED_KEYS_MAX: usize = 50_000;
/// Longest sender, recipient or key remembered, in bytes (the engine's longest dedup key).
pub const KEY_PART_BYTES_MAX: usize = DEDUP_KEY_BYTES_MAX;

/// What a routed send answered: the stored message and where it went.
pub type Answer = (Enqueued, Routed);

/// One key's answer, set once by the first try that succeeds; tries of the same key share it.
pub type Slot = Arc<OnceCell<Answer>>;

/// A routed send, as its retries repeat it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SendKey {
    sender: String,
    /// As requested (`capability:quality`, `auto`), trimmed and lower-cased.
    recipient: String,
    dedup_key: String,
}

/// The remembered routed sends of a server.
#[derive(Default)]
pub struct RoutedSends {
    /// Held only to find or add a slot, never across an `.await`.
    remembered: Mutex<Remembered>,
}

#[derive(Default)]
struct Remembered {
    slots: HashMap<SendKey, Slot>,
    /// Every key in `slots` once, oldest first, with when it was first seen.
    by_age: VecDeque<(UnixMillis, SendKey)>,
}

impl RoutedSends {
    /// The slot of `sender`'s send to `recipient` with `dedup_key` at `now_ms`: the one an
    /// earlier try of it made within the window, else a new one. `None` when the send is too
    /// large a key to remember.
    pub fn slot(
        &self,
        sender: &str,
        recipient: &str,
        dedup_key: &str,
        now_ms: UnixMillis,
    ) -> Option<Slot> {
        let recipient = recipient.trim().to_lowercase();
        if [sender, recipient.as_str(), dedup_key]
            .iter()
            .any(|part| part.len() > KEY_PART_BYTES_MAX)
        {
            return None;
        }
        let key = SendKey {
            sender: sender.to_string(),
            recipient,
            dedup_key: dedup_key.to_string(),
        };
        let mut remembered = self.remembered.lock();
        remembered.forget_expired(now_ms);
        if let Some(slot) = remembered.slots.get(&key) {
            return Some(slot.clone());
        }
        while remembered.slots.len() >= ROUTED_KEYS_MAX {
            remembered.forget_oldest();
        }
        let slot = Slot::default();
        remembered.slots.insert(key.clone(), slot.clone());
        remembered.by_age.push_back((now_ms, key));
        debug_assert_eq!(remembered.slots.len(), remembered.by_age.len());
        Some(slot)
    }

    /// How many keys are remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.remembered.lock().slots.len()
    }
}

impl Remembered {
    fn forget_expired(&mut self, now_ms: UnixMillis) {
        while let Some((since, _)) = self.by_age.front() {
            if since.saturating_add(ROUTED_KEY_WINDOW_MS) > now_ms {
                return;
            }
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((_, key)) = self.by_age.pop_front() {
            self.slots.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_the_inbox_dedup_window() {
        assert_eq!(
            ROUTED_KEY_WINDOW_MS,
            switchboard_engine::QueueConfig::default().dedup_window_ms
        );
    }

    #[test]
    fn a_retry_within_the_window_gets_the_same_slot_and_after_it_a_new_one() {
        let sends = RoutedSends::default();
        let first = sends
            .slot("alice", "capability:quality", "k", 1_000)
            .unwrap();
        let retry = sends
            .slot(
                "alice",
                " Capability:Quality ",
                "k",
                1_000 + ROUTED_KEY_WINDOW_MS - 1,
            )
            .unwrap();
        assert!(Arc::ptr_eq(&first, &retry));
        let late = sends
            .slot(
                "alice",
                "capability:quality",
                "k",
                1_000 + ROUTED_KEY_WINDOW_MS,
            )
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &late));
    }

    #[test]
    fn other_senders_recipients_and_keys_get_their_own_slots() {
        let sends = RoutedSends::default();
        let first = sends.slot("alice", "auto", "k", 0).unwrap();
        for (sender, recipient, key) in [
            ("bob", "auto", "k"),
            ("alice", "capability:x", "k"),
            ("alice", "auto", "j"),
        ] {
            let other = sends.slot(sender, recipient, key, 0).unwrap();
            assert!(!Arc::ptr_eq(&first, &other), "{sender} {recipient} {key}");
        }
    }

    #[test]
    fn past_the_cap_the_oldest_key_is_forgotten_first() {
        let sends = RoutedSends::default();
        let oldest = sends.slot("alice", "auto", "key-0", 0).unwrap();
        for index in 1..=ROUTED_KEYS_MAX {
            sends
                .slot("alice", "auto", &format!("key-{index}"), 0)
                .unwrap();
        }
        assert_eq!(sends.len(), ROUTED_KEYS_MAX);
        let again = sends.slot("alice", "auto", "key-0", 0).unwrap();
        assert!(!Arc::ptr_eq(&oldest, &again), "key-0 was forgotten");
        assert_eq!(sends.len(), ROUTED_KEYS_MAX);
    }

    #[test]
    fn keys_longer_than_the_engine_takes_are_not_remembered() {
        let sends = RoutedSends::default();
        let long = "k".repeat(KEY_PART_BYTES_MAX + 1);
        assert!(sends.slot("alice", "auto", &long, 0).is_none());
        assert_eq!(sends.len(), 0);
    }
}
