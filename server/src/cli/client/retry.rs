//! Riding out a server that goes away for a moment (a restart, a dropped connection):
//! - a send is tried again with the same idempotency key, so a send whose answer was lost is
//!   stored once, and a send that still gets no answer says "outcome unknown", not "cannot
//!   reach" ([`send_with_retries`]);
//! - the waiting commands (`wait`, `inbox`, `ask`, `tail`, and the MCP tool
//!   `wait_for_message`) keep reconnecting for a bounded time, so a loop around
//!   `switchboard wait` survives a server restart ([`reconnecting`]).
//!
//! With several servers (`--server URL,URL`), each try goes to the active one (see
//! [`super::servers`]): a send retried after a failover reaches the new active server with the
//! same key, which stores it at most once across the two.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::api::{Client, ClientError};

/// Tries of one send (the first and the retries), all with the same idempotency key.
pub const SEND_ATTEMPTS_MAX: u32 = 4;
/// Pause before the first retry; each later pause doubles, up to [`RETRY_PAUSE_MAX`].
pub const RETRY_PAUSE_FIRST: Duration = Duration::from_millis(250);
/// Longest pause between two tries.
pub const RETRY_PAUSE_MAX: Duration = Duration::from_secs(5);
/// How long the waiting commands keep reconnecting to a server that went away, in seconds,
/// when `--reconnect-timeout` does not say.
pub const RECONNECT_SECONDS_DEFAULT: u64 = 60;

impl ClientError {
    /// True when trying again later may succeed: no server, no answer, or a server (or proxy)
    /// saying it is briefly unavailable.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. }
            | ClientError::NoAnswer { .. }
            | ClientError::StorageUnavailable { .. } => true,
            ClientError::Refused { status, .. } => is_unavailable(*status),
            _ => false,
        }
    }

    /// True when the request may have been carried out although no success came back.
    fn may_have_been_done(&self) -> bool {
        match self {
            ClientError::NoAnswer { .. } => true,
            // The server's own request timeout (or a proxy's) answers 503/504 while the
            // handler may still finish.
            ClientError::Refused { status, .. } => is_unavailable(*status),
            _ => false,
        }
    }

    /// The innermost cause, for the final "outcome unknown".
    fn cause(&self) -> String {
        match self {
            ClientError::Unreachable { cause, .. } | ClientError::NoAnswer { cause, .. } => {
                cause.clone()
            }
            ClientError::NoActiveServer { tried, seconds } => {
                format!("then no server was active for {seconds} s: {tried}")
            }
            other => other.to_string(),
        }
    }
}

fn is_unavailable(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

/// Runs `send` (one try of a send carrying `idempotency_key`) up to [`SEND_ATTEMPTS_MAX`] times while it fails
/// transiently. When some try went out unanswered and none succeeded, the answer is
/// [`ClientError::SendOutcomeUnknown`] naming the key to retry with; when none went out, the
/// last error ("cannot reach").
pub async fn send_with_retries<T, Fut>(
    client: &Client,
    idempotency_key: &str,
    mut send: impl FnMut() -> Fut,
) -> Result<T, ClientError>
where
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut pause = RETRY_PAUSE_FIRST;
    let mut unanswered = false;
    let mut attempt = 1;
    loop {
        let error = match send().await {
            Ok(answer) => return Ok(answer),
            Err(error) => error,
        };
        unanswered |= error.may_have_been_done();
        if !error.is_transient() || attempt == SEND_ATTEMPTS_MAX {
            if let ClientError::StorageUnavailable { detail, .. } = error {
                if !unanswered {
                    return Err(ClientError::StorageUnavailable {
                        what: "message",
                        detail,
                    });
                }
                return Err(ClientError::SendOutcomeUnknown {
                    url: client.base().to_string(),
                    cause: format!("the last try was refused: {detail}"),
                    attempts: attempt,
                    key: idempotency_key.to_string(),
                });
            }
            // Once a try went out unanswered, any later failure (a 429 from the rate limit,
            // which is checked before duplicates, say) says nothing of that try: the message
            // may still have been stored.
            if unanswered {
                return Err(ClientError::SendOutcomeUnknown {
                    url: client.base().to_string(),
                    cause: error.cause(),
                    attempts: attempt,
                    key: idempotency_key.to_string(),
                });
            }
            return Err(error);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RETRY_PAUSE_MAX);
        attempt += 1;
    }
}

/// Runs `call` until it succeeds, fails for good, or has failed transiently for longer than
/// the client's reconnect window (then its last error). Says on stderr when it loses the
/// server and when it is back, so a person watching knows why nothing happens.
pub async fn reconnecting<T, Fut>(
    client: &Client,
    mut call: impl FnMut() -> Fut,
) -> Result<T, ClientError>
where
    Fut: Future<Output = Result<T, ClientError>>,
{
    let window = client.reconnect_window();
    let mut lost_since: Option<Instant> = None;
    let mut pause = RETRY_PAUSE_FIRST;
    loop {
        let error = match call().await {
            Ok(answer) => {
                if lost_since.is_some() {
                    eprintln!("switchboard: reconnected to {}", client.base());
                }
                return Ok(answer);
            }
            Err(error) => error,
        };
        if !error.is_transient() {
            return Err(error);
        }
        let since = *lost_since.get_or_insert_with(|| {
            eprintln!(
                "switchboard: lost switchboard at {} ({}); reconnecting for up to {} s \
                 (--reconnect-timeout SECONDS)",
                client.base(),
                error.cause(),
                window.as_secs()
            );
            Instant::now()
        });
        let left = window.saturating_sub(since.elapsed());
        if left.is_zero() {
            return Err(error);
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(RETRY_PAUSE_MAX);
    }
}
