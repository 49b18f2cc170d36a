//! Proves that the engine behaves like a small reference model under random sequences of
//! enqueue / lease / ack / nack / extend / redrive / purge / clock moves / timer ticks and
//! crash-restarts: same deliveries in the same order, same attempt counts, same dead letters
//! with the same reasons, same expiries, same dedup answers, same per-queue counts.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use proptest::prelude::*;
use switchboard_engine::{
    Clock, DeadReason, Engine, EngineError, LeaseToken, ManualClock, MemoryStorage, MessageId,
    MessageState, NewMessage, QueueConfig,
};

const QUEUES: [&str; 2] = ["alpha", "beta"];

fn configs() -> [QueueConfig; 2] {
    [
        QueueConfig {
            max_size: 6,
            message_ttl_ms: 0,
            default_lease_ms: 1_000,
            max_attempts: 2,
            retry_delay_ms: 100,
            retry_multiplier: 2.0,
            retry_delay_max_ms: 300,
            dead_letters: true,
            dedup_window_ms: 500,
        },
        QueueConfig {
            max_size: 10,
            message_ttl_ms: 2_000,
            default_lease_ms: 700,
            max_attempts: 3,
            retry_delay_ms: 50,
            retry_multiplier: 1.0,
            retry_delay_max_ms: 50,
            dead_letters: false,
            dedup_window_ms: 0,
        },
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        queue: usize,
        priority: u8,
        delay_ms: u64,
        ttl_ms: Option<u64>,
        dedup: Option<u8>,
    },
    Lease {
        queue: usize,
        max: usize,
        lease_ms: Option<u64>,
    },
    Ack {
        pick: usize,
        stale: bool,
    },
    Nack {
        pick: usize,
        delay_ms: Option<u64>,
    },
    Extend {
        pick: usize,
        lease_ms: u64,
    },
    Advance {
        ms: u64,
    },
    Tick,
    Restart,
    Redrive {
        queue: usize,
    },
    Purge {
        queue: usize,
    },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, 0..3u8, prop_oneof![Just(0u64), 1..400u64], prop_oneof![Just(None), Just(Some(300u64)), Just(Some(0))], prop_oneof![Just(None), (0..3u8).prop_map(Some)])
            .prop_map(|(queue, priority, delay_ms, ttl_ms, dedup)| Op::Enqueue { queue, priority, delay_ms, ttl_ms, dedup }),
        3 => (0..2usize, 1..4usize, prop_oneof![Just(None), (1..1500u64).prop_map(Some)])
            .prop_map(|(queue, max, lease_ms)| Op::Lease { queue, max, lease_ms }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, stale)| Op::Ack { pick, stale }),
        1 => (any::<usize>(), prop_oneof![Just(None), Just(Some(0u64)), (1..300u64).prop_map(Some)])
            .prop_map(|(pick, delay_ms)| Op::Nack { pick, delay_ms }),
        1 => (any::<usize>(), 1..1500u64).prop_map(|(pick, lease_ms)| Op::Extend { pick, lease_ms }),
        3 => prop_oneof![1..200u64, 200..1500u64].prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Tick),
        1 => Just(Op::Restart),
        1 => (0..2usize).prop_map(|queue| Op::Redrive { queue }),
        1 => (0..2usize).prop_map(|queue| Op::Purge { queue }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Ready,
    Delayed,
    Leased { token: LeaseToken, deadline: u64 },
    Dead { reason: DeadReason, at: u64 },
}

#[derive(Debug, Clone)]
struct ModelMessage {
    id: MessageId,
    queue: usize,
    priority: u8,
    seq: u64,
    not_before: u64,
    expires_at: Option<u64>,
    attempts: u32,
    max_attempts: u32,
    at: Where,
    /// Every token this message was ever leased with (to try stale ones).
    tokens: Vec<LeaseToken>,
}

