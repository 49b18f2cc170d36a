//! `switchboard serve` settings: the flags, the environment variables the original read, and the
//! rule that picks the storage URL when several are given.

use std::path::PathBuf;

use clap::Args;

use crate::limits;

/// Storage used when no flag or environment variable names one (as the original).
pub const STORAGE_URL_DEFAULT: &str = "redis://127.0.0.1:6379";

/// Flags of `switchboard serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Storage URL: `redis://host:port/db`, `redis+cluster://host:port,host:port`,
    /// `redis+sentinel://host:port,host:port/SERVICE` (each Redis URL takes `?replicas=N` to
    /// wait for N replicas per commit), `redb:PATH`, `sled:PATH` or `memory:`.
    /// Env: SWITCHBOARD_STORAGE (then REDIS_URL). Default: redis://127.0.0.1:6379.
    #[arg(long, value_name = "URL")]
    pub storage: Option<String>,
    /// The original's name for `--storage` (a Redis URL); `--storage` wins when both are given.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "API_HOST", default_value = "127.0.0.1")]
    pub api_host: String,
    /// Port to listen on (0 picks a free one and logs it).
    #[arg(long, env = "API_PORT", default_value_t = 8080)]
    pub api_port: u16,
    /// Log filter, e.g. `info` or `switchboard_server=debug` (RUST_LOG also works).
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Accepted for compatibility with the original; monitoring (`/metrics`, the dashboard at
    /// `/`, health score, alerts, history) is always on.
    #[arg(long)]
    pub enable_monitoring: bool,
    /// Allow tmux migrations (`switchboard migrate`); without it the server never types into
    /// tmux panes, except to finish a migration it finds unfinished at start.
    #[arg(long)]
    pub enable_migration: bool,
    /// Working directory holding `worktrees/` for agent discovery. The server also keeps its
    /// state there (`.switchboard/`: its owner id, so a restart reclaims its Redis lease at
    /// once) and locks it while it runs: give each server its own.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub workdir: PathBuf,
    /// How long this server's ownership of a Redis prefix lasts without renewal, in ms: a hot
    /// standby takes over within about this long after the active server dies (a graceful
    /// stop hands over at once). Ignored by redb, sled and memory storage.
    #[arg(long, env = "SWITCHBOARD_OWNER_LEASE_MS", value_name = "MS",
        default_value_t = limits::OWNER_LEASE_MS_DEFAULT,
        value_parser = clap::value_parser!(u64)
            .range(limits::OWNER_LEASE_MS_MIN..=limits::OWNER_LEASE_MS_MAX))]
    pub owner_lease_ms: u64,
    /// The URL clients and standbys are told to use for this server (e.g. behind a proxy).
    /// Default: the scheme (http or https) and the address it listens on (the host name when
    /// it listens on every address).
    #[arg(long, env = "SWITCHBOARD_ADVERTISE_URL", value_name = "URL")]
    pub advertise_url: Option<String>,
    /// Agent discovery flags (see `registry/discovery/`).
    #[command(flatten)]
    pub discovery: crate::registry::discovery::DiscoveryArgs,
    /// Routing flags (see `routing/`).
    #[command(flatten)]
    pub routing: crate::routing::RoutingArgs,
    /// Migration flags: `--migrate-now`, `--tmux-socket`, `--migration-on-restart` and the run
    /// settings used by `--migrate-now` (see [`crate::migrate::settings`]).
    #[command(flatten)]
    pub migration: crate::migrate::settings::MigrationArgs,
    /// Unacknowledged WebSocket pushes allowed per connection (1 to 10000).
    #[arg(long, default_value_t = limits::WS_IN_FLIGHT_MAX_DEFAULT)]
    pub max_in_flight: usize,
    /// Messages per second one sender may send (0 turns rate limiting off).
    #[arg(long, default_value_t = limits::RATE_PER_SENDER_PER_SECOND_DEFAULT)]
    pub rate_per_sender: u32,
    /// Messages one sender may send in a burst.
    #[arg(long, default_value_t = limits::RATE_BURST_PER_SENDER_DEFAULT)]
    pub rate_burst: u32,
    /// Authentication: `--auth`, `--admin-token`, `--insecure` (see [`crate::auth`]).
    #[command(flatten)]
    pub auth: crate::auth::AuthArgs,
    /// TLS for the API: `--tls-cert`, `--tls-key` (see [`crate::tls`]).
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
}

