//! Rebuilding the state from what storage recovered.

use std::cmp::Reverse;

use super::{Entry, Queue, State, Status};
use crate::clock::UnixMillis;
use crate::config::QueueConfig;
use crate::storage::Snapshot;

impl State {
    /// The state that the recovered snapshot describes, seen at `now`. Messages that were
    /// leased when the process stopped are ready again, their attempts kept.
    pub fn restore(snapshot: Snapshot, now: UnixMillis, token_seed: u64) -> Self {
        let mut state = State::new(token_seed);
        for (name, config) in snapshot.queues {
            state.queues.insert(name.clone(), Queue::new(name, config));
        }
        for dedup in snapshot.dedup {
            // A remembered key may name an acked message: its id must never be minted again.
            state.ids.last = state.ids.last.max(dedup.id.0);
            let queue = state.restored_queue(&dedup.queue);
            queue
                .dedup
                .insert(dedup.key.clone(), (dedup.id, dedup.until));
            queue.dedup_expiry.insert((dedup.until, dedup.key));
        }
        for message in snapshot.messages {
            let id = message.id;
            state.next_seq = state.next_seq.max(message.seq + 1);
            state.ids.last = state.ids.last.max(id.0);
            let queue = state.restored_queue(&message.queue);
            let status = if let Some((_, died_at)) = message.dead {
                queue.dead.insert((died_at, id));
                Status::Dead
            } else if message.not_before > now {
                queue.delayed.insert((message.not_before, id));
                Status::Delayed
            } else {
                queue
                    .ready
                    .insert((Reverse(message.priority), message.seq, id));
                Status::Ready
            };
            if status != Status::Dead {
                if let Some(expires_at) = message.expires_at {
                    queue.expiring.insert((expires_at, id));
                }
            }
            let message = crate::message::StoredMessage {
                queue: queue.name.clone(),
                ..message
            };
            state.entries.insert(id, Entry { message, status });
        }
        // Ids of acked messages are gone from storage; minting from the next millisecond on
        // keeps every new id above any id minted before the restart (with a clock that does
        // not step backwards).
        state.ids.last = state.ids.last.max(((now as u128 + 1) << 80) - 1);
        // ...and above every id a previous owner may have minted, whatever this clock says.
        if snapshot.ids_minted_until > 0 {
            let reserved = snapshot.ids_minted_until as u128;
            state.ids.last = state.ids.last.max(((reserved + 1) << 80) - 1);
            state.ids.reserved_until = snapshot.ids_minted_until;
        }
        // Tokens of deliveries made before the restart must not be minted again: perturb the
        // generator with what those deliveries left behind (attempt counts, ids, sequences).
        let attempts: u64 = state
            .entries
            .values()
            .map(|e| u64::from(e.message.attempts))
            .sum();
        state.tokens.state ^= (state.ids.last as u64)
            .rotate_left(17)
            .wrapping_add(state.next_seq.rotate_left(41))
            .wrapping_add(attempts.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        state
    }

    fn restored_queue(&mut self, name: &str) -> &mut Queue {
        if !self.queues.contains_key(name) {
            let name: std::sync::Arc<str> = name.into();
            self.queues
                .insert(name.clone(), Queue::new(name, QueueConfig::default()));
        }
        self.queues.get_mut(name).expect("queue just ensured")
    }
}
