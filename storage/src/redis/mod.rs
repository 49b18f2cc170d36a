//! The Redis backend (the default): the engine's state kept as plain Redis data structures a
//! person can inspect with `redis-cli`, written by one Lua script per commit batch.
//!
//! # Key layout (version 3)
//! Every key starts with the prefix (default `switchboard:`) and carries a `{hash tag}`; the
//! keys of one tag are one atomic unit of a commit (see `keys::Unit`), kept in one slot by Redis
//! Cluster. The prefix-wide keys share the tag `{~}`; a queue's keys carry its name. For a queue
//! `jobs`:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `switchboard:{~}:queues` | set | every queue name (recovery starts here, no `SCAN`) |
//! | `switchboard:{~}:owner` | string with TTL | the owning server's id (`host:...`) |
//! | `switchboard:{~}:active` | hash | `owner` and `url`: where the owner serves, for standbys |
//! | `switchboard:{~}:fence` | counter | the fencing token of the latest owner |
//! | `switchboard:{~}:committed` | string | `<token> <batch>` of the last batch that wrote the `{~}` unit |
//! | `switchboard:{~}:ids` | string | the id reservation (`Record::IdsMinted`), ms |
//! | `switchboard:{~}:layout` | string | the layout version ([`LAYOUT_VERSION`]) |
//! | `switchboard:{jobs}:applied` | string | `<token> <batch>` of the last batch that wrote the queue; a newer owner's token fences older ones off |
//! | `switchboard:{jobs}:config` | string | the queue's configuration as JSON |
//! | `switchboard:{jobs}:ready` | sorted set | ready ids in delivery order: score `(255 - priority) * 2^44 + seq` |
//! | `switchboard:{jobs}:delayed` | sorted set | ids not ready before their score (ms since the epoch) |
//! | `switchboard:{jobs}:dead` | sorted set | dead letters by death time (ms) |
//! | `switchboard:{jobs}:payload` | hash | message id → payload (raw bytes) |
//! | `switchboard:{jobs}:meta` | hash | message id → JSON of the rest: `priority`, `max_attempts`, `enqueued_at`, `attempts`, `seq`, `not_before`, and when set `expires_at`, `dead_reason`, `died_at`, `dedup_key`, `headers` |
//! | `switchboard:{jobs}:dedup` | hash | dedup key → `<message id> <until ms>` |
//!
//! `ZRANGE switchboard:{jobs}:ready 0 -1` lists ready ids in the order they will be delivered;
//! `HGET switchboard:{jobs}:payload <id>` shows one message's payload. A message out with a
//! consumer is in no index (leases are not durable: after a restart it is ready again), so
//! `HLEN meta` minus the three indexes' sizes is the number leased. A delayed message stays
//! listed in `delayed` until it is delivered, even once due. Acked, purged and dropped messages
//! are deleted (hash fields and index entries), so memory follows the live messages, never the
//! history. A queue's messages share two hashes instead of having a key each so that a commit
//! writes a whole batch of them with one command per hash.
//!
//! # Commits
//! On one Redis server (or the master Sentinel names), one commit batch is one `EVALSHA` of the
//! commit script, which Redis runs atomically and writes to its AOF as one `MULTI`/`EXEC`; on a
//! Redis Cluster it is one `EVALSHA` per unit, the `{~}` unit first (see `cluster_commit.rs`).
//! With `?replicas=N` each batch is followed by `WAIT N` and counts only once N replicas have
//! it. The batch is folded into its net change per
//! message first, and the changes of many messages of a queue share one command per key, so a
//! batch costs Redis few calls (see `apply.rs`). Commits are pipelined (see `pipeline.rs`):
//! the next batch is written to the connection while Redis applies the last, and replies are
//! read in order. Each batch carries a number, and the script skips a unit this owner applied
//! it to already, so a batch sent again after a lost connection or a failover is applied
//! exactly once. A
//! connection failure, a timeout or a server that is loading, busy or out of memory gives
//! `StorageError::Unavailable` (the engine retries; a retry reconnects and sends every
//! unanswered batch again); any other error gives `Failed` (the engine stops). Redis
//! does not roll a script back, so an error inside one (only possible if something else wrote
//! a key of the wrong type under the prefix) can leave a batch half applied: that is `Failed`.
//!
//! # Ownership
//! One server owns a prefix. At open it takes the owner key with `SET NX PX` (a lease of
//! [`RedisOptions::owner_lease`], default 3 s) and a fencing token from `INCR fence`:
//! - If another server holds the key, open fails with [`RedisOpenError::Owned`], naming the
//!   holder, where it serves and when its lease ends: a second server never writes beside a
//!   live owner (the server waits as a hot standby). When the owner died, its lease lapses and
//!   the next try takes over (a clean shutdown releases the key at once). A holder with our
//!   own id ([`RedisOptions::owner_id`], kept by the server in its workdir) is this server's
//!   dead predecessor: the lease is taken back at once, with a newer fencing token.
//! - The recovery of a new owner stamps its token on every queue's `applied` key before reading
//!   the queue; a commit to a queue stamped with a newer token is refused, so a deposed owner
//!   can change nothing the new owner has read.
//! - Every commit script first checks that the owner key still holds our id and the fencing
//!   counter our token, and renews the
//!   lease once a third of it has passed; a background thread renews it as often when idle
//!   (and, while it cannot reach Redis, marks the store unreachable: the engine then reports it
//!   and refuses new writes before any commit fails; see `Storage::reachability`). If the key
//!   lapsed but the fencing counter still holds our token, nobody took over, and the lease is
//!   taken back (this covers a Redis outage longer than the lease).
//! - A server whose lease was taken over is deposed: its commits fail with
//!   `StorageError::Failed("lost ownership of prefix ...")` and write nothing (fail-stop). The
//!   same happens if Redis lost its data (the fencing counter is gone).
//!
//! # Persistence
//! Open reads `CONFIG GET appendonly`/`appendfsync`/`save` and warns when Redis would not keep
//! acknowledged messages across its own restart; [`RedisStorage::persistence`] reports it.
//!
//! # URLs
//! `redis://[user:password@]host[:port][/db]`, or `rediss://...` for TLS (rustls, verified
//! against the system's root certificates; a `#insecure` suffix skips verification);
//! `redis+cluster://[user:password@]host:port[,host:port...]` (a Redis Cluster by seed nodes,
//! through redis-rs's cluster client); `redis+sentinel://[user:password@]host:port[,...]/SERVICE`
//! (the master the sentinels name, asked again at every reconnect). Each takes
//! `?replicas=N&replica_timeout_ms=T` (see `target.rs`).