/// The reference: a flat list scanned linearly, the obviously-correct way.
struct Model {
    configs: [QueueConfig; 2],
    messages: Vec<ModelMessage>,
    dedup: HashMap<(usize, u8), (MessageId, u64)>,
    next_seq: u64,
}

impl Model {
    fn kill(&mut self, index: usize, reason: DeadReason, now: u64) {
        if self.configs[self.messages[index].queue].dead_letters {
            self.messages[index].at = Where::Dead { reason, at: now };
        } else {
            self.messages.remove(index);
        }
    }

    /// Back from a lease: expired, out of attempts, or waiting `delay` for another try.
    fn requeue(&mut self, index: usize, now: u64, delay: u64) {
        let m = &mut self.messages[index];
        if m.expires_at.is_some_and(|at| at <= now) {
            self.kill(index, DeadReason::Expired, now);
        } else if m.attempts >= m.max_attempts {
            self.kill(index, DeadReason::MaxAttempts, now);
        } else {
            m.not_before = now + delay;
            m.at = if delay == 0 {
                Where::Ready
            } else {
                Where::Delayed
            };
        }
    }

    fn settle(&mut self, queue: usize, now: u64) {
        let mut index = 0;
        while index < self.messages.len() {
            let m = &mut self.messages[index];
            if m.queue != queue {
                index += 1;
                continue;
            }
            if m.at == Where::Delayed && m.not_before <= now {
                m.at = Where::Ready;
            }
            let waiting = matches!(m.at, Where::Ready | Where::Delayed);
            let before = self.messages.len();
            match self.messages[index].at {
                Where::Leased { deadline, .. } if deadline <= now => self.requeue(index, now, 0),
                _ if waiting && self.messages[index].expires_at.is_some_and(|at| at <= now) => {
                    self.kill(index, DeadReason::Expired, now)
                }
                _ => {}
            }
            if self.messages.len() == before {
                index += 1;
            }
        }
    }

    fn size(&self, queue: usize) -> usize {
        self.messages.iter().filter(|m| m.queue == queue).count()
    }

    fn find(&self, id: MessageId) -> Option<usize> {
        self.messages.iter().position(|m| m.id == id)
    }

    fn leased(&self) -> Vec<usize> {
        (0..self.messages.len())
            .filter(|i| matches!(self.messages[*i].at, Where::Leased { .. }))
            .collect()
    }

    fn dead_letters(&self, queue: usize) -> Vec<(MessageId, DeadReason)> {
        let mut dead: Vec<_> = self
            .messages
            .iter()
            .filter(|m| m.queue == queue)
            .filter_map(|m| match m.at {
                Where::Dead { reason, at } => Some((at, m.id, reason)),
                _ => None,
            })
            .collect();
        dead.sort_by_key(|(at, id, _)| (*at, *id));
        dead.into_iter()
            .map(|(_, id, reason)| (id, reason))
            .collect()
    }
}

struct World {
    engine: Engine,
    storage: MemoryStorage,
    clock: Arc<ManualClock>,
    model: Model,
}

