//! In-memory state that changes on hot paths (sync code, under a `parking_lot` lock) and is
//! saved to an [`EngineLog`] by a background writer, so those paths never wait for storage.
//!
//! The state notes each change in its [`Pending`]; the writer takes what is pending, appends
//! it as one group (one engine commit for many changes), and wakes whoever waits for it
//! ([`Ticket`]). Once the log holds more than [`LOG_GROWTH_FACTOR`] times the state's last
//! snapshot (and at least the store's floor), the writer compacts it: it reads the whole log,
//! writes a snapshot of the state *taken under the same lock as the pending changes are
//! cleared*, and acks what it read. So the log stays bounded by the state, which is bounded.
//!
//! When a write fails, or the writer falls behind by [`PENDING_CHANGES_MAX`] changes, the
//! pending changes are dropped and the next round writes a whole snapshot instead: memory
//! stays bounded and nothing is lost but what a crash in between would lose.
//!
//! What a `kill -9` loses: the changes of the round in flight (a few milliseconds of them).
//! A graceful stop writes everything before the engine's last flush (see [`super::Writers`]).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use switchboard_engine::EngineError;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::log::EngineLog;

/// Changes kept for the writer at most; past it they are dropped for a whole snapshot.
pub const PENDING_CHANGES_MAX: usize = 100_000;
/// The log is compacted once it holds this many times the changes of the last snapshot.
pub const LOG_GROWTH_FACTOR: usize = 2;
/// Wait after a failed write before the writer tries again.
const WRITE_RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// State saved by a writer.
pub trait Journaled: Send + 'static {
    /// One change, as the log keeps it.
    type Change: Serialize + Send + Sync + 'static;

    /// The changes noted since the writer last took them.
    fn pending(&mut self) -> &mut Pending<Self::Change>;

    /// Changes kept in a coalesced form of the state's own (the latest value of each
    /// round-robin cursor, say), taken with the pending ones. None by default.
    fn take_coalesced(&mut self) -> Vec<Self::Change> {
        Vec::new()
    }

    /// The changes that rebuild the whole state as it is now.
    fn snapshot(&self) -> Vec<Self::Change>;
}

/// Changes noted by the state for its writer. Inert (keeps nothing) until a writer is
/// attached, so state that is never saved (unit tests) costs nothing.
pub struct Pending<C> {
    changes: Vec<C>,
    /// Changes noted since the writer was attached, taken or not.
    noted: u64,
    /// Changes were dropped: the next round writes a whole snapshot.
    snapshot_needed: bool,
    writer: Option<Attached>,
}

struct Attached {
    wake: Arc<Notify>,
    written: watch::Receiver<u64>,
}

impl<C> Default for Pending<C> {
    fn default() -> Self {
        Self {
            changes: Vec::new(),
            noted: 0,
            snapshot_needed: false,
            writer: None,
        }
    }
}

impl<C> Pending<C> {
    /// Notes a change for the writer; `change` is made only when a writer is attached, so
    /// state that is never saved copies nothing on its hot path.
    pub fn push(&mut self, change: impl FnOnce() -> C) {
        if self.writer.is_none() {
            return;
        }
        if self.changes.len() >= PENDING_CHANGES_MAX {
            self.need_snapshot();
        } else if !self.snapshot_needed {
            self.changes.push(change());
        }
        self.touch();
    }

    /// Notes that coalesced state changed (see [`Journaled::take_coalesced`]).
    pub fn touch(&mut self) {
        if let Some(writer) = &self.writer {
            self.noted += 1;
            writer.wake.notify_one();
        }
    }

    /// Drops the pending changes: the next round writes a whole snapshot.
    pub fn need_snapshot(&mut self) {
        if let Some(writer) = &self.writer {
            self.changes = Vec::new();
            self.snapshot_needed = true;
            self.noted += 1;
            writer.wake.notify_one();
        }
    }

    /// What to wait on for the changes noted so far to be durable; `None` when no writer is
    /// attached (nothing will be saved).
    pub fn ticket(&self) -> Option<Ticket> {
        self.writer.as_ref().map(|writer| Ticket {
            noted: self.noted,
            written: writer.written.clone(),
        })
    }
}

/// Waits until the changes noted before it was taken are durable.
pub struct Ticket {
    noted: u64,
    written: watch::Receiver<u64>,
}

impl Ticket {
    /// Waits up to `limit`; false when the changes are not durable by then (storage down, or
    /// the writer stopped).
    pub async fn wait(mut self, limit: Duration) -> bool {
        let noted = self.noted;
        let written = self.written.wait_for(|written| *written >= noted);
        matches!(tokio::time::timeout(limit, written).await, Ok(Ok(_)))
    }
}

/// How a store's writer behaves.
pub struct WriterSettings {
    /// For log messages: which store this is.
    pub name: &'static str,
    /// The log is never compacted below this many changes.
    pub compact_floor: usize,
    /// Least time between two rounds: changes made meanwhile share one write.
    pub round_interval: Duration,
}