impl ServeArgs {
    /// The storage URL to open: `--storage`, else `--redis-url`, else `SWITCHBOARD_STORAGE`,
    /// else `REDIS_URL`, else [`STORAGE_URL_DEFAULT`]. `env` looks a variable up (injected so
    /// tests need not touch the process environment).
    pub fn storage_url(&self, env: impl Fn(&str) -> Option<String>) -> String {
        self.storage
            .clone()
            .or_else(|| self.redis_url.clone())
            .or_else(|| env("SWITCHBOARD_STORAGE"))
            .or_else(|| env("REDIS_URL"))
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| STORAGE_URL_DEFAULT.to_string())
    }

    /// The owner lease `--owner-lease-ms` names.
    pub fn owner_lease(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.owner_lease_ms)
    }

    /// The address to bind, `host:port` (IPv6 literals bracketed); host names such as
    /// `localhost` are resolved when binding.
    pub fn listen_address(&self) -> String {
        let host = self.api_host.trim();
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{}", self.api_port)
        } else {
            format!("{host}:{}", self.api_port)
        }
    }
}

/// The settings handlers read at run time.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Unacknowledged WebSocket pushes allowed per connection.
    pub max_in_flight: usize,
    /// Messages per second one sender may send (0: unlimited).
    pub rate_per_sender: u32,
    /// Burst size of the per-sender bucket.
    pub rate_burst: u32,
    /// Where and when agent discovery looks (off by default; `serve` turns it on).
    pub discovery: crate::registry::discovery::DiscoveryConfig,
    /// `--routing-rules FILE`: where rules set over the API are kept (else in storage).
    pub routing_rules: Option<PathBuf>,
    /// Authentication mode and the admin token's hash (see [`crate::auth`]); `serve` fills it
    /// in, since the admin token may need a file read or written.
    pub auth: crate::auth::AuthSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_in_flight: limits::WS_IN_FLIGHT_MAX_DEFAULT,
            rate_per_sender: limits::RATE_PER_SENDER_PER_SECOND_DEFAULT,
            rate_burst: limits::RATE_BURST_PER_SENDER_DEFAULT,
            discovery: crate::registry::discovery::DiscoveryConfig::disabled(),
            routing_rules: None,
            auth: crate::auth::AuthSettings::default(),
        }
    }
}

impl From<&ServeArgs> for Settings {
    fn from(args: &ServeArgs) -> Self {
        Self {
            max_in_flight: args
                .max_in_flight
                .clamp(1, switchboard_engine::BATCH_MESSAGES_MAX),
            rate_per_sender: args.rate_per_sender,
            rate_burst: args.rate_burst.max(1),
            discovery: args.discovery.config(&args.workdir),
            routing_rules: args.routing.routing_rules.clone(),
            auth: crate::auth::AuthSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(argv: &[&str]) -> ServeArgs {
        Wrapper::parse_from(std::iter::once("serve").chain(argv.iter().copied())).args
    }

    #[test]
    fn storage_flag_wins_over_redis_url_and_environment() {
        let args = parse(&["--storage", "memory:", "--redis-url", "redis://x:1"]);
        assert_eq!(args.storage_url(|_| Some("redb:env".into())), "memory:");
    }

    #[test]
    fn redis_url_flag_is_an_alias_of_storage() {
        let args = parse(&["--redis-url", "redis://x:1"]);
        assert_eq!(args.storage_url(|_| None), "redis://x:1");
    }

    #[test]
    fn switchboard_storage_env_wins_over_redis_url_env() {
        let args = parse(&[]);
        let env = |name: &str| match name {
            "SWITCHBOARD_STORAGE" => Some("redb:a".to_string()),
            "REDIS_URL" => Some("redis://b:1".to_string()),
            _ => None,
        };
        assert_eq!(args.storage_url(env), "redb:a");
        assert_eq!(args.storage_url(|_| None), STORAGE_URL_DEFAULT);
    }

    #[test]
    fn owner_lease_defaults_to_three_seconds_and_refuses_too_short_ones() {
        assert_eq!(parse(&[]).owner_lease_ms, limits::OWNER_LEASE_MS_DEFAULT);
        assert_eq!(parse(&["--owner-lease-ms", "1000"]).owner_lease_ms, 1000);
        let short = Wrapper::try_parse_from(["serve", "--owner-lease-ms", "10"]);
        assert!(short.is_err(), "a 10 ms lease would lapse on any pause");
    }

    #[test]
    fn api_host_and_port_form_the_bind_address() {
        let args = parse(&["--api-host", "localhost", "--api-port", "9"]);
        assert_eq!(args.listen_address(), "localhost:9");
        let args = parse(&["--api-host", "::1", "--api-port", "9"]);
        assert_eq!(args.listen_address(), "[::1]:9");
    }
}
