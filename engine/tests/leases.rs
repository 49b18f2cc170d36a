//! Leases: only the current token acts on a message; a lease that runs out makes the message
//! ready again at once; nacks retry with backoff; attempts run out into dead letters.

mod common;

use common::Harness;
use switchboard_engine::{
    DeadReason, EngineError, LeaseToken, MessageState, NewMessage, QueueConfig,
};

#[tokio::test]
async fn an_acked_message_is_gone_and_a_second_ack_fails() {
    let h = Harness::new();
    let id = h.send("q", "x", 0).await;
    let d = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    h.engine.ack(id, d.token).await.unwrap();
    assert_eq!(
        h.engine.ack(id, d.token).await,
        Err(EngineError::UnknownMessage(id))
    );
    assert!(h.engine.message(id).await.unwrap().is_none());
    assert_eq!(h.engine.queue_stats("q").unwrap().counters.acked, 1);
}

#[tokio::test]
async fn a_lease_that_runs_out_makes_the_message_ready_again_at_once() {
    let h = Harness::new();
    let id = h.send("q", "x", 0).await;
    let first = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    assert_eq!(first.message.attempts, 1);
    assert!(h.engine.lease("q", 1, Some(1000)).await.unwrap().is_empty());
    h.advance(999);
    assert!(h.engine.lease("q", 1, Some(1000)).await.unwrap().is_empty());
    h.advance(1);
    let second = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    assert_eq!(second.message.id, id);
    assert_eq!(second.message.attempts, 2);
    assert_ne!(second.token, first.token);
    assert_eq!(
        h.engine.ack(id, first.token).await,
        Err(EngineError::LeaseLost(id))
    );
    h.engine.ack(id, second.token).await.unwrap();
}

#[tokio::test]
async fn a_wrong_token_cannot_ack_nack_or_extend() {
    let h = Harness::new();
    let id = h.send("q", "x", 0).await;
    let d = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    let wrong = LeaseToken(d.token.0 ^ 1);
    assert_eq!(
        h.engine.ack(id, wrong).await,
        Err(EngineError::LeaseLost(id))
    );
    assert_eq!(
        h.engine.nack(id, wrong, None).await,
        Err(EngineError::LeaseLost(id))
    );
    assert_eq!(
        h.engine.extend(id, wrong, 5000).await,
        Err(EngineError::LeaseLost(id))
    );
    h.engine.ack(id, d.token).await.unwrap();
}

#[tokio::test]
async fn an_ack_after_the_deadline_is_refused() {
    let h = Harness::new();
    let id = h.send("q", "x", 0).await;
    let d = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    h.advance(1000);
    assert_eq!(
        h.engine.ack(id, d.token).await,
        Err(EngineError::LeaseLost(id))
    );
}

#[tokio::test]
async fn extend_moves_the_deadline_from_now() {
    let h = Harness::new();
    let id = h.send("q", "x", 0).await;
    let d = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    h.advance(900);
    let deadline = h.engine.extend(id, d.token, 1000).await.unwrap();
    assert_eq!(deadline, h.engine.now_ms() + 1000);
    h.advance(900);
    assert!(h.engine.lease("q", 1, Some(1000)).await.unwrap().is_empty());
    h.engine.ack(id, d.token).await.unwrap();
}

#[tokio::test]
async fn nack_without_delay_retries_after_exponential_backoff() {
    let h = Harness::new();
    let config = QueueConfig {
        retry_delay_ms: 100,
        retry_multiplier: 2.0,
        retry_delay_max_ms: 250,
        max_attempts: 10,
        ..QueueConfig::default()
    };
    h.configure("q", config).await;
    let id = h.send("q", "x", 0).await;
    for expected_delay in [100u64, 200, 250, 250] {
        let d = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
        h.engine.nack(id, d.token, None).await.unwrap();
        match h.engine.message(id).await.unwrap().unwrap().1 {
            MessageState::Delayed { until } => {
                assert_eq!(until, h.engine.now_ms() + expected_delay)
            }
            other => panic!("expected delayed, got {other:?}"),
        }
        h.advance(expected_delay - 1);
        assert!(h.engine.lease("q", 1, Some(1000)).await.unwrap().is_empty());
        h.advance(1);
    }
}

