//! Random operation sequences run on two engines side by side, one on the backend under test
//! and one on the engine's own `MemoryStorage` (the reference), with identical clocks and
//! token seeds: every operation must answer the same on both, and after every restart the
//! backend must recover exactly the reference's durable snapshot.

use switchboard_engine::{
    Engine, LeaseToken, MemoryStorage, MessageId, NewMessage, QueueConfig, Storage,
};

use super::harness::{Harness, TestRng};

const QUEUES: [&str; 2] = ["red", "blue"];
const DEDUP_KEYS: [&str; 4] = ["k0", "k1", "k2", "k3"];

/// One operation of a random run.
#[derive(Debug, Clone)]
enum Op {
    Configure(&'static str, QueueConfig),
    Enqueue(&'static str, Vec<NewMessage>),
    Lease(&'static str, usize, u64),
    Ack(MessageId, LeaseToken),
    Nack(MessageId, LeaseToken, Option<u64>),
    Extend(MessageId, LeaseToken, u64),
    Redrive(&'static str),
    Purge(&'static str),
    Advance(u64),
    Restart,
}

impl Op {
    fn random(rng: &mut TestRng, held: &mut Vec<(MessageId, LeaseToken)>) -> Op {
        let queue = *rng.pick(&QUEUES);
        match rng.range(0, 100) {
            0..=24 => {
                let count = rng.range(1, 4);
                Op::Enqueue(queue, (0..count).map(|_| random_message(rng)).collect())
            }
            25..=39 => Op::Lease(queue, rng.range(1, 4) as usize, rng.range(500, 5_000)),
            40..=64 if !held.is_empty() => Self::on_held_lease(rng, held),
            40..=79 => Op::Advance(rng.range(0, 3_000)),
            80..=87 => Op::Configure(queue, random_config(rng)),
            88..=91 => Op::Redrive(queue),
            92..=94 => Op::Purge(queue),
            _ => Op::Restart,
        }
    }

    /// An ack, nack or extend of a held lease (taken out of `held` unless extended).
    fn on_held_lease(rng: &mut TestRng, held: &mut Vec<(MessageId, LeaseToken)>) -> Op {
        let index = rng.range(0, held.len() as u64) as usize;
        let (id, token) = held[index];
        match rng.range(0, 10) {
            0..=4 => {
                held.swap_remove(index);
                Op::Ack(id, token)
            }
            5..=7 => {
                held.swap_remove(index);
                let delay = rng.chance(50).then(|| rng.range(0, 3_000));
                Op::Nack(id, token, delay)
            }
            _ => Op::Extend(id, token, rng.range(500, 5_000)),
        }
    }

    /// Runs the operation; returns its outcome as text (for comparing engines) and the leases
    /// it handed out.
    async fn run(&self, engine: &Engine) -> (String, Vec<(MessageId, LeaseToken)>) {
        let outcome = match self {
            Op::Configure(queue, config) => {
                format!("{:?}", engine.configure_queue(queue, config.clone()).await)
            }
            Op::Enqueue(queue, messages) => {
                format!("{:?}", engine.enqueue_batch(queue, messages.clone()).await)
            }
            Op::Lease(queue, max, lease_ms) => {
                let result = engine.lease(queue, *max, Some(*lease_ms)).await;
                let leases = result
                    .iter()
                    .flatten()
                    .map(|d| (d.message.id, d.token))
                    .collect();
                return (format!("{result:?}"), leases);
            }
            Op::Ack(id, token) => format!("{:?}", engine.ack(*id, *token).await),
            Op::Nack(id, token, delay) => format!("{:?}", engine.nack(*id, *token, *delay).await),
            Op::Extend(id, token, lease_ms) => {
                format!("{:?}", engine.extend(*id, *token, *lease_ms).await)
            }
            Op::Redrive(queue) => format!("{:?}", engine.redrive(queue, None).await),
            Op::Purge(queue) => format!("{:?}", engine.purge_dead_letters(queue, None).await),
            Op::Advance(_) | Op::Restart => String::new(),
        };
        (outcome, Vec::new())
    }
}

fn random_message(rng: &mut TestRng) -> NewMessage {
    let mut message =
        NewMessage::new(rng.next_u64().to_le_bytes().to_vec()).with_priority(rng.range(0, 4) as u8);
    if rng.chance(30) {
        message.delay_ms = rng.range(1, 5_000);
    }
    if rng.chance(30) {
        message.ttl_ms = Some(rng.range(0, 20_000));
    }
    if rng.chance(20) {
        message.max_attempts = Some(rng.range(1, 4) as u32);
    }
    if rng.chance(30) {
        message.dedup_key = Some(rng.pick(&DEDUP_KEYS).to_string());
    }
    if rng.chance(20) {
        message
            .headers
            .insert("trace".to_string(), rng.next_u64().to_string());
    }
    message
}

fn random_config(rng: &mut TestRng) -> QueueConfig {
    QueueConfig {
        max_size: rng.range(5, 60),
        message_ttl_ms: *rng.pick(&[0, 5_000, 20_000]),
        default_lease_ms: 2_000,
        max_attempts: rng.range(1, 4) as u32,
        retry_delay_ms: *rng.pick(&[0, 500]),
        retry_multiplier: *rng.pick(&[1.0, 2.0]),
        retry_delay_max_ms: 4_000,
        dead_letters: rng.chance(70),
        dedup_window_ms: *rng.pick(&[0, 3_000]),
    }
}

/// Runs `steps` random operations (seeded by `seed`) on an engine over the backend and on one
/// over `MemoryStorage`, checking that both answer alike and that the backend recovers the
/// reference's durable snapshot after every restart and at the end.
pub async fn random_operations_match_the_memory_reference(
    open: impl Fn() -> Box<dyn Storage>,
    seed: u64,
    steps: usize,
) {
    let memory = MemoryStorage::new();
    let reference_store = memory.clone();
    let mut reference =
        Harness::start(move || Box::new(reference_store.clone()) as Box<dyn Storage>);
    let mut subject = Harness::start(open);
    let mut rng = TestRng::new(seed);
    let mut held = Vec::new();
    for step in 0..steps {
        let op = Op::random(&mut rng, &mut held);
        match &op {
            Op::Advance(delta_ms) => {
                reference.advance_ms(*delta_ms);
                subject.advance_ms(*delta_ms);
            }
            Op::Restart => {
                held.clear();
                reference.stop();
                assert_eq!(
                    subject.recover(),
                    memory.durable_snapshot(),
                    "seed {seed}, step {step}: recovered state differs from the reference"
                );
                reference.restart();
                subject.restart();
            }
            _ => {
                let (expected, leases) = op.run(reference.engine()).await;
                let (got, _) = op.run(subject.engine()).await;
                assert_eq!(got, expected, "seed {seed}, step {step}: {op:?}");
                held.extend(leases);
            }
        }
        subject.engine().check_invariants();
    }
    reference.stop();
    assert_eq!(
        subject.recover(),
        memory.durable_snapshot(),
        "seed {seed}, at the end: recovered state differs from the reference"
    );
}
