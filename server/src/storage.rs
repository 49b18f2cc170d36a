//! Opening the storage backend a URL names (`redis://…`, `redb:PATH`, `sled:PATH`, `memory:`),
//! through `switchboard_storage::open`.

use std::time::{Duration, Instant};

use switchboard_engine::Storage;

/// How long start-up waits for a previous owner's Redis lease to lapse, in milliseconds: a
/// server restarted after `kill -9` finds its dead predecessor's lease (10 s by default) still
/// in Redis and takes over when it ends, instead of refusing to start.
const OWNER_LEASE_WAIT_MS: u64 = 15_000;
/// Pause between attempts while waiting for that lease, in milliseconds.
const OWNER_LEASE_RETRY_MS: u64 = 500;

/// Opens the backend `url` names, or says in one sentence why it cannot.
pub fn open_backend(url: &str) -> Result<Box<dyn Storage>, String> {
    let started = Instant::now();
    let mut warned = false;
    loop {
        match switchboard_storage::open(url) {
            Ok(storage) => return Ok(storage),
            Err(error) => {
                let text = error.to_string();
                let owned = text.contains("is owned by another switchboard server");
                if !owned || started.elapsed() >= Duration::from_millis(OWNER_LEASE_WAIT_MS) {
                    return Err(text);
                }
                if !warned {
                    tracing::warn!(storage = %url, "the storage prefix is owned by another \
                        server; waiting up to {OWNER_LEASE_WAIT_MS} ms for its lease to lapse \
                        (a crashed owner's lease ends by itself)");
                    warned = true;
                }
                std::thread::sleep(Duration::from_millis(OWNER_LEASE_RETRY_MS));
            }
        }
    }
}