mod apply;
mod cluster_commit;
mod encode;
mod groups;
mod keys;
mod link;
mod message_fields;
mod ownership;
mod persistence;
mod pipeline;
mod placement;
mod recover;
mod scripts;
mod target;

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use switchboard_engine::{Record, Snapshot, Storage, StorageError};

pub use keys::PREFIX_DEFAULT;
pub(crate) use link::redact_url;
pub use ownership::OwnedElsewhere;
pub use persistence::RedisPersistence;
pub use target::REPLICA_TIMEOUT_MS_DEFAULT;

use keys::Keys;
use link::Link;
use ownership::{staging_key, Ownership};
use pipeline::{Outcome, Pipeline};
use placement::Placements;
use recover::RecoverFailure;

/// The key layout this build reads and writes. Version 2 (the prefix-wide keys without a hash
/// tag) is moved to it at open; version 1 (one hash per message, before 2026-12) is refused
/// with a message saying how to move on.
pub const LAYOUT_VERSION: u32 = 3;
/// How long an owner lease lasts without renewal by default: a standby takes over within this
/// (plus its poll interval) after the owner dies, and the owner survives a Redis stall of up to
/// two thirds of it (renewals come every third).
pub const OWNER_LEASE_DEFAULT: Duration = Duration::from_secs(3);
/// Batches that encode to more bytes than this are staged in a list before the commit script
/// applies them, instead of being sent inside the script call (Redis limits one request).
pub const INLINE_BATCH_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Commit batches in flight at once by default (see [`RedisOptions::pipeline_depth`]).
pub const PIPELINE_DEPTH_DEFAULT: usize = 2;

