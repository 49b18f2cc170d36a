//! `switchboard ask TO TEXT --timeout S` and `switchboard reply ID TEXT`: request/reply
//! correlated by message id; replying acknowledges the question (`--keep-question` not). The question carries `metadata.expects_reply = true`; the server
//! then keeps replies to it apart from the asker's inbox while the asker waits (see
//! `crate::receipts::asks`), so asking never disturbs other pending messages.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use super::api::{poll_seconds, Client, ClientError, Outgoing};
use super::identity::Connection;
use super::output::{message_block, print_json, print_text};
use super::retry::reconnecting;
use super::send::message_text;
use super::{checked, Failure, PriorityArg};
use crate::api::receipts::{ReplyRequest, ReplySent};
use crate::api::wire::{InboxMessage, SendMessageResponse};
use crate::receipts::asks::EXPECTS_REPLY_KEY;

/// Flags of `switchboard ask`.
#[derive(Debug, Clone, Args)]
pub struct AskArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Who to ask: an agent name or id, `capability:NAME`, or `auto`.
    pub to: String,
    /// The question; `-` reads it from standard input.
    pub text: String,
    /// How long to wait for the reply, in seconds (exit 3 when none comes).
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub timeout: u64,
    /// Priority of the question.
    #[arg(long, value_enum, default_value_t = PriorityArg::Medium)]
    pub priority: PriorityArg,
    /// Thread the question belongs to (metadata.thread_id).
    #[arg(long, value_name = "ID")]
    pub thread: Option<String>,
    /// Print JSON for programs (`{question_id, recipient, reply}`).
    #[arg(long)]
    pub json: bool,
}

/// A question and what came back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Asked {
    /// The question's id (the reply's `reply_to`).
    pub question_id: String,
    /// Who was asked.
    pub recipient: String,
    /// The reply, if one came in time.
    pub reply: Option<InboxMessage>,
}

/// Sends `question` from `asker` and waits up to `timeout` for the reply; when none comes,
/// stops waiting so that a late reply lands in the inbox.
pub async fn ask_and_wait(
    client: &Client,
    asker: &str,
    mut question: Outgoing,
    timeout: Duration,
) -> Result<Asked, ClientError> {
    question
        .metadata
        .insert(EXPECTS_REPLY_KEY.into(), json!(true));
    let sent: SendMessageResponse = client.send(asker, &question).await?;
    let deadline = Instant::now() + timeout;
    let reply = loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let wait_seconds = poll_seconds(remaining);
        let waited = reconnecting(client, || {
            client.wait_reply(asker, &sent.message_id, wait_seconds)
        });
        if let Some(reply) = waited.await? {
            break Some(reply);
        }
        if Instant::now() >= deadline {
            reconnecting(client, || client.cancel_reply(asker, &sent.message_id)).await?;
            break None;
        }
    };
    Ok(Asked {
        question_id: sent.message_id,
        recipient: sent.recipient,
        reply,
    })
}

/// Runs `switchboard ask`: exit 0 with the reply, 3 when none came in time.
pub async fn ask(args: AskArgs) -> Result<(), Failure> {
    let asker = args.connection.require_identity()?;
    let client = args.connection.client()?;
    // Replies are kept for registered agents only: check first, with suggestions.
    checked(&client, reconnecting(&client, || client.agent(&asker))).await?;
    let mut question = Outgoing::new(&args.to, &message_text(&args.text)?);
    question.priority = args.priority.into();
    if let Some(thread) = &args.thread {
        question.metadata.insert("thread_id".into(), json!(thread));
    }
    let timeout = Duration::from_secs(args.timeout);
    let asked = checked(&client, ask_and_wait(&client, &asker, question, timeout)).await?;
    if args.json {
        print_json(&asked)?;
    }
    match &asked.reply {
        Some(reply) => {
            if !args.json {
                print_text(&message_block(reply))?;
            }
            Ok(())
        }
        None => Err(Failure::timeout(format!(
            "no reply from {} within {} s to question {}; a later reply will be in your inbox \
             (`switchboard inbox`)",
            asked.recipient, args.timeout, asked.question_id
        ))),
    }
}