/// Attaches a writer to `state` and starts it; it stops, after writing what is pending, when
/// `shutdown` turns true. `logged` is how many changes the log holds now (its last snapshot).
pub fn spawn<S: Journaled>(
    log: EngineLog,
    state: Arc<Mutex<S>>,
    settings: WriterSettings,
    logged: usize,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let wake = Arc::new(Notify::new());
    let (written_sender, written) = watch::channel(0);
    *state.lock().pending() = Pending {
        writer: Some(Attached {
            wake: wake.clone(),
            written,
        }),
        ..Pending::default()
    };
    let writer = Writer {
        log,
        state,
        settings,
        logged,
        snapshot_logged: logged,
        written: written_sender,
    };
    tokio::spawn(writer.run(wake, shutdown))
}

struct Writer<S> {
    log: EngineLog,
    state: Arc<Mutex<S>>,
    settings: WriterSettings,
    /// Changes the log holds.
    logged: usize,
    /// Changes written by the last compaction.
    snapshot_logged: usize,
    written: watch::Sender<u64>,
}

impl<S: Journaled> Writer<S> {
    async fn run(mut self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let stopping = tokio::select! {
                _ = wake.notified() => false,
                stop = shutdown.wait_for(|stop| *stop) => {
                    let _ = stop; // stopped, or nobody can say stop any more: write and end
                    true
                }
            };
            if let Err(error) = self.round().await {
                tracing::warn!(store = self.settings.name, %error, "could not save state; retrying with a whole snapshot");
                self.state.lock().pending().need_snapshot();
                if stopping {
                    return;
                }
                tokio::time::sleep(WRITE_RETRY_INTERVAL).await;
                wake.notify_one();
                continue;
            }
            if stopping {
                return;
            }
            tokio::time::sleep(self.settings.round_interval).await;
        }
    }

    /// Writes what is pending, or a snapshot when one is due.
    async fn round(&mut self) -> Result<(), EngineError> {
        let (changes, noted, snapshot_needed) = {
            let mut state = self.state.lock();
            let mut changes = std::mem::take(&mut state.pending().changes);
            changes.extend(state.take_coalesced());
            let pending = state.pending();
            (changes, pending.noted, pending.snapshot_needed)
        };
        let limit = self
            .settings
            .compact_floor
            .max(self.snapshot_logged.saturating_mul(LOG_GROWTH_FACTOR));
        if snapshot_needed || self.logged + changes.len() > limit {
            return self.compact().await;
        }
        if !changes.is_empty() {
            self.log.append(&changes).await?;
            self.logged += changes.len();
        }
        self.written.send_replace(noted);
        Ok(())
    }

    /// Replaces the log by a snapshot of the state. The changes taken by the round that
    /// called it are in the snapshot.
    async fn compact(&mut self) -> Result<(), EngineError> {
        let (_, read) = self.log.replay::<serde::de::IgnoredAny>().await?;
        let (snapshot, noted) = {
            let mut state = self.state.lock();
            let snapshot = state.snapshot();
            state.take_coalesced();
            let pending = state.pending();
            pending.changes = Vec::new();
            pending.snapshot_needed = false;
            (snapshot, pending.noted)
        };
        self.log.compact(read, &snapshot).await?;
        tracing::debug!(
            store = self.settings.name,
            changes = snapshot.len(),
            "log compacted"
        );
        self.logged = snapshot.len();
        self.snapshot_logged = snapshot.len();
        self.written.send_replace(noted);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use switchboard_engine::{Engine, EngineOptions, MemoryStorage, SystemClock};

    use super::*;

    /// A state that is one number; each change is its new value.
    #[derive(Default)]
    struct Counter {
        value: u64,
        pending: Pending<u64>,
    }

    impl Journaled for Counter {
        type Change = u64;

        fn pending(&mut self) -> &mut Pending<u64> {
            &mut self.pending
        }

        fn snapshot(&self) -> Vec<u64> {
            vec![self.value]
        }
    }

    /// How long a test waits for a write it asked for.
    const WRITE_WAIT: Duration = Duration::from_secs(10);

    /// However many changes are written, the log holds at most the floor's worth: it is
    /// replaced by a snapshot as it grows, and reads back to the latest value.
    #[tokio::test]
    async fn the_log_is_compacted_once_it_outgrows_its_floor() {
        let engine = Engine::open(
            Box::new(MemoryStorage::new()),
            Arc::new(SystemClock),
            EngineOptions::default(),
        )
        .unwrap();
        let log = EngineLog::open(engine, "_test_journal", 0).await.unwrap();
        let state = Arc::new(Mutex::new(Counter::default()));
        let (stop, stopped) = watch::channel(false);
        let settings = WriterSettings {
            name: "test",
            compact_floor: 10,
            round_interval: Duration::ZERO,
        };
        let writer = spawn(log.clone(), state.clone(), settings, 0, stopped);
        for value in 1..=100 {
            let ticket = {
                let mut counter = state.lock();
                counter.value = value;
                counter.pending.push(|| value);
                counter.pending.ticket().expect("a writer is attached")
            };
            assert!(ticket.wait(WRITE_WAIT).await, "change {value} written");
        }
        stop.send_replace(true);
        writer.await.unwrap();
        let (records, _) = log.replay::<u64>().await.unwrap();
        assert!(records.len() <= 10, "{records:?}");
        assert_eq!(records.last(), Some(&100));
    }

    #[test]
    fn without_a_writer_nothing_is_kept() {
        let mut pending = Pending::default();
        pending.push(|| 1u64);
        assert!(pending.changes.is_empty());
        assert!(pending.ticket().is_none());
    }
}
