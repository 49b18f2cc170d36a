//! Benchmarks and load tools for switchboard.
//!
//! - `benches/engine.rs`: criterion benches of the engine on in-memory storage.
//! - [`loadgen`]: the `switchboard-loadgen` end-to-end load generator (the seed's load test),
//!   which drives a running server over REST or WebSocket and prints a summary table.

pub mod loadgen;
pub mod private_redis;