/// Flags of `switchboard reply`.
#[derive(Debug, Clone, Args)]
pub struct ReplyArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The message you answer.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Your answer; `-` reads it from standard input.
    pub text: String,
    /// Priority of the answer.
    #[arg(long, value_enum, default_value_t = PriorityArg::Medium)]
    pub priority: PriorityArg,
    /// Leave the question unacknowledged (replying acknowledges it by default, so it is not
    /// delivered to you again); ack it yourself later with `switchboard ack ID`.
    #[arg(long)]
    pub keep_question: bool,
    /// Print JSON for programs (the send's answer plus `question_acknowledged`).
    #[arg(long)]
    pub json: bool,
}

/// Where the one replying works, so that advice names a tool it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyVia {
    /// The `switchboard` commands.
    Cli,
    /// The MCP tools.
    Mcp,
}

/// Sends `answer` from `replier` as the answer to message `id`, to that message's sender; the
/// server acknowledges the question unless `answer.keep_question`.
pub async fn send_reply(
    client: &Client,
    replier: &str,
    id: &str,
    answer: &ReplyRequest,
) -> Result<ReplySent, Failure> {
    send_reply_via(client, replier, id, answer, ReplyVia::Cli).await
}

/// [`send_reply`], with advice for a replier working through `via`.
pub async fn send_reply_via(
    client: &Client,
    replier: &str,
    id: &str,
    answer: &ReplyRequest,
    via: ReplyVia,
) -> Result<ReplySent, Failure> {
    match client.reply(replier, id, answer).await {
        Ok(replied) => Ok(replied),
        // Only the route's own "no such question": a 404 for the replier's name is explained
        // as usual, and refusals (403 not yours, 422 no inbox to answer) show their detail.
        Err(ClientError::NotFound { detail })
            if detail.starts_with(crate::reply::NOT_FOUND_PREFIX) =>
        {
            let by_hand = match via {
                ReplyVia::Cli => format!("`switchboard send SENDER TEXT --reply-to {id}`"),
                ReplyVia::Mcp => format!(
                    "the send_message tool: to = the sender, text = your answer, reply_to = \
                     \"{id}\""
                ),
            };
            Err(Failure::usage(format!(
                "cannot find message {id} to answer (it is not in your inbox and its receipt \
                 is gone); send the answer with {by_hand}"
            )))
        }
        Err(ClientError::Refused { status, detail })
            if status == reqwest::StatusCode::FORBIDDEN
                || status == reqwest::StatusCode::UNPROCESSABLE_ENTITY =>
        {
            Err(Failure::usage(detail))
        }
        Err(error) => Err(super::explain(client, error).await),
    }
}

/// Runs `switchboard reply`.
pub async fn reply(args: ReplyArgs) -> Result<(), Failure> {
    let replier = args.connection.require_identity()?;
    let client = args.connection.client()?;
    let answer = ReplyRequest {
        content: message_text(&args.text)?,
        priority: args.priority.into(),
        metadata: Default::default(),
        keep_question: args.keep_question,
        dedup_key: Some(super::api::idempotency_key()),
    };
    let replied = send_reply(&client, &replier, &args.id, &answer).await?;
    if args.json {
        return print_json(&replied);
    }
    let sent = &replied.sent;
    let question = if replied.question_acknowledged {
        format!("{} acknowledged", args.id)
    } else if args.keep_question {
        format!(
            "{} left unacknowledged: ack it with `switchboard ack {}` when done",
            args.id, args.id
        )
    } else {
        format!(
            "{} was not leased to you (acked already, or its lease ran out and it comes again)",
            args.id
        )
    };
    print_text(&format!(
        "replied to {} with {} (to {}); {question}\n",
        args.id, sent.message_id, sent.recipient
    ))
}
