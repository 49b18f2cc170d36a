//! `switchboard hook`: delivery at a turn boundary. Run as a Claude Code hook
//! (`UserPromptSubmit`, `Stop`, `SessionStart`), it leases the agent's pending messages, prints
//! them in a form meant for the agent's context, and acks what it printed — so messages reach
//! the agent when it is ready, never typed into the middle of its work.
//!
//! A hook must never break the agent: whatever happens (no server, unknown agent, bad input)
//! it exits 0 within [`HOOK_DEADLINE`], printing nothing on stdout when there is nothing to
//! deliver (at most a note on stderr). For `Stop` it prints Claude Code's JSON
//! `{"decision": "block", "reason": ...}` so the agent keeps going and reads the messages; for
//! other events plain text, which Claude Code adds to the context.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use super::identity::{worktree_agent, Connection};
use super::output::{message_block, print_json_line, print_text, printable};
use crate::api::wire::InboxMessage;

/// Longest a hook runs, start to end.
pub const HOOK_DEADLINE: Duration = Duration::from_secs(4);
/// Longest wait for the hook input on stdin (Claude Code writes it at once).
pub const HOOK_INPUT_WAIT: Duration = Duration::from_millis(500);
/// Largest hook input read from stdin, in bytes.
pub const HOOK_INPUT_BYTES_MAX: u64 = 1024 * 1024;
/// Messages delivered in one turn when not told otherwise.
pub const HOOK_MESSAGES_DEFAULT: usize = 20;

/// The hook event being answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HookEvent {
    /// Before the agent reads a prompt: plain text is added to its context.
    UserPromptSubmit,
    /// When the agent is about to stop: a "block" decision makes it go on and read them.
    Stop,
}

/// Flags of `switchboard hook`.
#[derive(Debug, Clone, Args)]
pub struct HookArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Most messages delivered in one turn.
    #[arg(long, default_value_t = HOOK_MESSAGES_DEFAULT)]
    pub limit: usize,
    /// The event answered; default: `hook_event_name` from the JSON on stdin, else
    /// user-prompt-submit.
    #[arg(long, value_enum)]
    pub event: Option<HookEvent>,
}

/// What Claude Code tells a hook on stdin (the parts used).
#[derive(Debug, Default)]
struct HookInput {
    event: Option<String>,
    stop_hook_active: bool,
    cwd: Option<String>,
}

fn read_input() -> HookInput {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return HookInput::default();
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    // A thread, so a stdin that never ends cannot hold the hook up.
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::stdin()
            .take(HOOK_INPUT_BYTES_MAX)
            .read_to_string(&mut text);
        let _ = sender.send(text);
    });
    let Ok(text) = receiver.recv_timeout(HOOK_INPUT_WAIT) else {
        return HookInput::default();
    };
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    HookInput {
        event: value["hook_event_name"].as_str().map(str::to_string),
        stop_hook_active: value["stop_hook_active"] == true,
        cwd: value["cwd"].as_str().map(str::to_string),
    }
}

/// Runs `switchboard hook`; always exits 0.
pub fn run(args: HookArgs) -> ExitCode {
    let input = read_input();
    let event = args.event.unwrap_or(match input.event.as_deref() {
        Some("Stop") | Some("SubagentStop") => HookEvent::Stop,
        _ => HookEvent::UserPromptSubmit,
    });
    // Blocking a stop that a block already continued could loop: deliver on the next turn.
    if event == HookEvent::Stop && input.stop_hook_active {
        return ExitCode::SUCCESS;
    }
    let agent = args
        .connection
        .agent
        .clone()
        .filter(|name| !name.trim().is_empty())
        .or_else(|| {
            input
                .cwd
                .as_deref()
                .and_then(|cwd| worktree_agent(cwd.as_ref()))
        })
        .or_else(|| args.connection.identity());
    let Some(agent) = agent else {
        eprintln!(
            "switchboard hook: no agent name (set SWITCHBOARD_AGENT or --agent); nothing delivered"
        );
        return ExitCode::SUCCESS;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard hook: {error}; nothing delivered");
            return ExitCode::SUCCESS;
        }
    };
    let delivery = deliver(&args.connection, &agent, args.limit, event);
    match runtime.block_on(async { tokio::time::timeout(HOOK_DEADLINE, delivery).await }) {
        Ok(Ok(())) => {}
        Ok(Err(note)) => eprintln!("switchboard hook: {note}; nothing delivered"),
        Err(_) => eprintln!("switchboard hook: the server took too long; nothing delivered"),
    }
    ExitCode::SUCCESS
}

/// Leases, prints, acks. Printing comes before the ack, so a message is never acked unseen.
async fn deliver(
    connection: &Connection,
    agent: &str,
    limit: usize,
    event: HookEvent,
) -> Result<(), String> {
    let client = connection.client().map_err(|error| error.to_string())?;
    let messages = client
        .lease(agent, limit.max(1), 0)
        .await
        .map_err(|error| error.to_string())?;
    if messages.is_empty() {
        return Ok(());
    }
    let text = context_text(agent, &messages);
    // A stdout closed by its reader: nothing was shown, so nothing is acked.
    let printed = match event {
        HookEvent::UserPromptSubmit => print_text(&text),
        HookEvent::Stop => {
            print_json_line(&json!({ "decision": "block", "reason": printable(&text) }).to_string())
        }
    };
    printed.map_err(|_| "cannot write to standard output".to_string())?;
    let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    client
        .ack(agent, &ids)
        .await
        .map_err(|error| format!("printed the messages but could not ack them ({error})"))?;
    Ok(())
}

/// The messages as the agent will read them in its context.
fn context_text(agent: &str, messages: &[InboxMessage]) -> String {
    let count = messages.len();
    let plural = if count == 1 { "message" } else { "messages" };
    let mut out = format!(
        "[switchboard] {count} new {plural} for {agent}. They are acknowledged: act on them as \
         part of your work. Answer one with `switchboard reply ID \"...\"`, write to an agent \
         with `switchboard send NAME \"...\"`.\n\n"
    );
    for message in messages {
        out.push_str(&message_block(message));
        out.push('\n');
    }
    out
}
