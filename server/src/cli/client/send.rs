//! `switchboard send TO TEXT`: send a message; with `--wait-ack`, wait until the recipient
//! acknowledges it (the delivery receipt says so), and say what happened if it never will.

use std::io::Read;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};

use super::api::{Client, Outgoing};
use super::identity::Connection;
use super::output::{print_json, print_text};
use super::{checked, Failure, PriorityArg};
use crate::api::wire::SendMessageResponse;

/// Sender name used when the caller's agent cannot be told (as the server's default).
pub const SENDER_DEFAULT: &str = "system";
/// Largest message read from standard input, in bytes (the server's body limit).
pub const STDIN_BYTES_MAX: usize = crate::limits::BODY_BYTES_MAX;
/// First and longest pause between receipt checks of `--wait-ack`.
const ACK_POLL_FIRST: Duration = Duration::from_millis(100);
const ACK_POLL_MAX: Duration = Duration::from_secs(1);

/// Flags of `switchboard send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Recipient: an agent name or id, `capability:NAME`, or `auto` (routed by content).
    pub to: String,
    /// The message; `-` reads it from standard input.
    pub text: String,
    /// Priority: critical is delivered first.
    #[arg(long, value_enum, default_value_t = PriorityArg::Medium)]
    pub priority: PriorityArg,
    /// Thread this message belongs to (kept as metadata.thread_id).
    #[arg(long, value_name = "ID")]
    pub thread: Option<String>,
    /// The message this one answers (its id).
    #[arg(long, value_name = "ID")]
    pub reply_to: Option<String>,
    /// Send with this idempotency key (default: a fresh one): a send repeated with the same key
    /// within 5 minutes stores the message once and answers its first id. After "outcome
    /// unknown", repeat the command with the key it names.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Wait until the recipient acknowledges the message (exit 3 when --timeout passes first,
    /// 1 when it dead-letters or expires).
    #[arg(long)]
    pub wait_ack: bool,
    /// With --wait-ack: how long to wait, in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
    /// Print JSON for programs.
    #[arg(long)]
    pub json: bool,
}

/// Reads the message text: the argument, or standard input for `-`.
pub fn message_text(text: &str) -> Result<String, Failure> {
    let text = if text == "-" {
        let mut buffer = Vec::new();
        std::io::stdin()
            .take(STDIN_BYTES_MAX as u64 + 1)
            .read_to_end(&mut buffer)
            .map_err(|error| Failure::usage(format!("cannot read standard input: {error}")))?;
        if buffer.len() > STDIN_BYTES_MAX {
            return Err(Failure::usage(format!(
                "the message on standard input is larger than {STDIN_BYTES_MAX} bytes"
            )));
        }
        String::from_utf8(buffer)
            .map_err(|_| Failure::usage("the message on standard input is not UTF-8 text"))?
            .trim_end_matches(['\n', '\r'])
            .to_string()
    } else {
        text.to_string()
    };
    if text.trim().is_empty() {
        return Err(Failure::usage("the message is empty; say something"));
    }
    Ok(text)
}

/// Runs `switchboard send`.
pub async fn run(args: SendArgs) -> Result<(), Failure> {
    let client = args.connection.client()?;
    let sender = args
        .connection
        .identity()
        .unwrap_or_else(|| SENDER_DEFAULT.to_string());
    let mut message = Outgoing::new(&args.to, &message_text(&args.text)?);
    message.priority = args.priority.into();
    message.reply_to = args.reply_to.clone();
    if let Some(key) = &args.idempotency_key {
        message.idempotency_key = key.clone();
    }
    if let Some(thread) = &args.thread {
        message.metadata.insert("thread_id".into(), json!(thread));
    }
    let sent = checked(&client, client.send(&sender, &message)).await?;
    if !args.wait_ack {
        if args.json {
            return print_json(&sent);
        }
        print_text(&format!("sent {} to {}\n", sent.message_id, sent.recipient))?;
        return print_note(&sent);
    }
    if !args.json {
        print_text(&format!(
            "sent {} to {}; waiting for the ack…\n",
            sent.message_id, sent.recipient
        ))?;
        print_note(&sent)?;
    }
    let receipt = wait_for_ack(&client, &sent.message_id, args.timeout).await?;
    if args.json {
        let mut out = serde_json::to_value(&sent).expect("a send answer serializes");
        out["receipt"] = receipt;
        print_json(&out)
    } else {
        let acked = last_stage(&receipt, "acked");
        print_text(&format!(
            "acked by {} at {}\n",
            acked["agent"].as_str().unwrap_or(&sent.recipient),
            acked["at"].as_str().unwrap_or("?")
        ))
    }
}

/// Says why a routed message waits (e.g. no agent has its capability) or where `auto` fell
/// back, when the server says so.
fn print_note(sent: &SendMessageResponse) -> Result<(), Failure> {
    match &sent.note {
        Some(note) => print_text(&format!("note: {note}\n")),
        None => Ok(()),
    }
}

/// Polls the receipt of `id` until it is acked (returns the receipt), can never be (fails),
/// or `timeout_seconds` pass (fails with the timeout code).
pub async fn wait_for_ack(
    client: &Client,
    id: &str,
    timeout_seconds: u64,
) -> Result<Value, Failure> {
    let deadline = Instant::now() + Duration::from_secs(timeout_seconds);
    let mut pause = ACK_POLL_FIRST;
    loop {
        let receipt = client.status(id).await?;
        match receipt["state"].as_str().unwrap_or("") {
            "acked" => return Ok(receipt),
            "dead_lettered" | "expired" | "gone" | "rerouted" => {
                let state = receipt["state"].as_str().unwrap_or("?");
                let last = receipt["stages"]
                    .as_array()
                    .and_then(|stages| stages.last())
                    .cloned()
                    .unwrap_or(Value::Null);
                let reason = last["reason"].as_str().unwrap_or("no reason given");
                return Err(Failure::usage(format!(
                    "message {id} will not be acked: it is {state} ({reason}); see \
                     `switchboard status {id}`"
                )));
            }
            _ => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Failure::timeout(format!(
                "message {id} was not acked within {timeout_seconds} s (it is {}); follow it \
                 with `switchboard status {id}`",
                receipt["state"].as_str().unwrap_or("?")
            )));
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(ACK_POLL_MAX);
    }
}

/// The last stage of kind `kind` in a receipt (null when there is none).
fn last_stage<'a>(receipt: &'a Value, kind: &str) -> &'a Value {
    receipt["stages"]
        .as_array()
        .and_then(|stages| stages.iter().rev().find(|s| s["stage"] == kind))
        .unwrap_or(&Value::Null)
}
