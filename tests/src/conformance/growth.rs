//! The store holds what is live, not history: acked messages and forgotten dedup keys leave
//! nothing behind.

use switchboard_engine::{NewMessage, QueueConfig, Storage};

use super::harness::Harness;
use super::restart::{configure_error, LEASE_MS};

/// Messages that were acked, and dedup keys whose window ended, leave nothing in the store:
/// `entries` (rows or keys the backend holds, read while no engine runs) stays at one per
/// queue however many messages passed through.
pub async fn acked_messages_leave_nothing_behind(
    open: impl Fn() -> Box<dyn Storage>,
    entries: impl Fn() -> u64,
) {
    let mut harness = Harness::start(open);
    let config = QueueConfig {
        dedup_window_ms: 1_000,
        ..QueueConfig::default()
    };
    harness
        .engine()
        .configure_queue("churn", config)
        .await
        .unwrap_or_else(|e| panic!("{}", configure_error(e)));
    let mut counts = Vec::new();
    for (round, messages) in [(0u64, 50u64), (1, 500)] {
        cycle_messages(&harness, round, messages, true).await;
        harness.advance_ms(2_000);
        // An enqueue settles the queue's dedup keys whose window ended.
        cycle_messages(&harness, round + 100, 1, false).await;
        harness.stop();
        counts.push(entries());
        harness.restart();
    }
    assert_eq!(
        counts,
        vec![1, 1],
        "only the queue config is left after each round"
    );
    let snapshot = harness.recover();
    assert!(snapshot.messages.is_empty() && snapshot.dedup.is_empty());
}

/// Sends `count` messages (each with its own dedup key when `with_keys`) through enqueue, lease
/// (with one nack and redelivery in ten) and ack, in batches.
async fn cycle_messages<F: Fn() -> Box<dyn Storage>>(
    harness: &Harness<F>,
    round: u64,
    count: u64,
    with_keys: bool,
) {
    const BATCH: u64 = 50;
    let engine = harness.engine();
    let mut sent = 0;
    while sent < count {
        let size = BATCH.min(count - sent);
        let batch: Vec<NewMessage> = (sent..sent + size)
            .map(|n| {
                let message = NewMessage::new(format!("{round}-{n}"));
                if with_keys {
                    message.with_dedup_key(format!("{round}-{n}"))
                } else {
                    message
                }
            })
            .collect();
        engine.enqueue_batch("churn", batch).await.expect("enqueue");
        let mut left = size;
        while left > 0 {
            let deliveries = engine
                .lease("churn", left as usize, Some(LEASE_MS))
                .await
                .expect("lease");
            assert!(!deliveries.is_empty(), "messages are ready");
            let mut acks = Vec::new();
            for delivery in deliveries {
                let id = delivery.message.id;
                if id.0 % 10 == 0 && delivery.message.attempts == 1 {
                    engine
                        .nack(id, delivery.token, Some(0))
                        .await
                        .expect("nack");
                } else {
                    acks.push((id, delivery.token));
                }
            }
            left -= acks.len() as u64;
            for result in engine.ack_batch(&acks).await.expect("ack") {
                result.expect("ack of a current lease");
            }
        }
        sent += size;
    }
}
