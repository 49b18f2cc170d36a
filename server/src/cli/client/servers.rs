//! Several servers, one of them active: `--server URL[,URL...]` (or `SWITCHBOARD_URL` with
//! commas) names a hot-standby pair (or more) on the same storage. Every client (the agent
//! tools, the MCP server, the hook, `tmux-send`, `migrate`, `loadgen`) asks [`on_active`] to
//! run its request on the active one:
//! - it starts with the server that answered last in this process, then goes down the list;
//! - a standby's answer (503 with `"error": "standby"` or `"status": "standby"`) means "not
//!   this one": the `active` URL it names is tried next, whether listed or not;
//! - no connection (refused, reset, unreachable) means "try the next";
//! - any other answer, success or refusal, comes from the active server and ends the search.
//!
//! When no server of a list is active (the moment between the active server's death and the
//! standby's promotion), it goes round the list again, pausing between rounds, for up to the
//! command's reconnect window; then the error names every URL and what each said. A single
//! URL nobody listens at fails at once, as it always did: that is most often a server not
//! started yet, which a person should hear of now, not in a minute.

use std::future::Future;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

/// Pause before the second round of the list; each later pause doubles, up to
/// [`ROUND_PAUSE_MAX`].
pub const ROUND_PAUSE_FIRST: Duration = Duration::from_millis(100);
/// Longest pause between two rounds: a standby is promoted within seconds, and a client should
/// find it soon after.
pub const ROUND_PAUSE_MAX: Duration = Duration::from_secs(1);
/// Most URLs a list may hold (more is a typo or a pasted log line, not a deployment).
pub const SERVER_URLS_MAX: usize = 16;
/// The `error` (or `status`) a hot standby puts in its 503 answers.
pub const STANDBY_MARK: &str = "standby";

/// The servers a client may talk to, and which one answered last.
#[derive(Debug)]
pub struct Servers {
    /// As given, in order, without trailing slashes; never empty.
    listed: Vec<String>,
    /// The URL that answered last (a listed one, or an `active` a standby named).
    last_answered: Mutex<Option<String>>,
}

impl Servers {
    /// Parses `URL[,URL...]`; the error says what to fix.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut listed: Vec<String> = Vec::new();
        for url in text.split(',').map(normalize).filter(|url| !url.is_empty()) {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(format!(
                    "the server URL `{url}` (--server or SWITCHBOARD_URL) must start with \
                     http:// or https://"
                ));
            }
            if !listed.contains(&url) {
                listed.push(url);
            }
        }
        if listed.is_empty() {
            return Err("no server URL given (--server URL[,URL...] or SWITCHBOARD_URL)".into());
        }
        if listed.len() > SERVER_URLS_MAX {
            return Err(format!(
                "{} server URLs given; at most {SERVER_URLS_MAX} (--server URL[,URL...])",
                listed.len()
            ));
        }
        Ok(Self {
            listed,
            last_answered: Mutex::new(None),
        })
    }

    /// The URLs as given.
    pub fn listed(&self) -> &[String] {
        &self.listed
    }

    /// The server requests go to first: the one that answered last, else the first listed.
    pub fn current(&self) -> String {
        self.last_answered
            .lock()
            .clone()
            .unwrap_or_else(|| self.listed[0].clone())
    }

    /// Remembers that `url` answered; true when that changed the server remembered.
    pub fn answered(&self, url: &str) -> bool {
        let mut last = self.last_answered.lock();
        if last.as_deref() == Some(url) {
            return false;
        }
        *last = Some(url.to_string());
        true
    }

    /// One round: the current server first, then the rest of the list after it, wrapping.
    fn round(&self) -> Round {
        let current = self.current();
        let start = self.listed.iter().position(|url| *url == current);
        let mut queue = vec![current.clone()];
        let after = start.map_or(0, |index| index + 1);
        for offset in 0..self.listed.len() {
            let url = &self.listed[(after + offset) % self.listed.len()];
            if !queue.contains(url) {
                queue.push(url.clone());
            }
        }
        Round {
            queue,
            tried: Vec::new(),
        }
    }
}

