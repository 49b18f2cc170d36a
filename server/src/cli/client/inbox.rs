//! `switchboard inbox`, `ack ID...`, `nack ID`: read the pending messages (each read is a
//! lease: a message not acked is delivered again when the lease ends), then settle them.
//! `inbox` also reminds the agent of messages delivered earlier and still not acked.

use clap::Args;

use super::identity::Connection;
use super::output::{message_block, print_json, print_text};
use super::retry::reconnecting;
use super::{checked, Failure};
use crate::api::wire::InboxMessage;

/// Messages `inbox` reads when not told otherwise.
pub const INBOX_LIMIT_DEFAULT: usize = 10;

/// Flags of `switchboard inbox`.
#[derive(Debug, Clone, Args)]
pub struct InboxArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Most messages to read.
    #[arg(long, default_value_t = INBOX_LIMIT_DEFAULT)]
    pub limit: usize,
    /// Acknowledge what was printed (otherwise ack with `switchboard ack ID` after handling).
    #[arg(long)]
    pub ack: bool,
    /// Wait up to this many seconds (at most 20) for a message when there is none.
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub wait: u64,
    /// Print JSON for programs (an array of messages).
    #[arg(long)]
    pub json: bool,
}

/// Runs `switchboard inbox`.
pub async fn run(args: InboxArgs) -> Result<(), Failure> {
    let agent = args.connection.require_identity()?;
    let client = args.connection.client()?;
    // Rides out a server restart (see `retry`).
    let lease = reconnecting(&client, || client.lease(&agent, args.limit, args.wait));
    let messages = checked(&client, lease).await?;
    if args.json {
        print_json(&messages)?;
    } else {
        print_text(&inbox_text(&agent, &messages, args.ack))?;
        // A reminder only: a server without the route (older) just gives none.
        if let Ok(held) = client.leased(&agent).await {
            let earlier: Vec<String> = held
                .leased
                .into_iter()
                .map(|leased| leased.id)
                .filter(|id| !messages.iter().any(|message| &message.id == id))
                .collect();
            print_text(&unacked_notice(&earlier))?;
        }
    }
    if args.ack && !messages.is_empty() {
        let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
        let answer = checked(&client, client.ack(&agent, &ids)).await?;
        if !answer.not_found.is_empty() {
            return Err(Failure::usage(format!(
                "printed but could not ack {} (their leases ran out; they will come again)",
                answer.not_found.join(", ")
            )));
        }
    }
    Ok(())
}

/// The text `inbox` prints for people and agents.
fn inbox_text(agent: &str, messages: &[InboxMessage], acking: bool) -> String {
    if messages.is_empty() {
        return format!("no messages for {agent}\n");
    }
    let count = messages.len();
    let plural = if count == 1 { "message" } else { "messages" };
    let mut out = if acking {
        format!("{count} {plural} for {agent} (acknowledged):\n\n")
    } else {
        format!(
            "{count} {plural} for {agent}; ack each after handling it (`switchboard ack ID`), \
             or it comes again when its lease ends:\n\n"
        )
    };
    for message in messages {
        out.push_str(&message_block(message));
        out.push('\n');
    }
    out
}

/// The reminder of messages delivered earlier and still leased to the agent (empty when
/// there are none): unless acked, each is delivered again when its lease runs out.
fn unacked_notice(earlier: &[String]) -> String {
    match earlier.len() {
        0 => String::new(),
        1 => format!(
            "1 message delivered to you earlier is not acknowledged yet: id {}; it comes back \
             after its lease (`switchboard ack ID` when handled, `switchboard nack ID` to give \
             it back now)\n",
            earlier[0]
        ),
        count => format!(
            "{count} messages delivered to you earlier are not acknowledged yet: ids {}; they \
             come back after their lease (`switchboard ack ID` when handled, `switchboard nack \
             ID` to give one back now)\n",
            earlier.join(", ")
        ),
    }
}

/// Flags of `switchboard ack`.
#[derive(Debug, Clone, Args)]
pub struct AckArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Ids of the messages you handled.
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// Print JSON for programs (`{acknowledged, not_found}`).
    #[arg(long)]
    pub json: bool,
}

/// Runs `switchboard ack`: exit 1 when any id was not acked.
pub async fn ack(args: AckArgs) -> Result<(), Failure> {
    let agent = args.connection.require_identity()?;
    let client = args.connection.client()?;
    let answer = checked(&client, client.ack(&agent, &args.ids)).await?;
    if args.json {
        print_json(&answer)?;
    } else if !answer.acknowledged.is_empty() {
        print_text(&format!(
            "acknowledged {}\n",
            answer.acknowledged.join(", ")
        ))?;
    }
    if answer.not_found.is_empty() {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "not acknowledged: {} — not {agent}'s leased messages (acked already, or the lease \
             ran out and the message will be delivered again)",
            answer.not_found.join(", ")
        )))
    }
}

/// Flags of `switchboard nack`.
#[derive(Debug, Clone, Args)]
pub struct NackArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The message to give back.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Deliver it again after this many seconds (default: at once).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub delay: u64,
    /// Print JSON for programs.
    #[arg(long)]
    pub json: bool,
}

/// Runs `switchboard nack`.
pub async fn nack(args: NackArgs) -> Result<(), Failure> {
    let agent = args.connection.require_identity()?;
    let client = args.connection.client()?;
    let answer = checked(&client, client.nack(&agent, &args.id, Some(args.delay))).await?;
    // A nack of the last attempt makes a dead letter, not another delivery: ask the receipt
    // rather than promise a redelivery that will not come.
    let dead = client
        .status(&args.id)
        .await
        .is_ok_and(|receipt| receipt["state"] == "dead_lettered");
    if args.json {
        print_json(&answer)
    } else if dead {
        print_text(&format!(
            "gave {} back; it had used its last attempt, so it is now a dead letter \
             (not delivered again)\n",
            args.id
        ))
    } else if args.delay == 0 {
        print_text(&format!(
            "gave {} back; it will be delivered again\n",
            args.id
        ))
    } else {
        print_text(&format!(
            "gave {} back; it will be delivered again in {} s\n",
            args.id, args.delay
        ))
    }
}
