//! The pure engine state driven by arbitrary operations: its invariants hold after every step,
//! and restoring from the folded WAL records yields the same messages (crash recovery).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use switchboard_engine::{LeaseToken, MessageId, NewMessage, QueueConfig, SnapshotFold, State};

#[derive(Debug, Arbitrary)]
enum Op {
    Enqueue { queue: bool, priority: u8, delay_ms: u16, ttl_ms: Option<u16>, dedup: Option<u8> },
    Lease { queue: bool, max: u8, lease_ms: u16 },
    Ack { pick: u16 },
    Nack { pick: u16, delay_ms: Option<u16> },
    Extend { pick: u16, lease_ms: u16 },
    Advance { ms: u16 },
    Settle,
    Redrive { queue: bool },
    Purge { queue: bool },
    Restart,
}

fuzz_target!(|ops: Vec<Op>| {
    let mut now = 1_000_000u64;
    let mut state = State::new(1);
    let mut fold = SnapshotFold::default();
    let mut out = Vec::new();
    let mut leases: Vec<(MessageId, LeaseToken)> = Vec::new();
    let config = QueueConfig { max_size: 50, max_attempts: 3, retry_delay_ms: 10, dedup_window_ms: 100, ..QueueConfig::default() };
    state.configure("a", config.clone(), &mut out).unwrap();
    state.configure("b", QueueConfig { dead_letters: false, message_ttl_ms: 500, ..config }, &mut out).unwrap();
    for op in ops.into_iter().take(500) {
        let queue = |b: bool| if b { "a" } else { "b" };
        match op {
            Op::Enqueue { queue: q, priority, delay_ms, ttl_ms, dedup } => {
                let message = NewMessage {
                    priority,
                    delay_ms: delay_ms.into(),
                    ttl_ms: ttl_ms.map(u64::from),
                    dedup_key: dedup.map(|k| k.to_string()),
                    ..NewMessage::new(vec![priority])
                };
                let _ = state.enqueue(queue(q), vec![message], now, &mut out);
            }
            Op::Lease { queue: q, max, lease_ms } => {
                if let Ok(got) = state.lease(queue(q), max.into(), Some(u64::from(lease_ms).max(1)), now, &mut out) {
                    leases.extend(got.iter().map(|d| (d.message.id, d.token)));
                }
            }
            Op::Ack { pick } if !leases.is_empty() => {
                let (id, token) = leases[pick as usize % leases.len()];
                let _ = state.ack(id, token, now, &mut out);
            }
            Op::Nack { pick, delay_ms } if !leases.is_empty() => {
                let (id, token) = leases[pick as usize % leases.len()];
                let _ = state.nack(id, token, delay_ms.map(u64::from), now, &mut out);
            }
            Op::Extend { pick, lease_ms } if !leases.is_empty() => {
                let (id, token) = leases[pick as usize % leases.len()];
                let _ = state.extend(id, token, u64::from(lease_ms).max(1), now, &mut out);
            }
            Op::Advance { ms } => now += u64::from(ms),
            Op::Settle => {
                state.settle_all(now, &mut out);
            }
            Op::Redrive { queue: q } => {
                state.redrive(queue(q), None, now, &mut out);
            }
            Op::Purge { queue: q } => {
                state.purge_dead_letters(queue(q), None, &mut out);
            }
            Op::Restart => {
                fold.apply_all(&out);
                out.clear();
                state = State::restore(fold.snapshot(), now, 1);
                leases.clear();
            }
            _ => {}
        }
        state.check_invariants();
        fold.apply_all(&out);
        out.clear();
        assert_eq!(fold.message_count(), state.message_count(), "fold and state disagree");
    }
});
