//! `switchboard status ID`: a message's delivery receipt — where it is, and each stage with
//! its time: queued, delivered (to whom, which attempt), nacked, acked, dead-lettered or
//! expired with the reason, replied to.

use clap::Args;
use serde_json::Value;

use super::identity::Connection;
use super::output::{print_json, print_text, table};
use super::{checked, Failure};

/// Flags of `switchboard status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The message id (as `send` printed it).
    #[arg(value_name = "ID")]
    pub id: String,
    /// Print JSON for programs (the body of `GET /api/v1/messages/{id}/status`).
    #[arg(long)]
    pub json: bool,
}

/// Runs `switchboard status`.
pub async fn run(args: StatusArgs) -> Result<(), Failure> {
    let client = args.connection.client()?;
    let receipt = checked(&client, client.status(&args.id)).await?;
    if args.json {
        print_json(&receipt)
    } else {
        print_text(&receipt_text(&receipt))
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("?")
}

/// The receipt for people: a summary line, then one row per stage.
pub fn receipt_text(receipt: &Value) -> String {
    let mut out = format!(
        "message {}: {} → {}, {}\n",
        text(&receipt["message_id"]),
        text(&receipt["sender"]),
        text(&receipt["recipient"]),
        text(&receipt["state"]).replace('_', " ")
    );
    if let (Some(attempts), Some(max)) = (
        receipt["attempts"].as_u64(),
        receipt["max_attempts"].as_u64(),
    ) {
        out.push_str(&format!("deliveries: {attempts} of {max} allowed\n"));
    }
    if let Some(lease) = receipt["lease_expires_at"].as_str() {
        out.push_str(&format!("leased until {lease}\n"));
    }
    if let Some(expires) = receipt["expires_at"].as_str() {
        out.push_str(&format!("expires at {expires}\n"));
    }
    if let Some(waiting_for) = receipt["waiting_for"].as_str() {
        out.push_str(&format!("waiting for {waiting_for}\n"));
    }
    if receipt["history_complete"] == false {
        out.push_str("(history incomplete: the server restarted or stages were dropped)\n");
    }
    let rows: Vec<Vec<String>> = receipt["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|stage| {
            vec![
                text(&stage["stage"]).replace('_', " "),
                text(&stage["at"]).to_string(),
                details(stage),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(&["STAGE", "AT", "DETAILS"], &rows));
    out
}

/// The details of one stage, in words (`to bob, attempt 1, via rest`).
pub fn details(stage: &Value) -> String {
    let mut parts = Vec::new();
    let agent = stage["agent"].as_str();
    match stage["stage"].as_str().unwrap_or("") {
        "delivered" => {
            if let Some(agent) = agent {
                parts.push(format!("to {agent}"));
            }
            if let Some(attempt) = stage["attempt"].as_u64() {
                parts.push(format!("attempt {attempt}"));
            }
            if let Some(via) = stage["via"].as_str() {
                parts.push(format!("via {via}"));
            }
        }
        "replied" => {
            if let Some(agent) = agent {
                parts.push(format!("by {agent}"));
            }
            if let Some(id) = stage["related_message_id"].as_str() {
                parts.push(format!("reply {id}"));
            }
        }
        _ => {
            if let Some(agent) = agent {
                parts.push(format!("by {agent}"));
            }
            if let Some(id) = stage["related_message_id"].as_str() {
                parts.push(format!("now {id}"));
            }
        }
    }
    if let Some(reason) = stage["reason"].as_str() {
        parts.push(reason.to_string());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn receipt_lists_each_stage_with_its_details() {
        let receipt = json!({
            "message_id": "m1", "sender": "alice", "recipient": "bob", "state": "acked",
            "history_complete": true,
            "stages": [
                {"stage": "queued", "at": "2024-01-01T00:00:00.000Z"},
                {"stage": "delivered", "at": "2024-01-01T00:00:01.000Z", "agent": "bob",
                 "attempt": 1, "via": "rest"},
                {"stage": "acked", "at": "2024-01-01T00:00:02.000Z", "agent": "bob"}
            ]
        });
        let text = receipt_text(&receipt);
        assert!(
            text.starts_with("message m1: alice → bob, acked\n"),
            "{text}"
        );
        assert!(text.contains("to bob, attempt 1, via rest"), "{text}");
        assert!(
            text.contains("acked      2024-01-01T00:00:02.000Z  by bob"),
            "{text}"
        );
    }

    #[test]
    fn a_waiting_message_says_what_it_waits_for() {
        let receipt = json!({
            "message_id": "m1", "sender": "alice", "recipient": "capability:quality",
            "state": "waiting", "history_complete": true,
            "waiting_for": "an agent with capability quality",
            "stages": [{"stage": "queued", "at": "2024-01-01T00:00:00.000Z"}]
        });
        let text = receipt_text(&receipt);
        assert!(
            text.contains("waiting for an agent with capability quality\n"),
            "{text}"
        );
        assert!(!text.contains("restarted"), "{text}");
    }
}