/// Choices made when opening the Redis backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// Prepended to every key (default [`PREFIX_DEFAULT`]); one server owns one prefix.
    pub prefix: String,
    /// How long the owner lease lasts without renewal: how soon a new server may take over
    /// after the owner died.
    pub owner_lease: Duration,
    /// Batches beyond this many encoded bytes are staged first (see
    /// [`INLINE_BATCH_BYTES_MAX_DEFAULT`]).
    pub inline_batch_bytes_max: usize,
    /// Commit batches written to Redis before the oldest one's reply is awaited: with 2, the
    /// next batch is on its way while Redis applies the last. 1 waits for each reply.
    pub pipeline_depth: usize,
    /// This server's owner id, stable across its restarts (`None`: a fresh `host:pid:random`).
    /// A lease held by the same id is taken back at once (the holder is this server's dead
    /// predecessor), with a new fencing token.
    pub owner_id: Option<String>,
    /// Where this server serves its API, stored for standbys to name.
    pub advertise_url: Option<String>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: PREFIX_DEFAULT.to_string(),
            owner_lease: OWNER_LEASE_DEFAULT,
            inline_batch_bytes_max: INLINE_BATCH_BYTES_MAX_DEFAULT,
            pipeline_depth: PIPELINE_DEPTH_DEFAULT,
            owner_id: None,
            advertise_url: None,
        }
    }
}

/// Why [`RedisStorage::open`] failed: another live server owns the prefix (wait for it as a
/// standby), or anything else.
#[derive(Debug, thiserror::Error)]
pub enum RedisOpenError {
    /// Another live server holds the owner lease.
    #[error("{0}")]
    Owned(OwnedElsewhere),
    /// Redis cannot be reached, refused, or holds data this build cannot use.
    #[error("{0}")]
    Storage(#[from] StorageError),
}

/// A planned cluster batch, kept until every unit is applied (and confirmed by replicas).
struct ClusterPending {
    batch: encode::EncodedBatch,
    number: u64,
    renew: bool,
}

/// The engine's state in Redis. See the module doc for the layout and the ownership scheme.
pub struct RedisStorage {
    /// The connection commits (and recovery) use.
    link: Link,
    /// A connection for health pings.
    probe: Link,
    /// Commits written and not yet answered (one Redis server).
    pipeline: Pipeline,
    /// Commits planned and not yet applied (a Redis Cluster: see `cluster_commit.rs`).
    cluster_batches: VecDeque<ClusterPending>,
    /// The number the next cluster batch gets (from 1).
    cluster_next_number: u64,
    /// The batch of a `commit` call that returned an error before it was known applied.
    unfinished_commit: Option<Vec<Record>>,
    keys: Keys,
    options: RedisOptions,
    ownership: Ownership,
    persistence: RedisPersistence,
    /// Where each live message is listed; loaded by recovery or before the first commit.
    placements: Option<Placements>,
    /// When a commit last renewed the owner lease (commits renew it once per renewal period,
    /// not every time: a PEXPIRE per commit would be written to the AOF thousands of times a
    /// second).
    renewed_at: Option<Instant>,
}

impl RedisStorage {
    /// Connects to `url` (`redis://[user:password@]host[:port][/db]`), checks persistence and
    /// takes ownership of `options.prefix`. Fails with `Unavailable` when Redis cannot be
    /// reached and `Failed` when another live server owns the prefix.
    pub fn open(url: &str, options: RedisOptions) -> Result<RedisStorage, RedisOpenError> {
        validate_prefix(&options.prefix)?;
        if options.owner_lease < Duration::from_millis(3) {
            return Err(StorageError::Failed(
                "the Redis owner lease must be at least 3 ms (3 s is the default)".into(),
            )
            .into());
        }
        let mut link = Link::new(url)?;
        let persistence = link
            .call(|connection| {
                redis::cmd("PING").query::<String>(connection)?;
                Ok(RedisPersistence::query(connection))
            })
            .map_err(|error| link.open_error(&error))?;
        persistence.log(link.shown_url());
        let keys = Keys::new(&options.prefix);
        let mut ownership = Ownership::acquire(&mut link, &keys, &options)?;
        if let Err(error) = check_layout(&mut link, &keys) {
            ownership.release(&mut link, &keys);
            return Err(error.into());
        }
        Ok(RedisStorage {
            probe: link.fresh(),
            link,
            pipeline: Pipeline::default(),
            cluster_batches: VecDeque::new(),
            cluster_next_number: 0,
            unfinished_commit: None,
            keys,
            options,
            ownership,
            persistence,
            placements: None,
            renewed_at: None,
        })
    }

