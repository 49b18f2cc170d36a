//! Black-box tests of answering with the real `switchboard` binary: `reply` acknowledges the
//! question it answers (so it is not delivered again when its lease runs out) unless
//! `--keep-question`, and `inbox` reminds an agent of messages delivered to it earlier that it
//! has not acknowledged yet.

mod cli_support;

use cli_support::Bus;
use serde_json::Value;

/// Where the message is now, per its receipt (`queued`, `delivered`, `acked`, ...).
async fn state_of(bus: &Bus, id: &str) -> Value {
    let (status, receipt) = bus.get(&format!("/api/v1/messages/{id}/status")).await;
    assert_eq!(status, 200, "{receipt}");
    receipt["state"].clone()
}

/// Alice asks bob; bob reads his inbox (a lease). Returns the question's id.
async fn question_read_by_bob(bus: &Bus) -> String {
    let question = bus.send("alice", "bob", "which port?").await;
    bus.run(&["inbox", "--agent", "bob"]).await.ok();
    assert_eq!(state_of(bus, &question).await, "delivered");
    question
}

#[tokio::test]
async fn reply_acknowledges_the_question_it_answers() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let question = question_read_by_bob(&bus).await;
    let replied = bus
        .run(&["reply", &question, "8080", "--agent", "bob", "--json"])
        .await;
    replied.ok();
    assert_eq!(replied.json()["recipient"], "alice");
    assert_eq!(replied.json()["question_acknowledged"], true);
    assert_eq!(
        state_of(&bus, &question).await,
        "acked",
        "an answered question is not delivered again when its lease runs out"
    );
}

#[tokio::test]
async fn reply_says_in_its_text_that_the_question_was_acknowledged() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let question = question_read_by_bob(&bus).await;
    let replied = bus
        .run(&["reply", &question, "8080", "--agent", "bob"])
        .await;
    replied.ok();
    assert!(
        replied.stdout.contains(&format!("{question} acknowledged")),
        "{}",
        replied.stdout
    );
}

#[tokio::test]
async fn reply_with_keep_question_leaves_the_question_leased() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let question = question_read_by_bob(&bus).await;
    let replied = bus
        .run(&[
            "reply",
            &question,
            "8080, more later",
            "--agent",
            "bob",
            "--keep-question",
            "--json",
        ])
        .await;
    replied.ok();
    assert_eq!(replied.json()["question_acknowledged"], false);
    assert_eq!(
        state_of(&bus, &question).await,
        "delivered",
        "a kept question stays leased, to come back after its lease unless acked"
    );
}

#[tokio::test]
async fn reply_help_says_replying_acknowledges_and_how_not_to() {
    let bus = Bus::start(&[]).await;
    let help = bus.run(&["reply", "--help"]).await;
    help.ok();
    assert!(help.stdout.contains("--keep-question"), "{}", help.stdout);
    assert!(
        help.stdout.contains("replying acknowledges it by default"),
        "{}",
        help.stdout
    );
}

#[tokio::test]
async fn inbox_reminds_of_messages_delivered_earlier_and_not_acked() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let first = bus.send("alice", "bob", "first").await;
    let second = bus.send("alice", "bob", "second").await;
    bus.run(&["inbox", "--agent", "bob"]).await.ok();
    let third = bus.send("alice", "bob", "third").await;
    let inbox = bus.run(&["inbox", "--agent", "bob"]).await;
    inbox.ok();
    let notice = inbox
        .stdout
        .lines()
        .find(|line| line.contains("delivered to you earlier are not acknowledged yet"))
        .unwrap_or_else(|| panic!("no reminder in:\n{}", inbox.stdout));
    assert!(
        notice.contains(&first) && notice.contains(&second),
        "{notice}"
    );
    assert!(
        notice.contains("they come back after their lease"),
        "{notice}"
    );
    assert!(
        !notice.contains(&third),
        "the message just shown is not 'earlier': {notice}"
    );
}

#[tokio::test]
async fn inbox_gives_no_reminder_once_earlier_messages_are_acked() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let first = bus.send("alice", "bob", "first").await;
    bus.run(&["inbox", "--agent", "bob"]).await.ok();
    bus.run(&["ack", &first, "--agent", "bob"]).await.ok();
    let inbox = bus.run(&["inbox", "--agent", "bob"]).await;
    inbox.ok();
    assert!(
        !inbox.stdout.contains("not acknowledged yet"),
        "{}",
        inbox.stdout
    );
}

#[tokio::test]
async fn reply_to_a_broadcast_from_system_says_to_ack_it_and_leaves_it_leased() {
    let bus = Bus::start(&["bob"]).await;
    let (status, body) = bus
        .post(
            "/api/v1/broadcast?sender=system",
            serde_json::json!({ "recipients": ["bob"], "content": "maintenance at noon" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, leased) = bus.get("/api/v1/messages/bob").await;
    assert_eq!(status, 200, "{leased}");
    let id = leased[0]["id"].as_str().unwrap().to_string();
    let replied = bus.run(&["reply", &id, "noted", "--agent", "bob"]).await;
    assert_ne!(replied.code, 0, "{}", replied.stdout);
    assert!(
        replied
            .stderr
            .contains("came from `system`, which has no inbox to answer")
            && replied.stderr.contains(&format!("switchboard ack {id}")),
        "{}",
        replied.stderr
    );
    assert!(
        !replied.stderr.contains("receipt is gone"),
        "{}",
        replied.stderr
    );
    assert_eq!(
        state_of(&bus, &id).await,
        "delivered",
        "not acked for the caller"
    );
}
