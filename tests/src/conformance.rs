//! A conformance suite for `Storage` backends, written once and run against every backend.
//!
//! Each suite function takes a factory that opens the *same* store again on every call. It
//! drives a real [`Engine`](switchboard_engine::Engine) on a manual clock, drops it (a crash:
//! leases are not durable, so this is what a `kill -9` leaves) and opens a new one on the
//! store, then checks what came back. Suite functions panic with a description on failure.

mod batches;
mod growth;
mod harness;
mod random_ops;
mod restart;
mod timers;

pub use batches::{a_batch_reads_its_own_writes, recommitting_a_batch_changes_nothing};
pub use growth::acked_messages_leave_nothing_behind;
pub use harness::{Harness, TestRng, START_MS};
pub use random_ops::random_operations_match_the_memory_reference;
pub use restart::{
    leased_messages_come_back_ready, ordering_survives_restart, queue_configs_survive_restart,
    recovery_keeps_ready_delayed_dead_and_attempts,
};
pub use timers::{
    dead_letters_and_reasons_survive_restart, dedup_keys_survive_restart, delays_survive_restart,
    ttl_expiry_applies_after_restart,
};
