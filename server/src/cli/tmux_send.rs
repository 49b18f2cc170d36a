//! `switchboard tmux-send TARGET MESSAGE...`: a drop-in for the old
//! `send-claude-message.sh session:window MESSAGE`, with the same arguments. The message goes
//! through the queue to the agent working in that pane; while the agent is in dual mode (or
//! rolled back to tmux delivery) the server also types it into the pane, so existing agent
//! prompts keep working during and after the migration.
//!
//! The send carries an idempotency key and is retried with it, as `switchboard send` is. When
//! the pane's agent is unknown to the server, or the server cannot be reached (nothing was
//! sent), the text is typed into the pane directly, as the old script did but safely (no C-c,
//! literal text, checked submission); `--no-fallback` makes that an error instead. When the
//! send went out and no answer came back, the message may be in the queue already: nothing is
//! typed (that would deliver it twice), and the command says "outcome unknown" with exit code
//! 5, naming the key to repeat it with. Nothing is ever typed into a pane whose terminal a
//! shell reads (nor one running a program that is not an allowed agent, `--agent-program`):
//! that is refused, exit code 1.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use super::client::api::{Client, ClientError, Outgoing, REQUEST_TIMEOUT_SECONDS_DEFAULT};
use super::client::retry::RECONNECT_SECONDS_DEFAULT;
use super::client::{Failure, EXIT_FAILURE, EXIT_OUTCOME_UNKNOWN};
use super::server_http::ServerHttp;
use super::stdout::print;
use crate::migrate::settings::AGENT_PROGRAMS_ENV;
use crate::migrate::tmux::discover::AGENT_WINDOW_PREFIX;
use crate::migrate::tmux::target::list_panes;
use crate::migrate::tmux::{
    deliver, DeliveryOptions, DeliveryOutcome, PaneInfo, PanePolicy, Target, Tmux, TMUX_SOCKET_ENV,
};
use crate::monitor::stats_command::SERVER_URL_DEFAULT;

/// Sender name when neither `--sender` nor `SWITCHBOARD_AGENT` gives one.
pub const SENDER_DEFAULT: &str = "tmux-send";

/// Arguments of `switchboard tmux-send`.
#[derive(Debug, Clone, Args)]
pub struct TmuxSendArgs {
    /// Base URL of the running server; or several, comma-separated (a hot-standby pair): the
    /// active one is used.
    #[arg(long, env = "SWITCHBOARD_URL", default_value = SERVER_URL_DEFAULT,
          value_name = "URL[,URL...]")]
    pub server: String,
    /// `--token` (the sender's token) and `--ca-cert`.
    #[command(flatten)]
    pub credentials: crate::cli::client::credentials::Credentials,
    /// Who is sending (shown to the recipient).
    #[arg(long, env = "SWITCHBOARD_AGENT", default_value = SENDER_DEFAULT)]
    pub sender: String,
    /// tmux server socket name (`tmux -L NAME`).
    #[arg(long, env = TMUX_SOCKET_ENV, value_name = "NAME")]
    pub tmux_socket: Option<String>,
    /// Fail rather than type into the pane when the queue cannot take the message.
    #[arg(long)]
    pub no_fallback: bool,
    /// Longest wait for the server's answer to the send, in seconds; a send that gets none is
    /// retried with its idempotency key.
    #[arg(long, env = "SWITCHBOARD_REQUEST_TIMEOUT", value_name = "SECONDS",
          default_value_t = REQUEST_TIMEOUT_SECONDS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,
    /// Send with this idempotency key (default: a fresh one): a send repeated with the same
    /// key within 5 minutes is queued once. After "outcome unknown", repeat the command with
    /// the key it names.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Program allowed to have the message typed into its pane (repeatable, or
    /// comma-separated; default: as `serve --agent-program`). Never a shell.
    #[arg(
        long = "agent-program",
        env = AGENT_PROGRAMS_ENV,
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub agent_programs: Vec<String>,
    /// The pane, as the old script took it: `session:window`, `session:window.pane` or
    /// `%pane_id`.
    pub target: String,
    /// The message; several words are joined with spaces, as the old script did.
    #[arg(required = true, num_args = 1.., allow_hyphen_values = true, trailing_var_arg = true)]
    pub message: Vec<String>,
}