    /// How Redis persists its data, as read at open.
    pub fn persistence(&self) -> &RedisPersistence {
        &self.persistence
    }

    /// The key prefix this storage owns.
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// This server's owner id, as stored in the owner key.
    pub fn owner_id(&self) -> &str {
        self.ownership.owner_id()
    }

    /// Drops the commit connection as a network failure would, losing the replies due on it
    /// (fault injection for tests: the batches in flight must be sent again, and applied once).
    #[doc(hidden)]
    pub fn simulate_lost_connection(&mut self) {
        self.link.disconnect();
    }

    /// The fencing token taken at open: higher than any earlier owner's.
    pub fn fencing_token(&self) -> &str {
        self.ownership.fencing_token()
    }
}

impl Storage for RedisStorage {
    fn recover(&mut self) -> Result<Snapshot, StorageError> {
        self.ownership.ensure_owned()?;
        let placements = self.read_everything("recovery")?;
        Ok(placements)
    }

    /// Commits one batch and waits for it (and anything in flight before it). After an
    /// `Unavailable` error, calling again with the same batch finishes that batch rather than
    /// sending it twice.
    fn commit(&mut self, batch: &[Record]) -> Result<(), StorageError> {
        if self.unfinished_commit.as_deref() != Some(batch) {
            self.plan_and_send(batch)?;
            self.unfinished_commit = Some(batch.to_vec());
        }
        while self.in_flight() > 0 {
            self.finish_oldest()?;
        }
        self.unfinished_commit = None;
        Ok(())
    }

    /// A cluster commits batch by batch (see `cluster_commit.rs`).
    fn pipeline_depth(&self) -> usize {
        if self.link.target().is_cluster() {
            1
        } else {
            self.options.pipeline_depth.max(1)
        }
    }

    /// With a pipeline, plans the batch and writes it to the connection at once (see
    /// `plan_and_send`); with a depth of 1 (and on a cluster), the engine finishes nothing
    /// itself: the batch is committed here.
    fn submit(&mut self, batch: &[Record]) -> Result<(), StorageError> {
        if self.pipeline_depth() == 1 {
            return self.commit(batch);
        }
        self.plan_and_send(batch)
    }

    fn finish_oldest(&mut self) -> Result<(), StorageError> {
        self.finish_oldest_batch()
    }

    /// The owner-lease renewer's view: it reaches Redis every few seconds even while nothing
    /// is committed.
    fn reachability(&self) -> Option<switchboard_engine::Reachability> {
        Some(self.ownership.reachability())
    }

    /// Pings on a connection of its own: the commit connection may have replies due.
    fn ping(&mut self) -> Result<(), StorageError> {
        self.ownership.ensure_owned()?;
        self.probe
            .call(|connection| redis::cmd("PING").query::<String>(connection))
            .map(|_| ())
            .map_err(|error| self.probe.run_error("PING", &error))
    }

