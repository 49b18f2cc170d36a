//! Black-box tests of the messaging commands of the real `switchboard` binary against a
//! running server: send / inbox / ack / nack / wait / ask / reply round trips, their exit
//! codes (a timed-out wait or ask exits 3, a usage error 2) and the shape of their `--json`
//! output; message text shown to people with its control characters escaped.

mod cli_support;

use std::time::Duration;

use cli_support::{wait, Bus};

/// What `send` stores, `inbox --json` shows (sender, content, priority, thread), and after
/// `ack` the inbox is empty.
#[tokio::test]
async fn send_inbox_ack_round_trip() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let sent = bus
        .run(&[
            "send",
            "bob",
            "build is green",
            "--agent",
            "alice",
            "--priority",
            "high",
            "--thread",
            "release-7",
            "--json",
        ])
        .await;
    sent.ok();
    let sent = sent.json();
    assert_eq!(sent["status"], "sent");
    assert_eq!(sent["recipient"], "bob");
    let id = sent["message_id"].as_str().unwrap().to_string();

    let inbox = bus.run(&["inbox", "--agent", "bob", "--json"]).await;
    inbox.ok();
    let messages = inbox.json();
    let messages = messages.as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["id"], id.as_str());
    assert_eq!(messages[0]["sender"], "alice");
    assert_eq!(messages[0]["content"], "build is green");
    assert_eq!(messages[0]["priority"], "high");
    assert_eq!(messages[0]["metadata"]["thread_id"], "release-7");
    assert_eq!(messages[0]["attempts"], 1);

    let acked = bus.run(&["ack", &id, "--agent", "bob", "--json"]).await;
    acked.ok();
    assert_eq!(acked.json()["acknowledged"][0], id.as_str());
    let after = bus.run(&["inbox", "--agent", "bob"]).await;
    after.ok();
    assert_eq!(after.stdout.trim(), "no messages for bob");
}

/// `send TO -` reads the message from standard input.
#[tokio::test]
async fn send_reads_the_text_from_stdin_for_a_dash() {
    let bus = Bus::start(&["bob"]).await;
    let run = bus
        .run_with_stdin(
            &["send", "bob", "-", "--agent", "ci"],
            "line one\nline two\n",
        )
        .await;
    run.ok();
    assert!(run.stdout.starts_with("sent "), "{}", run.stdout);
    let inbox = bus
        .run(&["inbox", "--agent", "bob", "--json", "--ack"])
        .await;
    inbox.ok();
    assert_eq!(inbox.json()[0]["content"], "line one\nline two");
    assert_eq!(inbox.json()[0]["sender"], "ci");
}

