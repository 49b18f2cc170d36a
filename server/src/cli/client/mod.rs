//! The client commands of the `switchboard` binary: what an agent (or a person) runs to talk to
//! a running server. One file per command or group:
//! - `send`: `send TO TEXT` (`--wait-ack` waits for the recipient's ack);
//! - `inbox`: `inbox`, `ack ID...`, `nack ID`;
//! - `wait`: block until a message arrives (exit 3 on timeout);
//! - `ask`: `ask TO TEXT` (send and wait for the correlated reply) and `reply ID TEXT`;
//! - `register`: register (or update) the caller's agent, printing its token in token mode;
//! - `agents` (and `agents remove`), `status` (a message's delivery receipt), `tail` (live traffic);
//! - `hook`: pending messages for an agent's context at a turn boundary (never fails);
//! - [`api`]: the HTTP client they share with the MCP server (its errors in `client_error`); [`identity`]: server URLs and
//!   agent name; [`servers`]: a list of servers (hot standby), and finding the active one; `suggest`: "did you mean" for unknown agents; `output`: tables and messages
//!   (control characters escaped), written so that a closed stdout is a quiet exit; `retry`:
//!   sends retried with their idempotency key, waiting commands riding out a restart.
//!
//! Every command prints text for people by default and JSON with `--json`. Exit codes: see
//! [`EXIT_CODES_HELP`].

mod agents;
pub mod api;
mod ask;
mod client_error;
pub mod credentials;
mod hook;
pub mod identity;
mod inbox;
mod output;
mod register;
pub mod retry;
mod send;
pub mod servers;
mod status;
mod suggest;
mod tail;
mod wait;

use std::future::Future;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use crate::api::wire::Priority;
use api::{Client, ClientError};
pub use ask::{ask_and_wait, send_reply, send_reply_via, Asked, ReplyVia};
pub use wait::next_message;

/// Exit code of a command that failed.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of a command line that does not parse (clap's own code, kept apart from the rest).
pub const EXIT_USAGE: u8 = 2;
/// Exit code of `wait`, `ask` and `send --wait-ack` when their time ran out.
pub const EXIT_TIMEOUT: u8 = 3;
/// Exit code when no server answered at the URL: nothing was sent.
pub const EXIT_UNREACHABLE: u8 = 4;
/// Exit code when a request went out but no answer came back: it may have been carried out.
pub const EXIT_OUTCOME_UNKNOWN: u8 = 5;

/// The exit codes, for `--help` (top-level and `wait`) and docs/agents.md.
pub const EXIT_CODES_HELP: &str = "\
Exit codes of the client commands:
  0  done
  1  failed (one line on stderr says what to do)
  2  bad command line (usage)
  3  timed out: nothing arrived in time (wait, ask, send --wait-ack)
  4  cannot reach the server (or, with --server URL,URL..., no listed server became
     active), or it refused because its storage is down (nothing was sent or stored; wait,
     inbox, ask and tail, and every command given several servers, first keep trying for
     --reconnect-timeout seconds)
  5  outcome unknown: the request went out but no answer came back (a send may have been
     stored; sending again with the same --idempotency-key stores it at most once)
`hook` always exits 0.";

/// The client subcommands (flattened into [`crate::cli::Command`]).
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Send a message to an agent, a capability (`capability:NAME`) or `auto` (routed by
    /// content).
    Send(send::SendArgs),
    /// Lease your pending messages and print them (ack them after handling, or pass --ack).
    Inbox(inbox::InboxArgs),
    /// Acknowledge messages you handled: they are deleted.
    Ack(inbox::AckArgs),
    /// Give a message back, to be delivered again.
    Nack(inbox::NackArgs),
    /// Block until a message arrives, print it, exit 0; exit 3 on --timeout.
    #[command(after_help = EXIT_CODES_HELP)]
    Wait(wait::WaitArgs),
    /// Send a question and wait for its reply (exit 3 when none comes in time).
    Ask(ask::AskArgs),
    /// Answer a message (its sender gets your reply, correlated by id).
    Reply(ask::ReplyArgs),
    /// Register your agent (or update it); with a server in token mode, print its token.
    Register(register::RegisterArgs),
    /// List the registered agents; `agents remove NAME` removes one.
    Agents(agents::AgentsArgs),
    /// Show a message's delivery receipt: queued, delivered, acked, dead-lettered, expired.
    Status(status::StatusArgs),
    /// Watch live traffic: every message and what happens to it.
    Tail(tail::TailArgs),
    /// Print pending messages for an agent's context (a Claude Code hook); never fails.
    Hook(hook::HookArgs),
    /// Run an MCP server on stdio exposing switchboard as tools (for Claude Code and others).
    Mcp(crate::mcp::McpArgs),
}

