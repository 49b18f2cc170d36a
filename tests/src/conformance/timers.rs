//! Time-driven state across restarts: dead letters, time to live, delays and dedup windows.

use switchboard_engine::{DeadReason, MessageState, NewMessage, QueueConfig, Storage};

use super::harness::{Harness, START_MS};
use super::restart::{configure_error, enqueue, state_of, LEASE_MS};

/// Dead letters keep their reason and time across a restart, and a redrive or purge of them
/// is itself durable.
pub async fn dead_letters_and_reasons_survive_restart(open: impl Fn() -> Box<dyn Storage>) {
    let mut harness = Harness::start(open);
    let config = QueueConfig {
        max_attempts: 1,
        ..QueueConfig::default()
    };
    harness
        .engine()
        .configure_queue("mail", config)
        .await
        .unwrap_or_else(|e| panic!("{}", configure_error(e)));
    let nacked = enqueue(&harness, "mail", NewMessage::new("bounced")).await;
    let delivery = harness
        .engine()
        .lease("mail", 1, Some(LEASE_MS))
        .await
        .expect("lease")
        .pop()
        .expect("one delivery");
    harness
        .engine()
        .nack(nacked, delivery.token, None)
        .await
        .expect("nack");
    let nacked_at = harness.now_ms();
    harness.advance_ms(10);
    let short_lived = NewMessage {
        ttl_ms: Some(1_000),
        ..NewMessage::new("stale")
    };
    let expired = enqueue(&harness, "mail", short_lived).await;
    harness.advance_ms(2_000);
    let expired_at = harness.now_ms();
    harness.restart();

    let dead = harness
        .engine()
        .dead_letters("mail", 10)
        .await
        .expect("dead letters");
    let summary: Vec<_> = dead
        .iter()
        .map(|d| {
            (
                d.message.id,
                d.reason,
                d.died_at,
                d.message.payload.to_vec(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                nacked,
                DeadReason::MaxAttempts,
                nacked_at,
                b"bounced".to_vec()
            ),
            (expired, DeadReason::Expired, expired_at, b"stale".to_vec()),
        ]
    );

    let engine = harness.engine();
    assert_eq!(
        engine
            .redrive("mail", Some(&[nacked]))
            .await
            .expect("redrive"),
        1
    );
    let purged = engine
        .purge_dead_letters("mail", Some(&[expired]))
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    harness.restart();
    assert_eq!(state_of(&harness, nacked).await, (0, MessageState::Ready));
    let gone = harness.engine().message(expired).await.expect("lookup");
    assert!(gone.is_none(), "a purged dead letter stays gone");
}

/// Time to live keeps counting across a restart, including while the process is down; expired
/// messages become dead letters, or vanish where dead letters are off.
pub async fn ttl_expiry_applies_after_restart(open: impl Fn() -> Box<dyn Storage>) {
    let mut harness = Harness::start(open);
    let dropping = QueueConfig {
        dead_letters: false,
        ..QueueConfig::default()
    };
    harness
        .engine()
        .configure_queue("ttl-drop", dropping)
        .await
        .unwrap_or_else(|e| panic!("{}", configure_error(e)));
    let with_ttl = |ttl_ms| NewMessage {
        ttl_ms: Some(ttl_ms),
        ..NewMessage::new("timed")
    };
    let kept_dead = enqueue(&harness, "ttl-dead", with_ttl(5_000)).await;
    let dropped = enqueue(&harness, "ttl-drop", with_ttl(5_000)).await;
    let forever = enqueue(&harness, "ttl-dead", with_ttl(0)).await;
    harness.restart();
    harness.advance_ms(6_000);
    let expired_at = harness.now_ms();
    for _ in 0..2 {
        let (_, state) = state_of(&harness, kept_dead).await;
        assert_eq!(
            state,
            MessageState::Dead {
                reason: DeadReason::Expired,
                at: expired_at
            }
        );
        let gone = harness.engine().message(dropped).await.expect("lookup");
        assert!(gone.is_none(), "expired without dead letters means removed");
        assert_eq!(state_of(&harness, forever).await, (0, MessageState::Ready));
        harness.restart();
    }

    let while_down = enqueue(&harness, "ttl-dead", with_ttl(1_000)).await;
    harness.stop();
    harness.advance_ms(2_000);
    harness.restart();
    harness.engine().tick();
    let (_, state) = state_of(&harness, while_down).await;
    assert!(
        matches!(
            state,
            MessageState::Dead {
                reason: DeadReason::Expired,
                ..
            }
        ),
        "a TTL that ran out while the process was down expires on start: {state:?}"
    );
}

/// A delayed message stays delayed until its time after a restart, and so does a retry's
/// backoff.
pub async fn delays_survive_restart(open: impl Fn() -> Box<dyn Storage>) {
    let mut harness = Harness::start(open);
    let id = enqueue(
        &harness,
        "later",
        NewMessage::new("soon").with_delay_ms(5_000),
    )
    .await;
    harness.restart();
    let until = START_MS + 5_000;
    assert_eq!(
        state_of(&harness, id).await,
        (0, MessageState::Delayed { until })
    );
    let early = harness
        .engine()
        .lease("later", 10, Some(LEASE_MS))
        .await
        .expect("lease");
    assert!(early.is_empty(), "nothing is ready before the delay ends");
    harness.advance_ms(5_000);
    let delivery = harness
        .engine()
        .lease("later", 10, Some(LEASE_MS))
        .await
        .expect("lease")
        .pop()
        .expect("ready once the delay ended");
    harness
        .engine()
        .nack(id, delivery.token, Some(3_000))
        .await
        .expect("nack");
    let retry_at = harness.now_ms() + 3_000;
    harness.restart();
    assert_eq!(
        state_of(&harness, id).await,
        (1, MessageState::Delayed { until: retry_at })
    );
}

/// Dedup keys are remembered for their window across restarts (even after their message was
/// acked), and forgotten after it.
pub async fn dedup_keys_survive_restart(open: impl Fn() -> Box<dyn Storage>) {
    let mut harness = Harness::start(open);
    let window_ms = 10_000;
    let config = QueueConfig {
        dedup_window_ms: window_ms,
        ..QueueConfig::default()
    };
    harness
        .engine()
        .configure_queue("dedup", config)
        .await
        .unwrap_or_else(|e| panic!("{}", configure_error(e)));
    let keyed = || NewMessage::new("order").with_dedup_key("order-7");
    let first = enqueue(&harness, "dedup", keyed()).await;
    harness.restart();
    let again = harness
        .engine()
        .enqueue("dedup", keyed())
        .await
        .expect("enqueue");
    assert_eq!((again.id, again.deduplicated), (first, true));

    let delivery = harness
        .engine()
        .lease("dedup", 1, Some(LEASE_MS))
        .await
        .expect("lease")
        .pop()
        .expect("one delivery");
    harness
        .engine()
        .ack(first, delivery.token)
        .await
        .expect("ack");
    harness.restart();
    let after_ack = harness
        .engine()
        .enqueue("dedup", keyed())
        .await
        .expect("enqueue");
    assert_eq!((after_ack.id, after_ack.deduplicated), (first, true));

    harness.advance_ms(window_ms + 1);
    harness.restart();
    let fresh = harness
        .engine()
        .enqueue("dedup", keyed())
        .await
        .expect("enqueue");
    assert!(!fresh.deduplicated, "the window ended");
    assert_ne!(fresh.id, first);
    harness.restart();
    let repeat = harness
        .engine()
        .enqueue("dedup", keyed())
        .await
        .expect("enqueue");
    assert_eq!((repeat.id, repeat.deduplicated), (fresh.id, true));
}
