//! [`ClientError`]: what can go wrong talking to a server, each variant's message telling a
//! person what to do, and how a failed exchange is read (no connection, no answer, a
//! refusal, a TLS failure).

use reqwest::StatusCode;
use serde_json::Value;

/// What can go wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No server answers at the URL: nothing was sent.
    #[error("cannot reach switchboard at {url} ({cause}); start it with `switchboard serve`, or name the right server with --server URL (or SWITCHBOARD_URL)")]
    Unreachable {
        /// The server URL tried.
        url: String,
        /// The innermost cause ("Connection refused").
        cause: String,
    },
    /// Several servers were named and none of them was active for the whole reconnect window
    /// (each refused the connection or said it is a standby): nothing was sent.
    #[error("cannot reach an active switchboard server in {seconds} s of trying: {tried}; start one with `switchboard serve`, wait for the standby to take over and try again, or name the right servers with --server URL[,URL...] (or SWITCHBOARD_URL)")]
    NoActiveServer {
        /// Every URL of the last round and what it said.
        tried: String,
        /// How long the client looked, in seconds.
        seconds: u64,
    },
    /// The request went out but no answer came back (timed out, or the connection broke):
    /// the server may have carried it out.
    #[error("outcome unknown: switchboard at {url} took the request but did not answer ({cause}), so it may have been carried out; check before repeating it (a slow server may need a longer --request-timeout SECONDS)")]
    NoAnswer {
        /// The server URL tried.
        url: String,
        /// The innermost cause ("operation timed out", "connection reset").
        cause: String,
    },
    /// A send went out, was retried with its idempotency key, and never got an answer: the
    /// message may have been stored (once: the key prevents a second copy).
    #[error("outcome unknown: switchboard at {url} took the message but did not answer ({cause}) in {attempts} tries, so it may have been stored and delivered. Sending it again with the same idempotency key within 5 minutes stores it at most once: --idempotency-key {key} (MCP send_message: idempotency_key)")]
    SendOutcomeUnknown {
        /// The server URL tried.
        url: String,
        /// The last cause.
        cause: String,
        /// Tries made, all with `key`.
        attempts: u32,
        /// The send's idempotency key.
        key: String,
    },
    /// The server refused the request because its storage is down (503 marked
    /// `storage_unavailable`): nothing was stored; trying again later may succeed.
    #[error("switchboard refused the {what}, nothing was stored: {detail}")]
    StorageUnavailable {
        /// What was refused ("request", "message").
        what: &'static str,
        /// The server's detail.
        detail: String,
    },
    /// The server wants a token (401).
    #[error("{detail} (give your agent's token with --token TOKEN or SWITCHBOARD_TOKEN; `switchboard register` prints it when it registers a new name)")]
    Unauthorized {
        /// The server's detail.
        detail: String,
    },
    /// The client could not be set up (token, CA certificate).
    #[error("{0}")]
    Setup(String),
    /// The server answered 404.
    #[error("{detail}")]
    NotFound {
        /// The server's detail.
        detail: String,
    },
    /// The server refused the request (any other 4xx or 5xx).
    #[error("the server answered {status}: {detail}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The server's detail.
        detail: String,
    },
    /// The TLS handshake failed (an untrusted or wrong certificate): trying again will not
    /// help, so this is no "cannot reach".
    #[error("the TLS handshake with switchboard at {url} failed ({cause}); if the server uses a self-signed certificate, trust it with --ca-cert PEM (or SWITCHBOARD_CA_CERT)")]
    Untrusted {
        /// The server URL tried.
        url: String,
        /// The TLS error ("invalid peer certificate: UnknownIssuer").
        cause: String,
    },
    /// The answer was not what a switchboard server sends.
    #[error("unexpected answer from {url}: {cause}; is this a switchboard server?")]
    Garbled {
        /// The URL asked.
        url: String,
        /// What was wrong with it.
        cause: String,
    },
}

/// The innermost cause of an error, which names the actual problem ("Connection refused").
pub(super) fn innermost(error: &dyn std::error::Error) -> String {
    let mut source = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// The TLS error in `error`'s causes, if a TLS handshake is what failed. rustls's error sits
/// inside `io::Error`s (nested), whose `source()` skips what they wrap, so each io error is
/// opened instead of followed.
fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut level = Some(error);
    while let Some(current) = level {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        level = match current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    None
}

/// A failed exchange with the server at `base`: no connection means nothing was sent; a
/// connection that timed out or broke after the request went out leaves the outcome unknown.
pub(super) fn transport(base: &str, error: &reqwest::Error) -> ClientError {
    let (url, cause) = (base.to_string(), innermost(error));
    if let Some(tls) = tls_failure(error) {
        ClientError::Untrusted { url, cause: tls }
    } else if error.is_connect() {
        ClientError::Unreachable { url, cause }
    } else if error.is_timeout() || error.is_request() || error.is_body() {
        ClientError::NoAnswer { url, cause }
    } else {
        let url = error.url().map_or(url, |url| url.to_string());
        ClientError::Garbled { url, cause }
    }
}

/// The error for a refusal with `status`, its JSON `body` and the server's `detail`.
pub(super) fn refusal(status: StatusCode, body: &Value, detail: String) -> ClientError {
    let storage_down = body["error"].as_str() == Some(crate::error::ERROR_STORAGE_UNAVAILABLE);
    match status {
        // Only the server itself marks a 503 so; a proxy's or a timeout's 503 is unmarked.
        StatusCode::SERVICE_UNAVAILABLE if storage_down => ClientError::StorageUnavailable {
            what: "request",
            detail,
        },
        StatusCode::NOT_FOUND => ClientError::NotFound { detail },
        StatusCode::UNAUTHORIZED => ClientError::Unauthorized { detail },
        _ => ClientError::Refused { status, detail },
    }
}
