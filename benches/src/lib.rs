//! Benchmarks and load tools for switchboard.
//!
//! - `benches/engine.rs`: criterion benches of the engine on in-memory storage.
//! - `switchboard-loadgen`: the end-to-end load generator, a thin wrapper around the server's
//!   `switchboard loadgen` ([`loadgen`]), which drives a running server over REST or WebSocket
//!   and prints a summary table.

pub use switchboard_server::cli::loadgen;
pub mod private_redis;
