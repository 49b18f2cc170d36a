//! One lazily (re)connected Redis connection, and the sorting of Redis errors into the
//! engine's `Unavailable` (retry) and `Failed` (stop).

use std::time::Duration;

use std::sync::Arc;

use parking_lot::Mutex;
use redis::cluster::{ClusterClient, ClusterConnection};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    Client, Connection, ConnectionLike, ErrorKind, RedisError, RedisResult, ServerErrorKind, Value,
};
use switchboard_engine::StorageError;

use super::target::{RedisTarget, Topology};

/// Longest wait for a TCP (and TLS) connection to Redis.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for one reply. A commit of a very large batch must fit in it; when it runs
/// out the connection is dropped and the (idempotent) commit retried.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// What to do when Redis cannot be reached, for people reading the error. Other backends are
/// not suggested here: the program using this crate knows how its users choose one (the
/// server's start-up error says it, and said it twice while this did too).
const START_REDIS_HINT: &str = "Start it with `redis-server --appendonly yes --appendfsync \
     everysec`";

/// A connection to Redis: to one server (directly or to the master Sentinel names), or to a
/// Redis Cluster (redis-rs routes each command to its slot's master, following MOVED and ASK).
pub(crate) enum Conn {
    Plain(Connection),
    Cluster(Box<ClusterConnection>),
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Conn::Plain(connection) => connection.req_packed_command(cmd),
            Conn::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Plain(connection) => connection.req_packed_commands(cmd, offset, count),
            Conn::Cluster(connection) => connection.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &redis::Cmd) -> RedisResult<Value> {
        match self {
            Conn::Plain(connection) => connection.req_command(cmd),
            Conn::Cluster(connection) => connection.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Plain(connection) => connection.get_db(),
            Conn::Cluster(connection) => connection.get_db(),
        }
    }

    fn supports_pipelining(&self) -> bool {
        match self {
            Conn::Plain(connection) => connection.supports_pipelining(),
            Conn::Cluster(connection) => connection.supports_pipelining(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Conn::Plain(connection) => connection.check_connection(),
            Conn::Cluster(connection) => connection.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Conn::Plain(connection) => connection.is_open(),
            Conn::Cluster(connection) => connection.is_open(),
        }
    }
}

/// How connections are made.
#[derive(Clone)]
enum Connector {
    Single(Client),
    /// Asks the sentinels for the current master at every (re)connect, so a failover is
    /// followed by the next reconnect.
    Sentinel(Arc<Mutex<SentinelClient>>),
    Cluster(ClusterClient),
}

/// A Redis URL and, while it works, a connection to it.
pub(crate) struct Link {
    connector: Connector,
    target: RedisTarget,
    connection: Option<Conn>,
    /// Counts connections made: work sent on an earlier one must be sent again.
    generation: u64,
    /// The URL with any password hidden, for messages.
    shown_url: String,
}

