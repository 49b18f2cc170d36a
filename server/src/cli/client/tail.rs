//! `switchboard tail [NAME]`: live traffic for a person watching — each message when it is
//! queued, delivered, nacked, acked, replied to, dead-lettered or expired — read from the
//! server's feed (`GET /api/v1/feed`, server-sent events). `--json` prints one event per line.
//! A feed that breaks off (a server restart) is opened again, for up to `--reconnect-timeout`.

use clap::Args;
use serde_json::Value;

use super::identity::Connection;
use super::output::{clock, print_json_line, print_text};
use super::retry::{reconnecting, RETRY_PAUSE_FIRST};
use super::status::details;
use super::{checked, Failure};

/// Flags of `switchboard tail`.
#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Only the traffic this agent sent or received.
    #[arg(value_name = "NAME")]
    pub only: Option<String>,
    /// Stop after this many events (default: run until interrupted).
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// Print each event as one line of JSON.
    #[arg(long)]
    pub json: bool,
}

/// One server-sent event: its name and data.
#[derive(Debug, PartialEq, Eq)]
struct SseEvent {
    name: String,
    data: String,
}

/// Takes the complete events off the front of `buffer` (events end with a blank line).
fn take_events(buffer: &mut String) -> Vec<SseEvent> {
    let mut events = Vec::new();
    while let Some(end) = buffer.find("\n\n") {
        let block: String = buffer.drain(..end + 2).collect();
        let mut name = String::from("message");
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                name = value.trim().to_string();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value).to_string());
            }
        }
        if !data.is_empty() {
            events.push(SseEvent {
                name,
                data: data.join("\n"),
            });
        }
    }
    events
}

/// Runs `switchboard tail`.
pub async fn run(args: TailArgs) -> Result<(), Failure> {
    let client = args.connection.client()?;
    let only = args.only.as_deref();
    let mut response = checked(&client, reconnecting(&client, || client.feed(only))).await?;
    let mut buffer = String::new();
    let mut shown = 0usize;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            ended => {
                let cause = match ended {
                    Err(error) => error.to_string(),
                    Ok(_) => "the server closed it".to_string(),
                };
                eprintln!(
                    "switchboard: the feed from {} broke off ({cause}); opening it again",
                    client.base()
                );
                buffer.clear();
                // A pause, so a server that keeps closing the feed is not asked in a tight loop.
                tokio::time::sleep(RETRY_PAUSE_FIRST).await;
                response = checked(&client, reconnecting(&client, || client.feed(only))).await?;
                continue;
            }
        };
        buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        for event in take_events(&mut buffer) {
            match event.name.as_str() {
                "ready" => eprintln!(
                    "watching {} traffic at {} (Ctrl-C to stop)",
                    args.only.as_deref().unwrap_or("all"),
                    client.base()
                ),
                "lagged" => eprintln!("switchboard: too slow, missed some events: {}", event.data),
                "receipt" => {
                    if args.json {
                        print_json_line(&event.data)?;
                    } else if let Ok(value) = serde_json::from_str::<Value>(&event.data) {
                        print_text(&format!("{}\n", line(&value)))?;
                    }
                    shown += 1;
                    if args.count.is_some_and(|count| shown >= count) {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
    }
}

/// One event for people: time, stage, who, details, message id.
fn line(event: &Value) -> String {
    let text = |key: &str| event[key].as_str().unwrap_or("?").to_string();
    let stage = text("stage");
    let mut detail = details(event);
    if stage == "queued" {
        let priority = text("priority");
        let preview = event["preview"].as_str().unwrap_or("");
        detail = format!("[{priority}] {preview:?}");
        if let Some(question) = event["reply_to"].as_str() {
            detail.push_str(&format!(" (reply to {question})"));
        }
        if event["expects_reply"] == true {
            detail.push_str(" (expects a reply)");
        }
    }
    format!(
        "{}  {:<13} {} → {}  {}  {}",
        clock(&text("at")),
        stage.replace('_', " "),
        text("sender"),
        text("recipient"),
        detail,
        text("message_id")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_on_blank_lines_and_partial_ones_wait() {
        let mut buffer = String::from(
            "event: ready\ndata: {}\n\n: keep-alive\n\nevent: receipt\ndata: {\"a\":1}\n\nevent: rec",
        );
        let events = take_events(&mut buffer);
        assert_eq!(
            events,
            [
                SseEvent {
                    name: "ready".into(),
                    data: "{}".into()
                },
                SseEvent {
                    name: "receipt".into(),
                    data: "{\"a\":1}".into()
                }
            ]
        );
        assert_eq!(buffer, "event: rec");
    }
}