    fn describe(&self) -> String {
        format!(
            "redis:{} (prefix {})",
            self.link.shown_url(),
            self.keys.prefix()
        )
    }
}

impl RedisStorage {
    /// Plans the batch against the placements every batch before it leaves, and writes it to
    /// the connection at once (on a cluster: keeps it for `finish_oldest_batch`). A write that
    /// fails is retried by `finish_oldest_batch`, so the batch is taken whatever the
    /// connection does.
    fn plan_and_send(&mut self, batch: &[Record]) -> Result<(), StorageError> {
        self.ownership.ensure_owned()?;
        self.load_placements()?;
        let placements = self.placements.as_mut().expect("placements loaded");
        let plan = apply::plan_batch(&self.keys, placements, batch, wall_now_ms())?;
        let renew = self
            .renewed_at
            .is_none_or(|at| at.elapsed() >= self.ownership.renewal_period());
        // Later batches are planned as if this one is applied: it will be, exactly once, or
        // the engine stops.
        placements.apply(plan.changes);
        if renew {
            self.renewed_at = Some(Instant::now());
        }
        if self.link.target().is_cluster() {
            self.cluster_next_number += 1;
            self.cluster_batches.push_back(ClusterPending {
                batch: plan.encoded,
                number: self.cluster_next_number,
                renew,
            });
            return Ok(());
        }
        self.pipeline.push(&pipeline::Request {
            keys: &self.keys,
            ownership: &self.ownership,
            batch: &plan.encoded,
            staged: plan.encoded.bytes > self.options.inline_batch_bytes_max,
            renew,
            replicas: self.replicas(),
        });
        let pipeline = &mut self.pipeline;
        if let Err(error) = self
            .link
            .call_numbered(|connection, generation| pipeline.send(connection, generation))
        {
            tracing::debug!(%error, "sending a commit to Redis failed; it is sent again");
        }
        Ok(())
    }

    fn finish_oldest_batch(&mut self) -> Result<(), StorageError> {
        self.ownership.ensure_owned()?;
        let result = if let Some(pending) = self.cluster_batches.front() {
            let request = cluster_commit::ClusterBatch {
                keys: &self.keys,
                ownership: &self.ownership,
                batch: &pending.batch,
                renew: pending.renew,
                number: pending.number,
                replicas: self.replicas(),
            };
            let result = self
                .link
                .call(|connection| cluster_commit::commit(connection, &request));
            if matches!(result, Ok(Outcome::Applied)) {
                self.cluster_batches.pop_front();
            }
            result
        } else {
            let pipeline = &mut self.pipeline;
            self.link.call_numbered(|connection, generation| {
                pipeline.finish_oldest(connection, generation)
            })
        };
        let problem = match result {
            Ok(Outcome::Applied) => return Ok(()),
            Ok(Outcome::NotReplicated { confirmed, wanted }) => {
                // Applied on the master but not yet durable as asked: not acknowledged. The
                // batch stays in flight and is sent again on a new connection (its units are
                // skipped as applied and the WAIT repeated).
                self.link.disconnect();
                return Err(StorageError::Unavailable(format!(
                    "only {confirmed} of the {wanted} Redis replicas asked for (replicas={wanted} \
                     in the URL) confirmed a commit within {} ms on {}; nothing in it is \
                     acknowledged until they do",
                    self.link.target().replica_timeout_ms,
                    self.link.shown_url(),
                )));
            }
            Ok(Outcome::Miscounted { ran, expected }) => format!(
                "the commit script on Redis at {} ran {ran} of a batch's {expected} commands \
                 (was the staging list {} deleted?); the batch may be half applied",
                self.link.shown_url(),
                staging_key(&self.keys, self.ownership.owner_id()),
            ),
            Ok(Outcome::Unexpected(reply)) => format!(
                "the commit script on Redis at {} replied {reply}, which it never does",
                self.link.shown_url()
            ),
            Err(error) => {
                if let Some(lost) = self.ownership.note_if_lost(&self.keys, &error) {
                    return Err(lost);
                }
                let error = self.link.run_error("a commit", &error);
                if matches!(error, StorageError::Unavailable(_)) {
                    // Replies still due on this connection can no longer be matched to their
                    // batches: start over on a new one, sending every unanswered batch again.
                    self.link.disconnect();
                }
                return Err(error);
            }
        };
        Err(StorageError::Failed(problem))
    }