impl Link {
    /// Parses `url`; connects only when first used.
    pub(crate) fn new(url: &str) -> Result<Self, StorageError> {
        let shown_url = redact_url(url);
        if url.starts_with("rediss://") {
            // rustls needs a process-wide crypto provider; keep one installed earlier.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let target = RedisTarget::parse(url, &shown_url)?;
        let invalid = |error: RedisError| {
            StorageError::Failed(format!(
                "invalid Redis URL {shown_url}: {error} (expected \
                 redis://[user:password@]host[:port][/db], or rediss://... for TLS; append \
                 #insecure to a rediss:// URL to skip certificate verification)"
            ))
        };
        let connector = match &target.topology {
            Topology::Single(url) => {
                Connector::Single(Client::open(url.as_str()).map_err(invalid)?)
            }
            Topology::Cluster(nodes) => Connector::Cluster(
                ClusterClient::builder(nodes.clone())
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(COMMAND_TIMEOUT)
                    .build()
                    .map_err(invalid)?,
            ),
            Topology::Sentinel {
                sentinels,
                service,
                username,
                password,
            } => {
                let mut info = redis::RedisConnectionInfo::default();
                if let Some(username) = username {
                    info = info.set_username(username);
                }
                if let Some(password) = password {
                    info = info.set_password(password);
                }
                let node = SentinelNodeConnectionInfo::default().set_redis_connection_info(info);
                let client = SentinelClient::build(
                    sentinels.clone(),
                    service.clone(),
                    Some(node),
                    SentinelServerType::Master,
                )
                .map_err(invalid)?;
                Connector::Sentinel(Arc::new(Mutex::new(client)))
            }
        };
        Ok(Self {
            connector,
            target,
            connection: None,
            generation: 0,
            shown_url,
        })
    }

    /// What the URL names (topology and replica options).
    pub(crate) fn target(&self) -> &RedisTarget {
        &self.target
    }

    /// The URL with any password hidden.
    pub(crate) fn shown_url(&self) -> &str {
        &self.shown_url
    }

    /// A second link to the same server (for the lease renewal thread).
    pub(crate) fn fresh(&self) -> Self {
        Self {
            connector: self.connector.clone(),
            target: self.target.clone(),
            connection: None,
            generation: 0,
            shown_url: self.shown_url.clone(),
        }
    }

    /// Runs `work` on the connection, connecting first if needed. A connection-level error
    /// drops the connection, so the next call reconnects.
    pub(crate) fn call<T>(
        &mut self,
        work: impl FnOnce(&mut Conn) -> Result<T, RedisError>,
    ) -> Result<T, RedisError> {
        self.call_numbered(|connection, _| work(connection))
    }

    /// [`Link::call`], also telling `work` which connection it runs on (a number that grows
    /// with every reconnect).
    pub(crate) fn call_numbered<T>(
        &mut self,
        work: impl FnOnce(&mut Conn, u64) -> Result<T, RedisError>,
    ) -> Result<T, RedisError> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            slot => {
                let connection = slot.insert(connect(&self.connector)?);
                self.generation += 1;
                connection
            }
        };
        let result = work(connection, self.generation);
        if let Err(error) = &result {
            if is_connection_problem(error) {
                self.connection = None;
            }
        }
        result
    }

    /// Drops the connection: the next call reconnects (used when replies still due on it can
    /// no longer be matched to their requests).
    pub(crate) fn disconnect(&mut self) {
        self.connection = None;
    }

    /// The error for a failure to reach Redis at open: names the URL and how to start Redis.
    pub(crate) fn open_error(&self, error: &RedisError) -> StorageError {
        let text = describe(error);
        if text.contains("certificate") {
            return StorageError::Failed(format!(
                "Redis at {} presented a TLS certificate this server does not trust: {text}. \
                 Use a certificate from a CA in the system trust store, or append #insecure to \
                 the rediss:// URL to skip verification (testing only)",
                self.shown_url
            ));
        }
        if is_transient(error) {
            StorageError::Unavailable(format!(
                "cannot connect to Redis at {}: {text}. {START_REDIS_HINT}",
                self.shown_url
            ))
        } else {
            StorageError::Failed(format!(
                "Redis at {} refused to start the storage: {text}",
                self.shown_url
            ))
        }
    }

    /// The error for a failed operation while running: `Unavailable` when retrying can help.
    pub(crate) fn run_error(&self, doing: &str, error: &RedisError) -> StorageError {
        let text = format!(
            "{doing} on Redis at {} failed: {}",
            self.shown_url,
            describe(error)
        );
        if is_transient(error) {
            StorageError::Unavailable(text)
        } else {
            StorageError::Failed(text)
        }
    }
}

fn connect(connector: &Connector) -> Result<Conn, RedisError> {
    let plain = |client: &Client| -> Result<Conn, RedisError> {
        let connection = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        connection.set_read_timeout(Some(COMMAND_TIMEOUT))?;
        connection.set_write_timeout(Some(COMMAND_TIMEOUT))?;
        Ok(Conn::Plain(connection))
    };
    match connector {
        Connector::Single(client) => plain(client),
        Connector::Sentinel(sentinel) => {
            let client = sentinel.lock().get_client()?;
            plain(&client)
        }
        Connector::Cluster(client) => {
            let connection = client.get_connection()?;
            Ok(Conn::Cluster(Box::new(connection)))
        }
    }
}

/// The error text, with connection refusals said plainly.
fn describe(error: &RedisError) -> String {
    if error.is_connection_refusal() {
        "connection refused".to_string()
    } else if error.is_timeout() {
        "timed out".to_string()
    } else {
        error.to_string()
    }
}

/// The connection is unusable (broken, timed out mid-reply, refused).
fn is_connection_problem(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
}

/// Retrying later can succeed: the server is unreachable, restarting, loading its data, busy
/// with a script, failing over (Sentinel names no master yet, a cluster node is gone), or out
/// of memory until consumers catch up.
pub(crate) fn is_transient(error: &RedisError) -> bool {
    if is_connection_problem(error) {
        return true;
    }
    match error.kind() {
        // Sentinel is between masters (a failover in progress), or a cluster node was lost.
        ErrorKind::MasterNameNotFoundBySentinel
        | ErrorKind::NoValidReplicasFoundBySentinel
        | ErrorKind::ClusterConnectionNotFound => true,
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::ReadOnly,
        ) => true,
        _ => matches!(error.code(), Some("BUSY" | "OOM" | "MISCONF")),
    }
}

/// `url` with its password replaced by `***`, for logs and errors.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find('/')
        .map_or(url.len(), |at| authority_start + at);
    let Some(at) = url[authority_start..authority_end].rfind('@') else {
        return url.to_string();
    };
    let user_info = &url[authority_start..authority_start + at];
    let Some(colon) = user_info.find(':') else {
        return url.to_string();
    };
    format!(
        "{}{}:***{}",
        &url[..authority_start],
        &user_info[..colon],
        &url[authority_start + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact_url("redis://:secret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact_url("rediss://user:p@ss@host"),
            "rediss://user:***@host"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("redis://user@host/1"), "redis://user@host/1");
    }
}