impl World {
    async fn new() -> World {
        let storage = MemoryStorage::new();
        let clock = Arc::new(ManualClock::new(common::START_MS));
        let engine = common::open_on(Box::new(storage.clone()), clock.clone());
        for (name, config) in QUEUES.iter().zip(configs()) {
            engine.configure_queue(name, config).await.unwrap();
        }
        World {
            engine,
            storage,
            clock,
            model: Model {
                configs: configs(),
                messages: Vec::new(),
                dedup: HashMap::new(),
                next_seq: 0,
            },
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    async fn step(&mut self, op: Op) {
        let now = self.now();
        match op {
            Op::Enqueue {
                queue,
                priority,
                delay_ms,
                ttl_ms,
                dedup,
            } => {
                let mut message = NewMessage::new(vec![priority])
                    .with_priority(priority)
                    .with_delay_ms(delay_ms);
                message.ttl_ms = ttl_ms;
                message.dedup_key = dedup.map(|key| format!("key-{key}"));
                let result = self.engine.enqueue(QUEUES[queue], message).await;
                let config = &self.model.configs[queue];
                let dedup_hit = dedup
                    .filter(|_| config.dedup_window_ms > 0)
                    .and_then(|key| self.model.dedup.get(&(queue, key)))
                    .filter(|(_, until)| *until > now)
                    .map(|(id, _)| *id);
                if let Some(existing) = dedup_hit {
                    let got = result.unwrap();
                    assert!(got.deduplicated);
                    assert_eq!(got.id, existing);
                    return;
                }
                if self.model.size(queue) as u64 >= config.max_size {
                    assert!(
                        matches!(result, Err(EngineError::QueueFull { .. })),
                        "{result:?}"
                    );
                    return;
                }
                let got = result.unwrap();
                assert!(!got.deduplicated);
                let ttl = ttl_ms.unwrap_or(config.message_ttl_ms);
                if let Some(key) = dedup.filter(|_| config.dedup_window_ms > 0) {
                    self.model
                        .dedup
                        .insert((queue, key), (got.id, now + config.dedup_window_ms));
                }
                self.model.next_seq += 1;
                self.model.messages.push(ModelMessage {
                    id: got.id,
                    queue,
                    priority,
                    seq: self.model.next_seq,
                    not_before: now + delay_ms,
                    expires_at: (ttl > 0).then_some(now + ttl),
                    attempts: 0,
                    max_attempts: config.max_attempts,
                    at: if delay_ms > 0 {
                        Where::Delayed
                    } else {
                        Where::Ready
                    },
                    tokens: Vec::new(),
                });
            }
            Op::Lease {
                queue,
                max,
                lease_ms,
            } => {
                let got = self
                    .engine
                    .lease(QUEUES[queue], max, lease_ms)
                    .await
                    .unwrap();
                self.model.settle(queue, now);
                let lease_ms = lease_ms.unwrap_or(self.model.configs[queue].default_lease_ms);
                let mut ready: Vec<_> = self
                    .model
                    .messages
                    .iter()
                    .filter(|m| m.queue == queue && m.at == Where::Ready)
                    .map(|m| (std::cmp::Reverse(m.priority), m.seq, m.id))
                    .collect();
                ready.sort();
                let mut expected = Vec::new();
                for (_, _, id) in ready {
                    if expected.len() == max {
                        break;
                    }
                    let index = self.model.find(id).unwrap();
                    let m = &self.model.messages[index];
                    if m.attempts >= m.max_attempts {
                        self.model.kill(index, DeadReason::MaxAttempts, now);
                        continue;
                    }
                    expected.push(id);
                }
                let got_ids: Vec<_> = got.iter().map(|d| d.message.id).collect();
                assert_eq!(got_ids, expected, "lease order");
                for delivery in got {
                    let index = self.model.find(delivery.message.id).unwrap();
                    let m = &mut self.model.messages[index];
                    m.attempts += 1;
                    assert_eq!(delivery.message.attempts, m.attempts, "attempts");
                    assert_eq!(delivery.lease_deadline, now + lease_ms);
                    assert_eq!(&*delivery.message.payload, &[m.priority]);
                    m.at = Where::Leased {
                        token: delivery.token,
                        deadline: now + lease_ms,
                    };
                    m.tokens.push(delivery.token);
                }
            }
            Op::Ack { pick, stale } => {
                let Some((index, token)) = self.pick_token(pick, stale) else {
                    return;
                };
                let id = self.model.messages[index].id;
                let queue = self.model.messages[index].queue;
                let result = self.engine.ack(id, token).await;
                self.model.settle(queue, now);
                match self.model.find(id) {
                    Some(i)
                        if self.model.messages[i].at
                            == leased_with(&self.model.messages[i], token) =>
                    {
                        result.unwrap();
                        self.model.messages.remove(i);
                    }
                    Some(_) => assert_eq!(result, Err(EngineError::LeaseLost(id))),
                    None => assert_eq!(result, Err(EngineError::UnknownMessage(id))),
                }
            }
            Op::Nack { pick, delay_ms } => {
                let Some((index, token)) = self.pick_token(pick, false) else {
                    return;
                };
                let id = self.model.messages[index].id;
                let queue = self.model.messages[index].queue;
                let result = self.engine.nack(id, token, delay_ms).await;
                self.model.settle(queue, now);
                match self.model.find(id) {
                    Some(i)
                        if self.model.messages[i].at
                            == leased_with(&self.model.messages[i], token) =>
                    {
                        result.unwrap();
                        let attempts = self.model.messages[i].attempts;
                        let delay = delay_ms
                            .unwrap_or_else(|| self.model.configs[queue].retry_delay_for(attempts));
                        self.model.requeue(i, now, delay);
                    }
                    Some(_) => assert_eq!(result, Err(EngineError::LeaseLost(id))),
                    None => assert_eq!(result, Err(EngineError::UnknownMessage(id))),
                }
            }
            Op::Extend { pick, lease_ms } => {
                let Some((index, token)) = self.pick_token(pick, false) else {
                    return;
                };
                let id = self.model.messages[index].id;
                let queue = self.model.messages[index].queue;
                let result = self.engine.extend(id, token, lease_ms).await;
                self.model.settle(queue, now);
                match self.model.find(id) {
                    Some(i)
                        if self.model.messages[i].at
                            == leased_with(&self.model.messages[i], token) =>
                    {
                        assert_eq!(result, Ok(now + lease_ms));
                        self.model.messages[i].at = Where::Leased {
                            token,
                            deadline: now + lease_ms,
                        };
                    }
                    Some(_) => assert_eq!(result, Err(EngineError::LeaseLost(id))),
                    None => assert_eq!(result, Err(EngineError::UnknownMessage(id))),
                }
            }
            Op::Advance { ms } => self.clock.advance_ms(ms),
            Op::Tick => {
                self.engine.tick();
                self.engine.flush().await.unwrap();
                self.model.settle(0, now);
                self.model.settle(1, now);
            }
            Op::Restart => {
                // The model's restart follows durable state: leases are written behind
                // (EngineOptions::durable_leases), so the last one may still be pending.
                // What a crash does to a pending lease is tested in tests/durability.rs.
                self.engine.flush().await.unwrap();
                let engine = common::open_on(Box::new(self.storage.clone()), self.clock.clone());
                self.engine = engine;
                for m in &mut self.model.messages {
                    m.at = match m.at {
                        Where::Dead { .. } => m.at,
                        _ if m.not_before > now => Where::Delayed,
                        _ => Where::Ready,
                    };
                }
            }
            Op::Redrive { queue } => {
                let moved = self.engine.redrive(QUEUES[queue], None).await.unwrap();
                let ttl = self.model.configs[queue].message_ttl_ms;
                let mut dead: Vec<_> = self
                    .model
                    .dead_letters(queue)
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect();
                assert_eq!(moved, dead.len());
                for id in dead.drain(..) {
                    self.model.next_seq += 1;
                    let seq = self.model.next_seq;
                    let index = self.model.find(id).unwrap();
                    let m = &mut self.model.messages[index];
                    m.at = Where::Ready;
                    m.attempts = 0;
                    m.seq = seq;
                    m.not_before = now;
                    m.expires_at = (ttl > 0).then_some(now + ttl);
                }
            }
            Op::Purge { queue } => {
                let purged = self
                    .engine
                    .purge_dead_letters(QUEUES[queue], None)
                    .await
                    .unwrap();
                let dead = self.model.dead_letters(queue);
                assert_eq!(purged, dead.len());
                self.model
                    .messages
                    .retain(|m| !(m.queue == queue && matches!(m.at, Where::Dead { .. })));
            }
        }
        // Redrive hands out new sequence numbers in the engine too; keep the model's in step.
        self.check().await;
    }

    /// A leased message (by `pick`) and its current token, or a stale token of any message.
    fn pick_token(&self, pick: usize, stale: bool) -> Option<(usize, LeaseToken)> {
        if stale {
            let with_old: Vec<_> = (0..self.model.messages.len())
                .filter(|i| !self.model.messages[*i].tokens.is_empty())
                .collect();
            let index = *with_old.get(pick % with_old.len().max(1))?;
            let tokens = &self.model.messages[index].tokens;
            return Some((index, tokens[pick % tokens.len()]));
        }
        let leased = self.model.leased();
        let index = *leased.get(pick % leased.len().max(1))?;
        match self.model.messages[index].at {
            Where::Leased { token, .. } => Some((index, token)),
            _ => unreachable!(),
        }
    }

    async fn check(&self) {
        self.engine.check_invariants();
        for (queue, name) in QUEUES.iter().enumerate() {
            let stats = self.engine.queue_stats(name).unwrap();
            let count = |pred: fn(&Where) -> bool| {
                self.model
                    .messages
                    .iter()
                    .filter(|m| m.queue == queue && pred(&m.at))
                    .count() as u64
            };
            assert_eq!(
                stats.ready,
                count(|w| *w == Where::Ready),
                "ready count of {name}"
            );
            assert_eq!(
                stats.delayed,
                count(|w| *w == Where::Delayed),
                "delayed count of {name}"
            );
            assert_eq!(
                stats.leased,
                count(|w| matches!(w, Where::Leased { .. })),
                "leased count of {name}"
            );
            assert_eq!(
                stats.dead,
                count(|w| matches!(w, Where::Dead { .. })),
                "dead count of {name}"
            );
            let dead: Vec<_> = self
                .engine
                .dead_letters(name, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|d| (d.message.id, d.reason))
                .collect();
            assert_eq!(
                dead,
                self.model.dead_letters(queue),
                "dead letters of {name}"
            );
        }
        for m in &self.model.messages {
            let (stored, state) = self
                .engine
                .message(m.id)
                .await
                .unwrap()
                .expect("model message held by engine");
            assert_eq!(stored.attempts, m.attempts, "attempts of {}", m.id);
            assert_eq!(stored.expires_at, m.expires_at, "expiry of {}", m.id);
            let same = match (state, m.at) {
                (MessageState::Ready, Where::Ready) => true,
                (MessageState::Delayed { until }, Where::Delayed) => until == m.not_before,
                (
                    MessageState::Leased { token, deadline },
                    Where::Leased {
                        token: t,
                        deadline: d,
                    },
                ) => token == t && deadline == d,
                (MessageState::Dead { reason, at }, Where::Dead { reason: r, at: a }) => {
                    reason == r && at == a
                }
                _ => false,
            };
            assert!(same, "state of {}: model {:?}", m.id, m.at);
        }
        let held: usize = QUEUES
            .iter()
            .map(|name| {
                let s = self.engine.queue_stats(name).unwrap();
                (s.ready + s.delayed + s.leased + s.dead) as usize
            })
            .sum();
        assert_eq!(
            held,
            self.model.messages.len(),
            "engine holds exactly the model's messages"
        );
    }
}

fn leased_with(m: &ModelMessage, token: LeaseToken) -> Where {
    match m.at {
        Where::Leased { token: t, deadline } if t == token => Where::Leased { token, deadline },
        // Anything that cannot equal the current state.
        _ => Where::Dead {
            reason: DeadReason::Expired,
            at: u64::MAX,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_the_reference_model(ops in proptest::collection::vec(op_strategy(), 1..80)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut world = World::new().await;
            for op in ops {
                world.step(op).await;
            }
        });
    }
}