    /// Batches planned and not yet known applied.
    fn in_flight(&self) -> usize {
        self.pipeline.len() + self.cluster_batches.len()
    }

    /// Replicas that must confirm each batch (`?replicas=N`) and the `WAIT` timeout in ms.
    fn replicas(&self) -> (u32, u64) {
        let target = self.link.target();
        (target.replicas, target.replica_timeout_ms)
    }

    /// Fences and reads every queue, keeping where each message is listed.
    fn read_everything(&mut self, doing: &str) -> Result<Snapshot, StorageError> {
        let keys = &self.keys;
        let token = self.ownership.fencing_token().to_string();
        let result = self
            .link
            .call(|connection| flatten(recover::read_snapshot(connection, keys, &token)));
        let (snapshot, placements) = match result {
            Ok(read) => read?,
            Err(error) => {
                if let Some(lost) = self.ownership.note_if_lost(&self.keys, &error) {
                    return Err(lost);
                }
                return Err(self.link.run_error(doing, &error));
            }
        };
        tracing::debug!(messages = placements.len(), "read the Redis queues");
        self.placements = Some(Placements::from_map(placements));
        Ok(snapshot)
    }

    /// Reads the placements, unless recovery already did (the engine always recovers first;
    /// a commit without recovery reads everything once).
    fn load_placements(&mut self) -> Result<(), StorageError> {
        if self.placements.is_none() {
            self.read_everything("reading the queues")?;
        }
        Ok(())
    }
}

/// Splits a recovery failure into the Redis error (for [`Link::call`], which drops a broken
/// connection) and the corruption found in good data.
fn flatten<T>(
    result: Result<T, RecoverFailure>,
) -> Result<Result<T, StorageError>, redis::RedisError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(RecoverFailure::Corrupt(error)) => Ok(Err(error)),
        Err(RecoverFailure::Redis(error)) => Err(error),
    }
}

impl Drop for RedisStorage {
    fn drop(&mut self) {
        if self.in_flight() > 0 {
            // Replies still due on the commit connection would be read as the release's.
            self.link.disconnect();
        }
        self.ownership.release(&mut self.link, &self.keys);
    }
}

/// Marks an empty prefix with [`LAYOUT_VERSION`], accepts one already marked with it, moves
/// layout-2 data to this layout (on one Redis server, when no layout-2 server owns it), and
/// refuses data written in any other layout (reading it as this one would lose messages).
fn check_layout(link: &mut Link, keys: &Keys) -> Result<(), StorageError> {
    let layout_key = keys.layout();
    let layout: Option<String> = link
        .call(|connection| redis::cmd("GET").arg(&layout_key).query(connection))
        .map_err(|error| link.open_error(&error))?;
    let version = match layout {
        Some(text) => text.parse::<u32>().map_err(|_| {
            StorageError::Corrupt(format!(
                "{layout_key} on Redis at {} holds {text:?}, not a layout version",
                link.shown_url()
            ))
        })?,
        None => match older_layout(link, keys)? {
            Some(2) => return move_layout_2(link, keys),
            Some(version) => version,
            None => {
                link.call(|connection| {
                    redis::cmd("SET")
                        .arg(&layout_key)
                        .arg(LAYOUT_VERSION)
                        .query::<()>(connection)
                })
                .map_err(|error| link.open_error(&error))?;
                return Ok(());
            }
        },
    };
    if version == LAYOUT_VERSION {
        return Ok(());
    }
    Err(StorageError::Failed(format!(
        "the Redis prefix {:?} at {} holds queues in switchboard's key layout {version}, and \
         this build reads layout {LAYOUT_VERSION}. Drain those queues with the build that wrote \
         them, or start this one with another prefix (or on an empty Redis database).",
        keys.prefix(),
        link.shown_url(),
    )))
}

