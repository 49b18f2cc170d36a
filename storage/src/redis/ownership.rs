//! One server owns a prefix: an owner lease key (`SET NX PX`) holding the owner's id, renewed
//! by every commit and by a background thread, and a fencing token (`INCR`) taken by each new
//! owner. See the module doc of `redis` for the whole scheme.

use std::hash::{BuildHasher, Hasher};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use redis::RedisError;
use switchboard_engine::{Reachability, StorageError};

use super::keys::Keys;
use super::link::Link;
use super::{scripts, RedisOpenError, RedisOptions};

/// Renewals per lease period: a lease survives two missed renewals in a row.
const RENEWALS_PER_LEASE: u32 = 3;
/// Pause between renewal attempts while Redis cannot be reached, in milliseconds: shorter than
/// the renewal period, so that health and writes come back soon after Redis does.
const RENEW_RETRY_UNREACHABLE_MS: u64 = 500;

/// Another live server holds the owner lease of the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedElsewhere {
    /// The prefix that is owned.
    pub prefix: String,
    /// The Redis URL, password hidden.
    pub shown_url: String,
    /// The holder's owner id.
    pub holder: String,
    /// Where the holder serves its API, when it said so.
    pub active_url: Option<String>,
    /// How long its lease lasts unless renewed, in milliseconds.
    pub lease_remaining_ms: u64,
}

impl std::fmt::Display for OwnedElsewhere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the Redis prefix {:?} at {} is owned by another switchboard server (owner {}",
            self.prefix, self.shown_url, self.holder
        )?;
        if let Some(url) = &self.active_url {
            write!(f, ", serving at {url}")?;
        }
        write!(
            f,
            ", its lease ends in {} ms unless renewed). Two servers on one prefix would corrupt \
             each other's queues: stop the other server, start this one as its standby, or give \
             this one its own prefix. If the other server is dead, start again once its lease \
             has lapsed.",
            self.lease_remaining_ms
        )
    }
}

/// Who we are as owner, and whether we still are.
pub(crate) struct Ownership {
    owner_id: String,
    fencing_token: String,
    lease: Duration,
    /// Why ownership was lost, once it was: every later commit fails with it.
    lost: Arc<Mutex<Option<String>>>,
    /// Set by the renewal thread while Redis cannot be reached, so the engine knows it while
    /// idle (a commit would find out only when something is written).
    reachability: Reachability,
    renewer: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl Ownership {
    /// Takes the prefix, or says who holds it. Starts the renewal thread.
    pub(crate) fn acquire(
        link: &mut Link,
        keys: &Keys,
        options: &RedisOptions,
    ) -> Result<Self, RedisOpenError> {
        let owner_id = options.owner_id.clone().unwrap_or_else(new_owner_id);
        if owner_id.is_empty() || owner_id.contains(char::is_whitespace) {
            return Err(StorageError::Failed(format!(
                "invalid owner id {owner_id:?}: it must be non-empty and without spaces"
            ))
            .into());
        }
        let lease = options.owner_lease;
        let lease_ms = lease.as_millis().max(1) as u64;
        let advertise_url = options.advertise_url.clone().unwrap_or_default();
        let reply: Vec<String> = link
            .call(|connection| {
                scripts::ACQUIRE
                    .key(keys.owner())
                    .key(keys.fence())
                    .key(keys.active())
                    .arg(&owner_id)
                    .arg(lease_ms)
                    .arg(&advertise_url)
                    .invoke(connection)
            })
            .map_err(|error| link.open_error(&error))?;
        let fencing_token = match reply.as_slice() {
            [status, token, how] if status == "acquired" => {
                if how == "reclaimed" {
                    tracing::info!(prefix = keys.prefix(), owner = %owner_id,
                        "took back the owner lease this server held before it restarted");
                }
                token.clone()
            }
            [status, holder, remaining_ms, url] if status == "held" => {
                return Err(RedisOpenError::Owned(OwnedElsewhere {
                    prefix: keys.prefix().to_string(),
                    shown_url: link.shown_url().to_string(),
                    holder: holder.clone(),
                    active_url: (!url.is_empty()).then(|| url.clone()),
                    lease_remaining_ms: remaining_ms.parse::<i64>().unwrap_or(0).max(0) as u64,
                }))
            }
            other => {
                return Err(StorageError::Failed(format!(
                    "unexpected reply {other:?} to the ownership script on Redis at {}",
                    link.shown_url()
                ))
                .into())
            }
        };
        tracing::info!(prefix = keys.prefix(), owner = %owner_id, fencing_token = %fencing_token,
            "took ownership of the Redis prefix");
        let mut ownership = Self {
            owner_id,
            fencing_token,
            lease,
            lost: Arc::default(),
            reachability: Reachability::new(),
            renewer: None,
        };
        ownership.start_renewer(link.fresh(), keys.clone())?;
        Ok(ownership)
    }

    /// Whether the renewal thread reaches Redis (see [`Reachability`]).
    pub(crate) fn reachability(&self) -> Reachability {
        self.reachability.clone()
    }

    pub(crate) fn owner_id(&self) -> &str {
        &self.owner_id
    }

    pub(crate) fn fencing_token(&self) -> &str {
        &self.fencing_token
    }

    /// How often the lease is renewed.
    pub(crate) fn renewal_period(&self) -> Duration {
        self.lease / RENEWALS_PER_LEASE
    }

    pub(crate) fn lease_ms(&self) -> u64 {
        self.lease.as_millis().max(1) as u64
    }

    /// Fails once ownership is known to be lost (fail-stop: never write as a deposed owner).
    pub(crate) fn ensure_owned(&self) -> Result<(), StorageError> {
        match &*self.lost.lock() {
            None => Ok(()),
            Some(reason) => Err(StorageError::Failed(reason.clone())),
        }
    }

    /// If `error` is the commit script's "lost ownership" reply, records it and returns the
    /// error the engine gets.
    pub(crate) fn note_if_lost(&self, keys: &Keys, error: &RedisError) -> Option<StorageError> {
        let reason = lost_reason(keys, error)?;
        tracing::error!(prefix = keys.prefix(), owner = %self.owner_id, %reason,
            "lost ownership of the Redis prefix; refusing further writes");
        *self.lost.lock() = Some(reason.clone());
        self.reachability.mark_stopped(reason.clone());
        Some(StorageError::Failed(reason))
    }

    fn start_renewer(&mut self, mut link: Link, keys: Keys) -> Result<(), StorageError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let period = self.renewal_period();
        let owner_id = self.owner_id.clone();
        let token = self.fencing_token.clone();
        let lease_ms = self.lease_ms();
        let lost = self.lost.clone();
        let reachability = self.reachability.clone();
        let thread = std::thread::Builder::new()
            .name("switchboard-redis-lease".into())
            .spawn(move || {
                let mut failing = false;
                loop {
                    let pause = if failing {
                        Duration::from_millis(RENEW_RETRY_UNREACHABLE_MS).min(period)
                    } else {
                        period
                    };
                    match stopped.recv_timeout(pause) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    let result = link.call(|connection| {
                        renew_invocation(&keys, &owner_id, &token, lease_ms)
                            .invoke::<i64>(connection)
                    });
                    match result {
                        Ok(_) => {
                            if failing {
                                tracing::info!(prefix = keys.prefix(), "owner lease renewed again");
                            }
                            reachability.mark_reachable();
                            failing = false;
                        }
                        Err(error) => {
                            if let Some(reason) = lost_reason(&keys, &error) {
                                tracing::error!(prefix = keys.prefix(), %reason,
                                    "lost ownership of the Redis prefix; refusing further writes");
                                // Health and refusals must say so, not the last "cannot renew".
                                reachability.mark_stopped(reason.clone());
                                *lost.lock() = Some(reason);
                                return;
                            }
                            if !failing {
                                tracing::warn!(prefix = keys.prefix(), %error,
                                    "cannot renew the owner lease; retrying");
                            }
                            if let StorageError::Unavailable(problem) =
                                link.run_error("renewing the owner lease", &error)
                            {
                                reachability.mark_unreachable(problem);
                            }
                            failing = true;
                        }
                    }
                }
            })
            .map_err(|error| {
                StorageError::Failed(format!("cannot start the lease renewal thread: {error}"))
            })?;
        self.renewer = Some((stop, thread));
        Ok(())
    }

