//! What must survive a crash and restart, checked through a real engine: ordering, leases
//! that die with the process, queue configurations, and a store mixing every message state.

use std::cmp::Reverse;

use switchboard_engine::{
    DeadReason, EngineError, MessageId, MessageState, NewMessage, QueueConfig, Storage,
};

use super::harness::{Harness, START_MS};

/// Lease length the suite asks for, in milliseconds: long enough never to run out by itself.
pub(super) const LEASE_MS: u64 = 60_000;

/// Enqueues one message, panicking with the queue's name when the engine refuses.
pub(super) async fn enqueue<F: Fn() -> Box<dyn Storage>>(
    harness: &Harness<F>,
    queue: &str,
    message: NewMessage,
) -> MessageId {
    harness
        .engine()
        .enqueue(queue, message)
        .await
        .unwrap_or_else(|error| panic!("enqueue into {queue} failed: {error}"))
        .id
}

/// Where message `id` is now, panicking when it is gone.
pub(super) async fn state_of<F: Fn() -> Box<dyn Storage>>(
    harness: &Harness<F>,
    id: MessageId,
) -> (u32, MessageState) {
    let (message, state) = harness
        .engine()
        .message(id)
        .await
        .expect("message lookup")
        .unwrap_or_else(|| panic!("message {id} is gone"));
    (message.attempts, state)
}

/// The panic text of a refused `configure_queue`.
pub(super) fn configure_error(error: EngineError) -> String {
    format!("configure_queue failed: {error}")
}

/// Priority order (higher first) and FIFO within a priority survive a restart, including for
/// messages enqueued after it and for messages that were leased at the crash.
pub async fn ordering_survives_restart(open: impl Fn() -> Box<dyn Storage>) {
    let mut harness = Harness::start(open);
    let priorities = [1u8, 3, 2, 3, 1, 2, 0, 3];
    let mut enqueued = Vec::new();
    for (index, priority) in priorities.iter().enumerate() {
        if index == priorities.len() / 2 {
            harness.restart();
        }
        let message = NewMessage::new(format!("m{index}")).with_priority(*priority);
        let id = enqueue(&harness, "orders", message).await;
        enqueued.push((Reverse(*priority), index, id));
    }
    let leased = harness
        .engine()
        .lease("orders", 2, Some(LEASE_MS))
        .await
        .expect("lease");
    assert_eq!(leased.len(), 2, "two messages leased before the crash");
    harness.restart();

    enqueued.sort();
    let expected: Vec<MessageId> = enqueued.iter().map(|(_, _, id)| *id).collect();
    let delivered: Vec<MessageId> = harness
        .engine()
        .lease("orders", 100, Some(LEASE_MS))
        .await
        .expect("lease")
        .iter()
        .map(|delivery| delivery.message.id)
        .collect();
    assert_eq!(delivered, expected, "delivery order after restart");
}

/// A message leased when the process stopped is ready again after the restart, with its
/// attempts kept; once they are used up it is dead-lettered.
pub async fn leased_messages_come_back_ready(open: impl Fn() -> Box<dyn Storage>) {
    let mut harness = Harness::start(open);
    let id = enqueue(&harness, "jobs", NewMessage::new("work")).await;
    let max_attempts = QueueConfig::default().max_attempts;
    for attempt in 1..=max_attempts {
        let deliveries = harness
            .engine()
            .lease("jobs", 10, Some(LEASE_MS))
            .await
            .expect("lease");
        assert_eq!(
            deliveries.len(),
            1,
            "attempt {attempt} delivers the message"
        );
        assert_eq!(deliveries[0].message.attempts, attempt);
        harness.restart();
        assert_eq!(
            state_of(&harness, id).await,
            (attempt, MessageState::Ready),
            "after the crash during attempt {attempt}"
        );
    }
    let deliveries = harness
        .engine()
        .lease("jobs", 10, Some(LEASE_MS))
        .await
        .expect("lease");
    assert!(deliveries.is_empty(), "attempts are used up");
    harness.restart();
    let dead = harness
        .engine()
        .dead_letters("jobs", 10)
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].message.id, dead[0].reason),
        (id, DeadReason::MaxAttempts)
    );
}