/// People get the message as a readable block with its id and the advice to ack it.
#[tokio::test]
async fn inbox_for_people_shows_sender_text_and_how_to_ack() {
    let bus = Bus::start(&["bob"]).await;
    let id = bus.send("alice", "bob", "please rebase").await;
    let run = bus.run(&["inbox", "--agent", "bob"]).await;
    run.ok();
    assert!(
        run.stdout.contains(&format!("● {id} from alice · medium")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("    please rebase"), "{}", run.stdout);
    assert!(run.stdout.contains("switchboard ack ID"), "{}", run.stdout);
}

/// `inbox --ack` acknowledges what it printed: nothing comes back.
#[tokio::test]
async fn inbox_with_ack_settles_what_it_printed() {
    let bus = Bus::start(&["bob"]).await;
    bus.send("alice", "bob", "one").await;
    bus.run(&["inbox", "--agent", "bob", "--ack"]).await.ok();
    let again = bus.run(&["inbox", "--agent", "bob", "--json"]).await;
    again.ok();
    assert_eq!(again.json(), serde_json::json!([]));
}

/// `nack` gives a message back: it is delivered again, as its second attempt.
#[tokio::test]
async fn nack_gives_the_message_back_for_another_delivery() {
    let bus = Bus::start(&["bob"]).await;
    let id = bus.send("alice", "bob", "try again").await;
    bus.run(&["inbox", "--agent", "bob"]).await.ok();
    let nacked = bus.run(&["nack", &id, "--agent", "bob", "--json"]).await;
    nacked.ok();
    assert_eq!(nacked.json()["status"], "requeued");
    let again = bus.run(&["inbox", "--agent", "bob", "--json"]).await;
    again.ok();
    assert_eq!(again.json()[0]["id"], id.as_str());
    assert_eq!(again.json()[0]["attempts"], 2);
}

/// A nack of a message's last attempt says it became a dead letter instead of promising a
/// redelivery that will not come.
#[tokio::test]
async fn nack_of_the_last_attempt_says_it_is_a_dead_letter() {
    let bus = Bus::start(&["bob"]).await;
    let (status, sent) = bus
        .post(
            "/api/v1/messages?sender=alice",
            serde_json::json!({ "recipient": "bob", "content": "one try", "max_attempts": 1 }),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    let id = sent["message_id"].as_str().unwrap().to_string();
    bus.run(&["inbox", "--agent", "bob"]).await.ok();
    let nacked = bus.run(&["nack", &id, "--agent", "bob"]).await;
    nacked.ok();
    assert!(nacked.stdout.contains("dead letter"), "{}", nacked.stdout);
    assert!(
        !nacked.stdout.contains("will be delivered again"),
        "{}",
        nacked.stdout
    );
}

/// Acking an id that is not one of the agent's leased messages fails with exit 1.
#[tokio::test]
async fn ack_of_a_message_not_leased_exits_1() {
    let bus = Bus::start(&["bob"]).await;
    let run = bus
        .run(&[
            "ack",
            "01a2deadbeef-0000-0000-0000-000000000000",
            "--agent",
            "bob",
        ])
        .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("not acknowledged"), "{}", run.stderr);
}

/// `wait` exits 3 with nothing on stdout when no message comes in time.
#[tokio::test]
async fn wait_times_out_with_exit_code_3() {
    let bus = Bus::start(&["bob"]).await;
    let started = std::time::Instant::now();
    let run = bus.run(&["wait", "--agent", "bob", "--timeout", "1"]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("no message for bob within 1 s"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
}

/// A waiting `wait` returns as soon as a message arrives, prints it, exits 0.
#[tokio::test]
async fn wait_returns_the_message_that_arrives() {
    let bus = Bus::start(&["bob"]).await;
    let waiting = bus.spawn(&[
        "wait",
        "--agent",
        "bob",
        "--timeout",
        "30",
        "--json",
        "--ack",
    ]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = bus.send("alice", "bob", "wake up").await;
    let run = wait(waiting).await;
    run.ok();
    assert_eq!(run.json()["id"], id.as_str());
    assert_eq!(run.json()["content"], "wake up");
    let status = bus.run(&["status", &id, "--json"]).await;
    assert_eq!(status.json()["state"], "acked", "--ack acked it");
}

/// `ask` gets the reply correlated with its question; a message that was already waiting in
/// the asker's inbox is left alone (never leased by the ask).
#[tokio::test]
async fn ask_returns_the_correlated_reply_and_leaves_the_inbox_alone() {
    let bus = Bus::start(&["alice", "bob", "carol"]).await;
    let unrelated = bus.send("carol", "alice", "unrelated note").await;
    let asking = bus.spawn(&[
        "ask",
        "bob",
        "which port?",
        "--agent",
        "alice",
        "--timeout",
        "30",
        "--json",
    ]);
    let question = bus
        .run(&[
            "wait",
            "--agent",
            "bob",
            "--timeout",
            "20",
            "--json",
            "--ack",
        ])
        .await;
    question.ok();
    let question = question.json();
    assert_eq!(question["content"], "which port?");
    assert_eq!(question["metadata"]["expects_reply"], true);
    let question_id = question["id"].as_str().unwrap();
    let replied = bus
        .run(&[
            "reply",
            question_id,
            "port 8080",
            "--agent",
            "bob",
            "--json",
        ])
        .await;
    replied.ok();
    assert_eq!(replied.json()["recipient"], "alice");

    let asked = wait(asking).await;
    asked.ok();
    let asked = asked.json();
    assert_eq!(asked["question_id"], question_id);
    assert_eq!(asked["recipient"], "bob");
    assert_eq!(asked["reply"]["content"], "port 8080");
    assert_eq!(asked["reply"]["sender"], "bob");
    assert_eq!(asked["reply"]["reply_to"], question_id);

    let inbox = bus.run(&["inbox", "--agent", "alice", "--json"]).await;
    let inbox = inbox.json();
    assert_eq!(
        inbox.as_array().unwrap().len(),
        1,
        "the reply is not in the inbox too"
    );
    assert_eq!(inbox[0]["id"], unrelated.as_str());
    assert_eq!(inbox[0]["attempts"], 1, "the ask spent no delivery of it");
}

/// An `ask` nobody answers exits 3; an answer that comes later lands in the asker's inbox.
#[tokio::test]
async fn unanswered_ask_exits_3_and_a_late_reply_reaches_the_inbox() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let asked = bus
        .run(&[
            "ask",
            "bob",
            "anyone?",
            "--agent",
            "alice",
            "--timeout",
            "1",
            "--json",
        ])
        .await;
    assert_eq!(asked.code, 3, "{asked:?}");
    assert!(
        asked.stderr.contains("no reply from bob within 1 s"),
        "{}",
        asked.stderr
    );
    let question_id = asked.json()["question_id"].as_str().unwrap().to_string();
    assert!(asked.json()["reply"].is_null());

    bus.run(&["reply", &question_id, "sorry, late", "--agent", "bob"])
        .await
        .ok();
    let inbox = bus.run(&["inbox", "--agent", "alice", "--json"]).await;
    inbox.ok();
    assert_eq!(inbox.json()[0]["content"], "sorry, late");
    assert_eq!(inbox.json()[0]["reply_to"], question_id.as_str());
}

/// `send --wait-ack` returns once the recipient acks, with the receipt in its JSON.
#[tokio::test]
async fn send_wait_ack_returns_when_the_recipient_acks() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let sending = bus.spawn(&[
        "send",
        "bob",
        "ack me",
        "--agent",
        "alice",
        "--wait-ack",
        "--timeout",
        "30",
        "--json",
    ]);
    let read = bus
        .run(&["wait", "--agent", "bob", "--timeout", "20", "--ack"])
        .await;
    read.ok();
    let sent = wait(sending).await;
    sent.ok();
    let sent = sent.json();
    assert_eq!(sent["status"], "sent");
    assert_eq!(sent["receipt"]["state"], "acked");
}

/// `send --wait-ack` exits 3 when the recipient does not ack in time.
#[tokio::test]
async fn send_wait_ack_times_out_with_exit_code_3() {
    let bus = Bus::start(&["bob"]).await;
    let run = bus
        .run(&[
            "send",
            "bob",
            "ignored",
            "--agent",
            "alice",
            "--wait-ack",
            "--timeout",
            "1",
        ])
        .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("was not acked within 1 s"),
        "{}",
        run.stderr
    );
}

/// A message's escape sequences cannot recolour, retitle or overwrite the reader's terminal:
/// `inbox` shows ESC, BEL and CR escaped, and `--json` keeps the exact text.
#[tokio::test]
async fn inbox_shows_control_characters_escaped_and_json_keeps_them() {
    let bus = Bus::start(&["bob"]).await;
    let hostile = "\x1b]0;pwned\x07\x1b[31mred\r";
    // Twice: one copy read as text, one as JSON.
    for _ in 0..2 {
        let (status, sent) = bus
            .post(
                "/api/v1/messages?sender=mallory",
                serde_json::json!({ "recipient": "bob", "content": hostile }),
            )
            .await;
        assert_eq!(status, 200, "{sent}");
    }

    let text = bus
        .run(&["inbox", "--agent", "bob", "--limit", "1", "--ack"])
        .await;
    text.ok();
    for raw in ['\x1b', '\x07', '\r'] {
        assert!(
            !text.stdout.contains(raw),
            "raw {raw:?} in {:?}",
            text.stdout
        );
    }
    assert!(
        text.stdout.contains(r"    \x1b]0;pwned\x07\x1b[31mred\r"),
        "{}",
        text.stdout
    );

    let json = bus.run(&["inbox", "--agent", "bob", "--json"]).await;
    json.ok();
    assert_eq!(json.json()[0]["content"], hostile);
}
