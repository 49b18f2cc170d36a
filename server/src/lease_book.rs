//! The lease tokens of messages leased over REST, kept so that an ack, nack or extend by
//! message id (the original API has no token) goes straight to the engine.
//!
//! Without it each settle would first look the message up with `Engine::message`, a read that
//! waits for the batch being filled to become durable: one extra commit of latency per ack
//! under load. The book is only a shortcut: a miss (after a restart, or for a lease taken by a
//! socket) falls back to that lookup, and a token the engine no longer accepts does too.

use std::sync::Arc;

use parking_lot::Mutex;
use switchboard_engine::{Delivery, IdMap, LeaseToken, MessageId, UnixMillis};

/// Entries beyond which an insert first drops entries whose lease ran out.
const ENTRIES_SWEEP_AT: usize = 100_000;

/// One REST lease.
#[derive(Debug, Clone)]
pub struct Held {
    /// The queue (inbox) the message is in: only its agent may settle it.
    pub queue: Arc<str>,
    /// The lease's token.
    pub token: LeaseToken,
    /// When the lease runs out.
    pub deadline: UnixMillis,
    /// When the message was enqueued (for delivery times).
    pub enqueued_at: UnixMillis,
}

/// Tokens by message id. A parking_lot mutex held only for map operations, never across an
/// `.await`.
#[derive(Default)]
pub struct LeaseBook {
    held: Mutex<IdMap<Held>>,
}

impl LeaseBook {
    /// Notes deliveries handed out at `now`.
    pub fn insert(&self, deliveries: &[Delivery], now: UnixMillis) {
        let mut held = self.held.lock();
        if held.len() >= ENTRIES_SWEEP_AT {
            held.retain(|_, entry| entry.deadline > now);
        }
        for delivery in deliveries {
            held.insert(
                delivery.message.id,
                Held {
                    queue: delivery.message.queue.clone(),
                    token: delivery.token,
                    deadline: delivery.lease_deadline,
                    enqueued_at: delivery.message.enqueued_at,
                },
            );
        }
    }

    /// The lease of `id` if it is in `queue` and has not run out.
    pub fn get(&self, id: MessageId, queue: &str, now: UnixMillis) -> Option<Held> {
        self.held
            .lock()
            .get(&id)
            .filter(|entry| &*entry.queue == queue && entry.deadline > now)
            .cloned()
    }

    /// Forgets `id` (settled), if its entry still holds `token`.
    pub fn remove(&self, id: MessageId, token: LeaseToken) {
        let mut held = self.held.lock();
        if held.get(&id).is_some_and(|entry| entry.token == token) {
            held.remove(&id);
        }
    }

    /// Moves the deadline of `id` after an extend.
    pub fn extended(&self, id: MessageId, deadline: UnixMillis) {
        if let Some(entry) = self.held.lock().get_mut(&id) {
            entry.deadline = deadline;
        }
    }
}
