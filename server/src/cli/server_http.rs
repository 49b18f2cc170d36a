//! The operator commands' HTTP (`stats`, `discover`, `migrate`, and `tmux-send`'s lookup of
//! the pane's agent): JSON requests to the active server of `--server URL[,URL...]` (see
//! [`crate::cli::client::servers`]), with errors that say what to do.

use std::time::Duration;

use serde_json::Value;

use crate::cli::client::credentials::Credentials;
use crate::cli::client::retry::RECONNECT_SECONDS_DEFAULT;
use crate::cli::client::servers::{on_active, standby_in, Reply, Servers};

/// How long a request looks for the active server of a list while none is: a standby takes
/// over within seconds.
const ACTIVE_SEARCH_WINDOW: Duration = Duration::from_secs(RECONNECT_SECONDS_DEFAULT);

/// The running server, over HTTP.
pub(crate) struct ServerHttp {
    servers: Servers,
    client: reqwest::Client,
    /// What to do when no server answers ("Start it with `switchboard serve`...").
    start_hint: &'static str,
}

impl ServerHttp {
    /// A client of `servers` (`URL[,URL...]`) presenting `credentials`, whose requests may take
    /// up to `timeout` each.
    pub(crate) fn new(
        servers: &str,
        credentials: &Credentials,
        timeout: Duration,
        start_hint: &'static str,
    ) -> Result<Self, String> {
        let servers = Servers::parse(servers).map_err(|error| format!("switchboard: {error}"))?;
        let client = credentials
            .apply(reqwest::Client::builder().timeout(timeout))
            .map_err(|error| format!("switchboard: {error}"))?
            .build()
            .map_err(|error| format!("switchboard: cannot build an HTTP client: {error}"))?;
        Ok(Self {
            servers,
            client,
            start_hint,
        })
    }

    /// The base URL of the server that answered last (else the first listed).
    pub(crate) fn base(&self) -> String {
        self.servers.current()
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value, String> {
        self.answer(|base| self.client.get(format!("{base}{path}")))
            .await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.answer(|base| self.client.post(format!("{base}{path}")).json(&body))
            .await
    }

    /// Sends the request `build` makes for a base URL to the active server; its JSON answer.
    async fn answer(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<Value, String> {
        let reached = on_active(&self.servers, ACTIVE_SEARCH_WINDOW, |base| {
            let request = build(&base);
            async move {
                match request.send().await {
                    Err(error) if error.is_connect() => Reply::Unreachable {
                        cause: innermost(&error),
                    },
                    Err(error) => Reply::Answered(Err(innermost(&error))),
                    Ok(response) => {
                        let (status, url) = (response.status(), response.url().to_string());
                        let text = response.text().await.unwrap_or_default();
                        let body = serde_json::from_str::<Value>(&text);
                        match body
                            .as_ref()
                            .ok()
                            .and_then(|body| standby_in(status.as_u16(), body))
                        {
                            Some(active) => Reply::Standby { active },
                            None => Reply::Answered(Ok((status, url, body))),
                        }
                    }
                }
            }
        })
        .await;
        let (status, url, body) = match reached {
            Ok(Ok(answer)) => answer,
            Ok(Err(cause)) => {
                return Err(format!(
                    "switchboard: no answer from the server at {} ({cause}); it may be busy: \
                     try again",
                    self.base()
                ))
            }
            Err(none) => {
                let which = match self.servers.listed().len() {
                    1 => "the server at",
                    _ => "an active server of",
                };
                return Err(format!(
                    "switchboard: cannot reach {which} {}. {}",
                    none.summary(),
                    self.start_hint
                ));
            }
        };
        match body {
            Ok(body) if status.is_success() => Ok(body),
            Ok(body) => Err(format!(
                "switchboard: the server answered {status}: {}",
                body["detail"].as_str().unwrap_or("no detail")
            )),
            Err(error) => Err(format!(
                "switchboard: {url} answered {status} with a body that is not JSON ({error}); \
                 is this a switchboard server?"
            )),
        }
    }
}

/// The innermost cause of an error, which names the actual problem ("Connection refused").
fn innermost(error: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