    /// Stops renewing and gives the prefix up if still ours (best effort).
    pub(crate) fn release(&mut self, link: &mut Link, keys: &Keys) {
        if let Some((stop, thread)) = self.renewer.take() {
            drop(stop);
            let _ = thread.join();
        }
        if self.lost.lock().is_some() {
            return;
        }
        let released = link.call(|connection| {
            scripts::RELEASE
                .key(keys.owner())
                .arg(&self.owner_id)
                .invoke::<i64>(connection)
        });
        match released {
            Ok(_) => tracing::info!(prefix = keys.prefix(), "released the Redis prefix"),
            Err(error) => tracing::warn!(prefix = keys.prefix(), %error,
                "could not release the Redis prefix; the next server waits for the lease to lapse"),
        }
    }
}

/// The commit script called with no batch (number 0): it only checks and renews the lease.
fn renew_invocation(
    keys: &Keys,
    owner_id: &str,
    fencing_token: &str,
    lease_ms: u64,
) -> redis::ScriptInvocation<'static> {
    let mut invocation = scripts::COMMIT.prepare_invoke();
    invocation
        .key(keys.owner())
        .key(keys.fence())
        .key(staging_key(keys, owner_id))
        .arg("owner")
        .arg(owner_id)
        .arg(fencing_token)
        .arg(lease_ms)
        .arg("inline")
        .arg("renew")
        .arg(0)
        .arg(0);
    invocation
}

/// Each owner stages in its own list, so a deposed owner can never feed its batch to the next.
pub(crate) fn staging_key(keys: &Keys, owner_id: &str) -> String {
    format!("{}:{owner_id}", keys.staging())
}

fn lost_reason(keys: &Keys, error: &RedisError) -> Option<String> {
    if error.code() != Some(scripts::LOST_OWNERSHIP_CODE) {
        return None;
    }
    let holder = error.detail().unwrap_or("another server");
    if holder.starts_with("nobody") {
        return Some(format!(
            "lost ownership of prefix {:?}: its owner lease and fencing token are gone from \
             Redis ({holder}), e.g. Redis restarted without persistence or the keys were \
             deleted, so what this server stored there may be lost; writes are stopped: \
             restart this server to take the prefix again",
            keys.prefix(),
        ));
    }
    Some(format!(
        "lost ownership of prefix {:?}: the owner lease is now held by {}. Another switchboard \
         server took over (this one was unreachable longer than the lease); restart this one \
         as a standby or give it its own prefix",
        keys.prefix(),
        error.detail().unwrap_or("another server"),
    ))
}

/// `host:pid:random`, so that the refusal message tells a person which server holds the prefix.
fn new_owner_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    format!("{host}:{}:{:016x}", std::process::id(), hasher.finish())
}
