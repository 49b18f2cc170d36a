//! Opening the storage backend a URL names (`redis://…`, `redb:PATH`, `sled:PATH`, `memory:`),
//! through `switchboard_storage::open`.

use switchboard_engine::Storage;

/// Opens the backend `url` names, or says in one sentence why it cannot.
pub fn open_backend(url: &str) -> Result<Box<dyn Storage>, String> {
    switchboard_storage::open(url).map_err(|error| error.to_string())
}