/// What one server said when asked.
pub enum Reply<T> {
    /// It answered as the active server would (success or refusal): the search ends here.
    Answered(T),
    /// It is a hot standby; `active` is the server it named, if it knows one.
    Standby {
        /// The active server's URL, as the standby said.
        active: Option<String>,
    },
    /// No connection could be made (or it broke before the request went out).
    Unreachable {
        /// The innermost cause ("Connection refused").
        cause: String,
    },
}

/// One server tried in the search, and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// The URL tried.
    pub url: String,
    /// "connection refused", "a hot standby (active: URL)".
    pub said: String,
    /// True when it was a standby (it answered), false when unreachable.
    pub standby: bool,
}

/// No active server was found: every URL tried, and what each said last.
#[derive(Debug, Clone)]
pub struct NoActiveServer {
    /// The last round's URLs, in the order tried.
    pub tried: Vec<Tried>,
    /// How long the search went on.
    pub searched: Duration,
}

impl NoActiveServer {
    /// "http://a (Connection refused); http://b (a hot standby; active server unknown)".
    pub fn summary(&self) -> String {
        summary(&self.tried)
    }
}

fn summary(tried: &[Tried]) -> String {
    tried
        .iter()
        .map(|tried| format!("{} ({})", tried.url, tried.said))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The URLs left to try in one round, and what the tried ones said.
struct Round {
    queue: Vec<String>,
    tried: Vec<Tried>,
}

impl Round {
    fn next(&mut self) -> Option<String> {
        (!self.queue.is_empty()).then(|| self.queue.remove(0))
    }

    fn summary(&self) -> String {
        summary(&self.tried)
    }

    fn was_tried(&self, url: &str) -> bool {
        self.tried.iter().any(|tried| tried.url == url)
    }

    fn standby(&mut self, url: String, active: Option<String>) {
        let said = match &active {
            Some(active) => format!("a hot standby; active: {active}"),
            None => "a hot standby; active server unknown".to_string(),
        };
        self.tried.push(Tried {
            url,
            said,
            standby: true,
        });
        // The standby knows better than the list's order: ask the server it names next.
        if let Some(active) = active.map(|url| normalize(&url)) {
            if !active.is_empty() && !self.was_tried(&active) {
                self.queue.retain(|queued| *queued != active);
                self.queue.insert(0, active);
            }
        }
    }

    fn unreachable(&mut self, url: String, cause: String) {
        self.tried.push(Tried {
            url,
            said: cause,
            standby: false,
        });
    }
}

/// Runs `ask` (one request to the URL it is given) on the active server of `servers`; see the
/// module's doc. `window` bounds how long it keeps going round a list with no active server.
pub async fn on_active<T, Fut>(
    servers: &Servers,
    window: Duration,
    mut ask: impl FnMut(String) -> Fut,
) -> Result<T, NoActiveServer>
where
    Fut: Future<Output = Reply<T>>,
{
    let started = Instant::now();
    let mut pause = ROUND_PAUSE_FIRST;
    loop {
        let mut round = servers.round();
        while let Some(url) = round.next() {
            match ask(url.clone()).await {
                Reply::Answered(answer) => {
                    // Said once per move (concurrent requests see it changed only once), and
                    // only when another server failed first: a person should know why the
                    // first URL is not used.
                    if servers.answered(&url) && !round.tried.is_empty() {
                        eprintln!(
                            "switchboard: now talking to {url}, the active server ({})",
                            round.summary()
                        );
                    }
                    return Ok(answer);
                }
                Reply::Standby { active } => round.standby(url, active),
                Reply::Unreachable { cause } => round.unreachable(url, cause),
            }
        }
        let any_standby = round.tried.iter().any(|tried| tried.standby);
        let left = window.saturating_sub(started.elapsed());
        if (servers.listed.len() == 1 && !any_standby) || left.is_zero() {
            return Err(NoActiveServer {
                tried: round.tried,
                searched: started.elapsed(),
            });
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(ROUND_PAUSE_MAX);
    }
}

/// The standby's answer in a refusal with `status` and JSON `body`: `Some(active URL, if
/// named)` when it is one.
pub fn standby_in(status: u16, body: &Value) -> Option<Option<String>> {
    let marked = body["error"].as_str() == Some(STANDBY_MARK)
        || body["status"].as_str() == Some(STANDBY_MARK);
    (status == 503 && marked).then(|| {
        body["active"]
            .as_str()
            .map(normalize)
            .filter(|url| !url.is_empty())
    })
}

/// A URL as compared and joined with paths: trimmed, without trailing slashes.
fn normalize(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_list_is_split_on_commas_trimmed_and_deduplicated() {
        let servers = Servers::parse(" http://a:1/, http://b:2 ,,http://a:1").unwrap();
        assert_eq!(servers.listed(), ["http://a:1", "http://b:2"]);
        assert_eq!(servers.current(), "http://a:1");
        assert!(Servers::parse(" , ").is_err());
        assert!(Servers::parse("a:1").unwrap_err().contains("http://"));
    }

    #[test]
    fn a_round_starts_with_the_server_that_answered_last_and_wraps() {
        let servers = Servers::parse("http://a,http://b,http://c").unwrap();
        assert!(servers.answered("http://b"));
        assert!(
            !servers.answered("http://b"),
            "the same server again is no change"
        );
        assert_eq!(servers.round().queue, ["http://b", "http://c", "http://a"]);
        assert!(servers.answered("http://x"));
        assert_eq!(
            servers.round().queue,
            ["http://x", "http://a", "http://b", "http://c"]
        );
    }

    #[test]
    fn the_active_server_a_standby_names_is_tried_next() {
        let servers = Servers::parse("http://a,http://b,http://c").unwrap();
        let mut round = servers.round();
        let first = round.next().unwrap();
        round.standby(first, Some("http://c/".into()));
        assert_eq!(round.next().as_deref(), Some("http://c"));
        assert_eq!(round.next().as_deref(), Some("http://b"));
        assert_eq!(round.next(), None);
    }

    #[test]
    fn only_a_503_marked_standby_is_a_standby() {
        let body = json!({"error": "standby", "active": "http://b:2"});
        assert_eq!(standby_in(503, &body), Some(Some("http://b:2".into())));
        let health = json!({"status": "standby", "active": null});
        assert_eq!(standby_in(503, &health), Some(None));
        assert_eq!(standby_in(200, &body), None);
        assert_eq!(
            standby_in(503, &json!({"error": "storage_unavailable"})),
            None
        );
    }

    /// `url`'s reply when `refusing` refuses connections and `standby` is a standby.
    fn replies(url: &str, refusing: &str, standby: &str) -> Reply<String> {
        if url == refusing {
            Reply::Unreachable {
                cause: "Connection refused".into(),
            }
        } else if url == standby {
            Reply::Standby { active: None }
        } else {
            Reply::Answered(url.to_string())
        }
    }

    #[tokio::test]
    async fn a_list_with_no_active_server_is_searched_for_the_window_then_named() {
        let servers = Servers::parse("http://a,http://b").unwrap();
        let mut asked = 0;
        let window = Duration::from_millis(300);
        let searched = on_active(&servers, window, |url| {
            asked += 1;
            std::future::ready(replies(&url, "http://a", "http://b"))
        })
        .await
        .unwrap_err();
        assert!(searched.searched >= window, "{:?}", searched.searched);
        assert!(asked > 2, "went round more than once: {asked}");
        assert_eq!(
            searched.summary(),
            "http://a (Connection refused); http://b (a hot standby; active server unknown)"
        );
    }

    #[tokio::test]
    async fn a_single_url_nobody_listens_at_fails_at_once() {
        let servers = Servers::parse("http://a").unwrap();
        let mut asked = 0;
        let searched = on_active(&servers, Duration::from_secs(60), |url| {
            asked += 1;
            std::future::ready(replies(&url, "http://a", ""))
        })
        .await
        .unwrap_err();
        assert_eq!(asked, 1);
        assert_eq!(searched.tried.len(), 1);
    }

    #[tokio::test]
    async fn the_server_that_answers_is_remembered_for_the_next_request() {
        let servers = Servers::parse("http://a,http://b,http://c").unwrap();
        let window = Duration::from_secs(60);
        let answered = on_active(&servers, window, |url| {
            std::future::ready(replies(&url, "http://a", "http://b"))
        })
        .await
        .unwrap();
        assert_eq!(answered, "http://c");
        let mut asked = Vec::new();
        on_active(&servers, window, |url| {
            asked.push(url.clone());
            std::future::ready(replies(&url, "", ""))
        })
        .await
        .unwrap();
        assert_eq!(asked, ["http://c"]);
    }
}