/// Runs `switchboard tmux-send`: exit code 0 when the message went through the queue or was
/// typed into the pane, 5 when the send went out unanswered (outcome unknown), 1 otherwise
/// (with the reason on stderr).
pub fn run(args: TmuxSendArgs) -> ExitCode {
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
    let printed = runtime
        .block_on(send(&args))
        .and_then(|line| print(&format!("{line}\n")).map_err(failure));
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // Empty when stdout's reader left: nobody is left to tell.
            if !failure.message.is_empty() {
                eprintln!("{}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}

/// A failure with exit code 1 and `paragraph` as its message.
fn failure(paragraph: String) -> Failure {
    Failure {
        message: paragraph,
        code: EXIT_FAILURE,
    }
}

async fn send(args: &TmuxSendArgs) -> Result<String, Failure> {
    let target: Target = args
        .target
        .parse()
        .map_err(|error| failure(format!("switchboard: {error}")))?;
    let message = args.message.join(" ");
    let tmux = Tmux::new(args.tmux_socket.clone());
    let pane = match list_panes(&tmux).await {
        Ok(panes) => target.resolve(&panes).ok().cloned(),
        Err(_) => None,
    };
    let server = super::migrate::server(&args.server, &args.credentials).map_err(failure)?;
    let queue_error = match agent_for(&server, &args.target, pane.as_ref()).await {
        Ok(Some((name, typed_too))) => match send_to_queue(args, &name, &message).await {
            Ok(id) => {
                let also = if typed_too {
                    " (in dual mode: the server also types it into the pane)"
                } else {
                    ""
                };
                return Ok(format!("sent to {name} through the queue as {id}{also}"));
            }
            // The queue may hold it already: typing it too could deliver it twice.
            Err(
                error @ (ClientError::SendOutcomeUnknown { .. } | ClientError::NoAnswer { .. }),
            ) => {
                return Err(Failure {
                    message: format!(
                        "switchboard: {error}. Nothing was typed into the pane, so that it is \
                         not delivered twice."
                    ),
                    code: EXIT_OUTCOME_UNKNOWN,
                });
            }
            Err(error) => error.to_string(),
        },
        Ok(None) => format!("no agent of the server works in {}", args.target),
        Err(error) => error,
    };
    if args.no_fallback {
        return Err(failure(format!(
            "{queue_error} (and --no-fallback was given)"
        )));
    }
    let Some(pane) = pane else {
        return Err(failure(format!(
            "{queue_error}; and the target {} is not a pane of {}, so nothing was sent",
            args.target,
            tmux.describe()
        )));
    };
    let options = DeliveryOptions {
        policy: PanePolicy::allowing(&args.agent_programs),
        ..DeliveryOptions::default()
    };
    let outcome = deliver(&tmux, &pane.pane_id, &message, &options).await;
    if let DeliveryOutcome::Refused { reason } = &outcome {
        return Err(failure(format!(
            "switchboard: {queue_error}; and nothing was typed into pane {} ({}): refused: \
             {reason}",
            pane.pane_id,
            pane.target()
        )));
    }
    let line = format!(
        "typed into pane {} ({}) because {queue_error}: {}{}",
        pane.pane_id,
        pane.target(),
        outcome.label(),
        outcome
            .reason()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    match outcome.reason() {
        Some(_) if outcome.label() == "failed" => Err(failure(format!("switchboard: {line}"))),
        _ => Ok(line),
    }
}

/// The agent working in the target pane, by the server's migration records (pane id, then
/// `session:window`), else by the window name `agent-NAME`; with whether the server types its
/// messages into the pane too. `Err` when the server cannot be reached.
async fn agent_for(
    server: &ServerHttp,
    target_text: &str,
    pane: Option<&PaneInfo>,
) -> Result<Option<(String, bool)>, String> {
    let status = server.get("/api/v1/migration/status").await?;
    let agents = status["run"]["agents"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let text = |agent: &Value, field: &str| agent[field].as_str().unwrap_or_default().to_string();
    let found = agents.iter().find(|agent| match pane {
        Some(pane) => text(agent, "pane_id") == pane.pane_id.as_str(),
        None => {
            let session_window = format!("{}:{}", text(agent, "session"), text(agent, "window"));
            target_text == session_window
                || target_text == text(agent, "target")
                || target_text == text(agent, "pane_id")
        }
    });
    if let Some(agent) = found {
        let typed_too = text(agent, "stage") != "migrated";
        return Ok(Some((text(agent, "name"), typed_too)));
    }
    let window = match pane {
        Some(pane) => pane.window_name.clone(),
        None => target_text
            .split_once(':')
            .map(|(_, window)| window.to_string())
            .unwrap_or_default(),
    };
    Ok(window
        .strip_prefix(AGENT_WINDOW_PREFIX)
        .filter(|name| !name.is_empty())
        .map(|name| (name.to_string(), false)))
}

/// Sends through the queue with an idempotency key, retried with it while the server cannot
/// be reached or does not answer; the message's id.
async fn send_to_queue(
    args: &TmuxSendArgs,
    recipient: &str,
    content: &str,
) -> Result<String, ClientError> {
    let client = Client::with_credentials(&args.server, &args.credentials)?.with_patience(
        Duration::from_secs(args.request_timeout),
        Duration::from_secs(RECONNECT_SECONDS_DEFAULT),
    );
    let mut message = Outgoing::new(recipient, content);
    if let Some(key) = &args.idempotency_key {
        message.idempotency_key = key.clone();
    }
    Ok(client.send(&args.sender, &message).await?.message_id)
}