#[tokio::test]
async fn nack_with_explicit_delay_zero_is_ready_at_once() {
    let h = Harness::new();
    let id = h.send("q", "x", 0).await;
    let d = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    h.engine.nack(id, d.token, Some(0)).await.unwrap();
    assert_eq!(h.take("q", 1).await, ["x"]);
}

#[tokio::test]
async fn attempts_run_out_into_dead_letters_with_a_reason() {
    let h = Harness::new();
    h.configure(
        "q",
        QueueConfig {
            max_attempts: 2,
            ..QueueConfig::default()
        },
    )
    .await;
    let id = h.send("q", "x", 0).await;
    let d = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    h.engine.nack(id, d.token, Some(0)).await.unwrap();
    let d = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    assert_eq!(d.message.attempts, 2);
    h.advance(1000); // the second lease runs out: no attempts left
    assert!(h.engine.lease("q", 1, Some(1000)).await.unwrap().is_empty());
    let dead = h.engine.dead_letters("q", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message.id, id);
    assert_eq!(dead[0].reason, DeadReason::MaxAttempts);
    let stats = h.engine.queue_stats("q").unwrap();
    assert_eq!((stats.ready, stats.leased, stats.dead), (0, 0, 1));
}

#[tokio::test]
async fn redrive_resets_attempts_and_purge_deletes() {
    let h = Harness::new();
    h.configure(
        "q",
        QueueConfig {
            max_attempts: 1,
            ..QueueConfig::default()
        },
    )
    .await;
    let a = h.send("q", "a", 0).await;
    let b = h.send("q", "b", 0).await;
    for d in h.engine.lease("q", 2, Some(1000)).await.unwrap() {
        h.engine.nack(d.message.id, d.token, Some(0)).await.unwrap();
    }
    assert_eq!(h.engine.dead_letters("q", 10).await.unwrap().len(), 2);
    assert_eq!(h.engine.redrive("q", Some(&[a])).await.unwrap(), 1);
    let d = h.engine.lease("q", 5, Some(1000)).await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].message.id, d[0].message.attempts), (a, 1));
    assert_eq!(h.engine.purge_dead_letters("q", None).await.unwrap(), 1);
    assert!(h.engine.message(b).await.unwrap().is_none());
}

#[tokio::test]
async fn a_message_leased_at_a_crash_comes_back_ready_with_its_attempts() {
    let h = Harness::new();
    let id = h.send("q", "x", 0).await;
    h.engine.lease("q", 1, Some(60_000)).await.unwrap();
    let h = h.restart();
    let d = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    assert_eq!((d.message.id, d.message.attempts), (id, 2));
}

#[tokio::test]
async fn a_message_on_its_last_attempt_at_a_crash_is_dead_lettered_not_delivered() {
    let h = Harness::new();
    h.configure(
        "q",
        QueueConfig {
            max_attempts: 1,
            ..QueueConfig::default()
        },
    )
    .await;
    let id = h.send("q", "x", 0).await;
    h.engine.lease("q", 1, Some(60_000)).await.unwrap();
    let h = h.restart();
    assert!(h.engine.lease("q", 1, Some(1000)).await.unwrap().is_empty());
    assert_eq!(
        h.engine.dead_letters("q", 1).await.unwrap()[0].message.id,
        id
    );
}

#[tokio::test]
async fn per_message_max_attempts_overrides_the_queue() {
    let h = Harness::new();
    let message = NewMessage {
        max_attempts: Some(1),
        ..NewMessage::new("x")
    };
    let id = h.engine.enqueue("q", message).await.unwrap().id;
    let d = h.engine.lease("q", 1, Some(1000)).await.unwrap().remove(0);
    h.engine.nack(id, d.token, Some(0)).await.unwrap();
    assert_eq!(h.engine.dead_letters("q", 1).await.unwrap().len(), 1);
}

#[tokio::test]
async fn invalid_lease_lengths_are_refused() {
    let h = Harness::new();
    h.send("q", "x", 0).await;
    assert!(matches!(
        h.engine.lease("q", 1, Some(0)).await,
        Err(EngineError::InvalidArgument(_))
    ));
    assert!(matches!(
        h.engine.lease("q", 1, Some(u64::MAX)).await,
        Err(EngineError::InvalidArgument(_))
    ));
}
