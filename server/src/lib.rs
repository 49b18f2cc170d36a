//! # switchboard-server
//!
//! The `switchboard` binary's library: the engine and its storage behind an axum HTTP +
//! WebSocket API that keeps the original system's paths, fields and frames (see
//! `ORIGINAL_SYSTEM.md`) and fixes its defects. Every agent has an inbox, the engine queue
//! `inbox:<agent id>`; reading an inbox *leases* messages, so a message not acknowledged is
//! delivered again and, after its attempts, becomes a dead letter.
//!
//! ## Layout
//! - `main.rs` (the binary) only parses arguments and calls [`cli::run`].
//! - [`cli`]: subcommands (`serve`); `cli/serve.rs` starts and stops the server;
//!   `cli/client/`: the agent tools (`send`, `inbox`, `ack`, `wait`, `ask`, `reply`, `status`,
//!   `tail`, `hook`, ...) over HTTP.
//! - [`mcp`]: `switchboard mcp`, the agent tools as an MCP server on stdio.
//! - [`config`]: flags, environment variables, [`config::Settings`].
//! - [`limits`]: every limit, named with its unit.
//! - [`app`]: [`app::app`], the router and its layers; no I/O, testable with `oneshot`.
//! - [`api`]: one file per resource (`agents`, `messages`, `broadcast`, `queues`, `stats`,
//!   `health`, `openapi`) and the wire types (`api::wire`).
//! - `inbox`: sending to, leasing from and settling messages of an agent's inbox, shared by
//!   REST and WebSocket.
//! - `registry`: agents (unique names, stable ids, presence), persisted in the engine;
//!   `registry/discovery/`: agents found in worktrees (CLAUDE.md, capabilities, git, watching).
//! - `routing`: `auto` and `capability:NAME` recipients (rules, strategies, waiting queues).
//! - `ws`: agent sockets (reader, pusher with credit, writer).
//! - [`monitor`]: metrics, health score, alerts, 24 h history, `/metrics` (Prometheus) and the
//!   live dashboard at `/`.
//! - [`migrate`]: zero-disruption migration from tmux (tmux adapter, dual mode, batches,
//!   validation, rollback, persisted state, report, cleanup).
//! - [`auth`]: `--auth token`: tokens and their hashes, the admin token, the table of who may
//!   call each route, and the guard middleware applying it; the non-loopback rule.
//! - [`tls`]: `--tls-cert`/`--tls-key`: HTTPS and WSS on the API port (rustls).
//! - [`error`]: [`error::ApiError`], the one error type → status + `{"detail": "..."}`.
//! - `extract`: extractors turning axum's rejections into JSON 4xx answers.
//! - `lease_book`: tokens of REST leases, so acks by id go straight to the engine.
//! - `receipts`: delivery receipts (each message's stages with times), the live traffic feed,
//!   and request/reply (`ask`); fed by small hooks in `inbox`, `ws` and `api`.
//! - `reply`: answering a message, which acknowledges the question (`switchboard reply`).
//! - `standby`: a hot standby's answers while another server owns the storage, its attempts to
//!   take over, and the switch that puts the full API on the same listener when it does.
//! - `workdir`: the lock on `--workdir` and the stable owner id kept there.
//! - `durable`: state kept as logs in reserved engine queues (receipts, open asks, routing
//!   memory), so a restart or a failover to another server on the same storage finds it.
//! - `rate_limit`, `listener`, `shutdown`, `similar` ("did you mean"), `storage`, `state`, `time`:
//!   the small parts.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
mod durable;
pub mod error;
mod extract;
mod inbox;
mod lease_book;
pub mod limits;
mod listener;
pub mod mcp;
pub mod migrate;
pub mod monitor;
mod rate_limit;
mod receipts;
mod registry;
mod reply;
mod routing;
mod shutdown;
mod similar;
mod standby;
mod state;
mod storage;
#[cfg(test)]
mod test_support;
mod time;
pub mod tls;
mod workdir;
mod ws;

pub use app::app;
pub use registry::Registry;
pub use state::AppState;
pub use time::iso8601;