/// Runs a client command.
pub fn run(command: ClientCommand) -> ExitCode {
    match command {
        // A hook must never break the agent: it handles every failure itself.
        ClientCommand::Hook(args) => hook::run(args),
        ClientCommand::Mcp(args) => crate::mcp::run(args),
        ClientCommand::Send(args) => block_on(send::run(args)),
        ClientCommand::Inbox(args) => block_on(inbox::run(args)),
        ClientCommand::Ack(args) => block_on(inbox::ack(args)),
        ClientCommand::Nack(args) => block_on(inbox::nack(args)),
        ClientCommand::Wait(args) => block_on(wait::run(args)),
        ClientCommand::Ask(args) => block_on(ask::ask(args)),
        ClientCommand::Reply(args) => block_on(ask::reply(args)),
        ClientCommand::Register(args) => block_on(register::run(args)),
        ClientCommand::Agents(args) => block_on(agents::run(args)),
        ClientCommand::Status(args) => block_on(status::run(args)),
        ClientCommand::Tail(args) => block_on(tail::run(args)),
    }
}

/// Runs a command's future on a small runtime; prints its failure on stderr.
fn block_on(command: impl Future<Output = Result<(), Failure>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // Empty for a failure already plain to see (stdout closed by its reader).
            if !failure.message.is_empty() {
                eprintln!("switchboard: {}", output::printable(&failure.message));
            }
            ExitCode::from(failure.code)
        }
    }
}

/// Why a command did not do its job, and its exit code.
#[derive(Debug)]
pub struct Failure {
    /// One sentence (or two) saying what went wrong and what to do.
    pub message: String,
    /// One of the `EXIT_` codes.
    pub code: u8,
}

impl Failure {
    /// A failure with exit code 1.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: EXIT_FAILURE,
        }
    }

    /// A timeout, exit code [`EXIT_TIMEOUT`].
    pub fn timeout(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: EXIT_TIMEOUT,
        }
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        let code = match &error {
            ClientError::Unreachable { .. }
            | ClientError::NoActiveServer { .. }
            | ClientError::StorageUnavailable { .. } => EXIT_UNREACHABLE,
            ClientError::NoAnswer { .. } | ClientError::SendOutcomeUnknown { .. } => {
                EXIT_OUTCOME_UNKNOWN
            }
            _ => EXIT_FAILURE,
        };
        Self {
            message: error.to_string(),
            code,
        }
    }
}

/// Turns a client error into a failure; an unknown agent gets "did you mean" suggestions.
pub async fn explain(client: &Client, error: ClientError) -> Failure {
    if let ClientError::NotFound { detail } = &error {
        if let Some(name) = detail.strip_prefix("Agent not found: ") {
            let hint = suggest::hint(client, name).await;
            return Failure::usage(format!("no agent named `{name}`.{hint}"));
        }
    }
    Failure::from(error)
}

/// Awaits a client call; on error, [`explain`]s it.
pub async fn checked<T>(
    client: &Client,
    call: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, Failure> {
    match call.await {
        Ok(value) => Ok(value),
        Err(error) => Err(explain(client, error).await),
    }
}

/// `--priority` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum PriorityArg {
    /// Delivered last.
    Low,
    /// The default.
    #[default]
    Medium,
    /// Before medium.
    High,
    /// Before everything else.
    Critical,
}

impl From<PriorityArg> for Priority {
    fn from(value: PriorityArg) -> Self {
        match value {
            PriorityArg::Low => Priority::Low,
            PriorityArg::Medium => Priority::Medium,
            PriorityArg::High => Priority::High,
            PriorityArg::Critical => Priority::Critical,
        }
    }
}