/// Queue configurations (explicit, reconfigured, and created implicitly by an enqueue)
/// survive a restart, the latest one winning.
pub async fn queue_configs_survive_restart(open: impl Fn() -> Box<dyn Storage>) {
    let mut harness = Harness::start(open);
    let first = QueueConfig {
        max_size: 77,
        message_ttl_ms: 0,
        default_lease_ms: 1_234,
        max_attempts: 9,
        retry_delay_ms: 5,
        retry_multiplier: 1.5,
        retry_delay_max_ms: 50,
        dead_letters: false,
        dedup_window_ms: 0,
    };
    let second = QueueConfig {
        max_attempts: 4,
        ..first.clone()
    };
    let engine = harness.engine();
    for (queue, config) in [("alpha", &first), ("beta", &first), ("alpha", &second)] {
        engine
            .configure_queue(queue, config.clone())
            .await
            .unwrap_or_else(|e| panic!("{}", configure_error(e)));
    }
    enqueue(&harness, "gamma", NewMessage::new("creates the queue")).await;
    harness.restart();
    let config_of = |queue| {
        harness
            .engine()
            .queue_stats(queue)
            .unwrap_or_else(|| panic!("queue {queue} is gone"))
            .config
    };
    assert_eq!(config_of("alpha"), second);
    assert_eq!(config_of("beta"), first);
    assert_eq!(config_of("gamma"), QueueConfig::default());
    let queues: Vec<_> = harness
        .recover()
        .queues
        .into_iter()
        .map(|(name, config)| (name.to_string(), config))
        .collect();
    assert_eq!(
        queues,
        vec![
            ("alpha".to_string(), second),
            ("beta".to_string(), first),
            ("gamma".to_string(), QueueConfig::default()),
        ]
    );
}

/// One store holding a ready, a delayed, a leased, a retrying and a dead message comes back
/// with each in its place and every attempt counted.
pub async fn recovery_keeps_ready_delayed_dead_and_attempts(open: impl Fn() -> Box<dyn Storage>) {
    let mut harness = Harness::start(open);
    let config = QueueConfig {
        retry_delay_ms: 10_000,
        retry_multiplier: 1.0,
        ..QueueConfig::default()
    };
    harness
        .engine()
        .configure_queue("mixed", config)
        .await
        .unwrap_or_else(|e| panic!("{}", configure_error(e)));
    let leased = enqueue(&harness, "mixed", NewMessage::new("leased")).await;
    let retrying = enqueue(&harness, "mixed", NewMessage::new("retrying")).await;
    let doomed = NewMessage {
        max_attempts: Some(1),
        ..NewMessage::new("doomed")
    };
    let dead = enqueue(&harness, "mixed", doomed).await;
    let deliveries = harness
        .engine()
        .lease("mixed", 10, Some(LEASE_MS))
        .await
        .expect("lease");
    assert_eq!(deliveries.len(), 3);
    let token_of = |id| {
        deliveries
            .iter()
            .find(|d| d.message.id == id)
            .map(|d| d.token)
            .expect("delivered")
    };
    let engine = harness.engine();
    engine
        .nack(retrying, token_of(retrying), None)
        .await
        .expect("nack");
    engine.nack(dead, token_of(dead), None).await.expect("nack");
    let died_at = harness.now_ms();
    let ready = enqueue(&harness, "mixed", NewMessage::new("ready")).await;
    let delayed = enqueue(
        &harness,
        "mixed",
        NewMessage::new("delayed").with_delay_ms(30_000),
    )
    .await;
    harness.restart();

    assert_eq!(state_of(&harness, leased).await, (1, MessageState::Ready));
    assert_eq!(state_of(&harness, ready).await, (0, MessageState::Ready));
    assert_eq!(
        state_of(&harness, delayed).await,
        (
            0,
            MessageState::Delayed {
                until: START_MS + 30_000
            }
        )
    );
    assert_eq!(
        state_of(&harness, retrying).await,
        (
            1,
            MessageState::Delayed {
                until: died_at + 10_000
            }
        )
    );
    assert_eq!(
        state_of(&harness, dead).await,
        (
            1,
            MessageState::Dead {
                reason: DeadReason::MaxAttempts,
                at: died_at
            }
        )
    );
    let stats = harness.engine().queue_stats("mixed").expect("queue exists");
    assert_eq!(
        (stats.ready, stats.delayed, stats.leased, stats.dead),
        (2, 2, 0, 1)
    );
}
