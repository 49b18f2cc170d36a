//! Delivery order: higher priority first, FIFO within a priority, across batches and restarts.

mod common;

use common::Harness;
use switchboard_engine::NewMessage;

#[tokio::test]
async fn higher_priority_is_delivered_first_and_fifo_holds_within_a_priority() {
    let h = Harness::new();
    h.send("q", "low-1", 1).await;
    h.send("q", "high-1", 9).await;
    h.send("q", "low-2", 1).await;
    h.send("q", "high-2", 9).await;
    h.send("q", "mid-1", 5).await;
    assert_eq!(
        h.take("q", 10).await,
        ["high-1", "high-2", "mid-1", "low-1", "low-2"]
    );
}

#[tokio::test]
async fn lease_returns_at_most_the_number_asked_for() {
    let h = Harness::new();
    for i in 0..5 {
        h.send("q", &format!("m{i}"), 0).await;
    }
    assert_eq!(h.take("q", 2).await, ["m0", "m1"]);
    assert_eq!(h.take("q", 10).await, ["m2", "m3", "m4"]);
    assert!(h.take("q", 10).await.is_empty());
}

#[tokio::test]
async fn batch_enqueue_keeps_its_order() {
    let h = Harness::new();
    let batch: Vec<_> = (0..100).map(|i| NewMessage::new(format!("m{i}"))).collect();
    let results = h.engine.enqueue_batch("q", batch).await.unwrap();
    assert_eq!(results.len(), 100);
    assert!(
        results.windows(2).all(|w| w[0].id < w[1].id),
        "ids are time-ordered"
    );
    let got = h.take("q", 100).await;
    let want: Vec<_> = (0..100).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn order_survives_a_restart() {
    let h = Harness::new();
    h.send("q", "b", 1).await;
    h.send("q", "a", 2).await;
    h.send("q", "c", 1).await;
    let h = h.restart();
    assert_eq!(h.take("q", 10).await, ["a", "b", "c"]);
}

#[tokio::test]
async fn queues_are_independent() {
    let h = Harness::new();
    h.send("one", "x", 0).await;
    h.send("two", "y", 0).await;
    assert_eq!(h.take("one", 10).await, ["x"]);
    assert_eq!(h.take("two", 10).await, ["y"]);
    assert!(h.take("missing", 10).await.is_empty());
}
