//! Black-box tests of the whole switchboard system live in `tests/tests/`; this library holds their shared helpers.
pub mod conformance;
pub mod crash_check;
pub mod redis_cluster;
pub mod redis_replicated;
pub mod redis_sentinel;
pub mod redis_server;
pub mod server_harness;