/// The layout of data written before layout 3 kept its prefix-wide keys under a hash tag:
/// 2 when marked so, 1 when queues are listed without a mark, `None` when there is nothing.
fn older_layout(link: &mut Link, keys: &Keys) -> Result<Option<u32>, StorageError> {
    let (layout_key, queues_key) = (keys.layout_2("layout"), keys.layout_2("queues"));
    let (layout, queues): (Option<String>, u64) = link
        .call(|connection| {
            let layout = redis::cmd("GET").arg(&layout_key).query(connection)?;
            let queues = redis::cmd("SCARD").arg(&queues_key).query(connection)?;
            Ok((layout, queues))
        })
        .map_err(|error| link.open_error(&error))?;
    Ok(match layout.as_deref() {
        // Marked by `move_layout_2`: the data was moved to layout 3 (whose own mark is missing
        // only if someone deleted it).
        Some("3") => None,
        Some(text) => Some(text.parse::<u32>().map_err(|_| {
            StorageError::Corrupt(format!(
                "{layout_key} on Redis at {} holds {text:?}, not a layout version",
                link.shown_url()
            ))
        })?),
        None if queues > 0 => Some(1),
        None => None,
    })
}

/// Moves layout-2 data to layout 3 in one script, unless a layout-2 server still owns it.
fn move_layout_2(link: &mut Link, keys: &Keys) -> Result<(), StorageError> {
    let old_owner = keys.layout_2("owner");
    let shown_url = link.shown_url().to_string();
    let refuse = |why: String| {
        StorageError::Failed(format!(
            "the Redis prefix {:?} at {shown_url} holds queues in switchboard's key layout 2; \
             {why}",
            keys.prefix(),
        ))
    };
    if link.target().is_cluster() {
        return Err(refuse(
            "layout 2 was never written to a Redis Cluster, so this data is damaged or not \
             switchboard's: give this server another prefix"
                .into(),
        ));
    }
    let holder: Option<String> = link
        .call(|connection| redis::cmd("GET").arg(&old_owner).query(connection))
        .map_err(|error| link.open_error(&error))?;
    if let Some(holder) = holder {
        return Err(refuse(format!(
            "an older switchboard server ({holder}) still owns it. Stop that server, then start \
             this one: it moves the data to layout {LAYOUT_VERSION} by itself"
        )));
    }
    let moved: i64 = link
        .call(|connection| {
            scripts::MOVE_LAYOUT_2
                .key(keys.layout_2("queues"))
                .key(keys.layout_2("layout"))
                .key(keys.layout_2("fence"))
                .key(keys.layout_2("applied"))
                .key(keys.queues())
                .key(keys.layout())
                .invoke(connection)
        })
        .map_err(|error| link.open_error(&error))?;
    tracing::info!(
        prefix = keys.prefix(),
        queues = moved,
        "moved the Redis data from key layout 2 to layout {LAYOUT_VERSION}"
    );
    Ok(())
}

fn validate_prefix(prefix: &str) -> Result<(), StorageError> {
    if prefix.is_empty() || prefix.contains(['{', '}']) {
        return Err(StorageError::Failed(format!(
            "invalid Redis key prefix {prefix:?}: it must be non-empty and must not contain \
             '{{' or '}}' (queue names are the hash tags), e.g. {PREFIX_DEFAULT:?}"
        )));
    }
    Ok(())
}

fn wall_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
