//! Which queues the snapshot lists as the user's, and what the depths count.

use super::*;

fn queue(name: &str, ready: u64, dead: u64) -> QueueStats {
    QueueStats {
        name: name.into(),
        config: Default::default(),
        ready,
        delayed: 0,
        leased: 0,
        dead,
        counters: Default::default(),
    }
}

#[test]
fn internal_queues_are_not_listed_but_their_messages_count() {
    let panel = queues_panel(&[
        queue("inbox:alice", 1, 0),
        queue("jobs", 2, 0),
        queue("replies:alice", 4, 0),
        queue("capability:rust", 8, 1),
        queue("rule:reviews", 16, 0),
    ]);
    let listed: Vec<&str> = panel.other.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(listed, ["jobs"]);
    assert_eq!(panel.count, 2, "the inbox and the user's queue");
    assert_eq!(panel.ready, 31, "every user message is in the depths");
    assert_eq!(panel.dead, 1);
}

#[test]
fn agents_restored_at_start_are_returning_until_the_grace_ends() {
    let started_at = 1_000_000;
    // Restored: last seen when the registry loaded, just before the start.
    assert!(is_returning(started_at - 5, started_at, started_at + 1));
    assert!(is_returning(
        started_at - 5,
        started_at,
        started_at + RETURNING_GRACE_MS - 1
    ));
    assert!(!is_returning(
        started_at - 5,
        started_at,
        started_at + RETURNING_GRACE_MS
    ));
    // Seen after the start (e.g. its socket closed): unavailable at once.
    assert!(!is_returning(started_at + 10, started_at, started_at + 20));
}
