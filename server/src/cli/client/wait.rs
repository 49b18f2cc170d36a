//! `switchboard wait [--timeout S]`: block until a message arrives, print it, exit 0; exit 3
//! when the timeout passes first. A server restart does not end the wait: it reconnects for up
//! to `--reconnect-timeout` seconds (then exit 4). For scripts and loops:
//!
//! ```text
//! while msg=$(switchboard wait --timeout 600 --ack --json); do handle "$msg"; done
//! ```

use std::time::{Duration, Instant};

use clap::Args;

use super::api::{poll_seconds, Client, LONG_POLL_SECONDS_MAX};
use super::identity::Connection;
use super::output::{message_block, print_json, print_text};
use super::retry::reconnecting;
use super::{checked, Failure};
use crate::api::wire::InboxMessage;

/// Flags of `switchboard wait`.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Give up after this many seconds (exit 3); without it, wait for ever.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Acknowledge the message once printed (otherwise `switchboard ack ID` after handling).
    #[arg(long)]
    pub ack: bool,
    /// Print JSON for programs (the message object).
    #[arg(long)]
    pub json: bool,
}

/// Runs `switchboard wait`.
pub async fn run(args: WaitArgs) -> Result<(), Failure> {
    let agent = args.connection.require_identity()?;
    let client = args.connection.client()?;
    let timeout = args.timeout.map(Duration::from_secs);
    let Some(message) = next_message(&client, &agent, timeout).await? else {
        return Err(Failure::timeout(format!(
            "no message for {agent} within {} s",
            args.timeout.unwrap_or(0)
        )));
    };
    if args.json {
        print_json(&message)?;
    } else {
        print_text(&message_block(&message))?;
    }
    if args.ack {
        let ids = std::slice::from_ref(&message.id);
        checked(&client, reconnecting(&client, || client.ack(&agent, ids))).await?;
    }
    Ok(())
}

/// Long-polls `agent`'s inbox for one message until `timeout` (for ever when `None`), riding
/// out a server that goes away for up to the client's reconnect window.
pub async fn next_message(
    client: &Client,
    agent: &str,
    timeout: Option<Duration>,
) -> Result<Option<InboxMessage>, Failure> {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    loop {
        let remaining = match deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(LONG_POLL_SECONDS_MAX),
        };
        let seconds = poll_seconds(remaining);
        let lease = reconnecting(client, || client.lease(agent, 1, seconds));
        let mut messages = checked(client, lease).await?;
        if let Some(message) = messages.pop() {
            return Ok(Some(message));
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Ok(None);
        }
    }
}
