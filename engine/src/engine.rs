//! The public, async engine: operations apply to the in-memory [`State`] under one short lock,
//! their records join the batch the committer will make durable next, and the caller's future
//! resolves only once that batch is durable. Nothing is acknowledged, and no lease handed out,
//! before the records it depends on are durable: a lease's records always commit in a batch at
//! or after the batch of the enqueue it delivers.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tokio::sync::{watch, Notify};

use crate::clock::{Clock, UnixMillis};
use crate::committer;
use crate::config::{QueueConfig, PENDING_RECORDS_MAX};
use crate::error::{EngineError, Result};
use crate::message::{
    DeadLetter, Delivery, Enqueued, LeaseToken, MessageId, MessageState, NewMessage, StoredMessage,
};
use crate::metrics::{CommitMetrics, CommitStats};
use crate::state::{QueueStats, State};
use crate::storage::{Reachability, Storage};
use crate::wal::Record;

/// How often the background timer settles due leases, delays and expiries, in milliseconds.
pub const TICK_MS_DEFAULT: u64 = 10;

/// Choices made when opening an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Seed for lease tokens (fixed in simulations so runs replay exactly).
    pub token_seed: u64,
    /// Period of the background timer; `None` runs no timer (tests call [`Engine::tick`]).
    pub tick_interval: Option<Duration>,
    /// When true, [`Engine::lease`] and [`Engine::lease_wait`] return only once the lease is
    /// durable. Off by default: a lease is handed out as soon as the leased messages' enqueues
    /// are durable, and its own record is written behind, in order, with the next group
    /// commit. An ack always waits for its own commit,
    /// which includes the lease's, so nothing acknowledged depends on this. What a crash
    /// between the two loses is the lease itself: the message is ready again after restart
    /// with that delivery not counted in its attempts. Waiting adds one commit round trip to
    /// every delivery, a third of a durable enqueue → lease → ack cycle.
    pub durable_leases: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            token_seed: crate::clock::SystemClock.now_ms() ^ 0x5EED_5EED_5EED_5EED,
            tick_interval: Some(Duration::from_millis(TICK_MS_DEFAULT)),
            durable_leases: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Running,
    Unavailable(String),
    Poisoned(Arc<str>),
}

pub(crate) struct Inner {
    pub state: State,
    /// Records written since the committer last took a batch.
    pub pending: Vec<Record>,
    /// Number of the batch `pending` will become (batches are numbered from 1).
    pub filling: u64,
    pub status: Status,
    pub shutdown: bool,
    /// For each batch not yet known durable that holds enqueues: its number and the first
    /// message id enqueued in it, oldest first. Ids are minted in increasing order, so a
    /// message's enqueue is durable once no entry here has a first id at or below its id;
    /// leases use it to hand out only messages whose enqueue is durable.
    pub enqueue_batches: VecDeque<(u64, MessageId)>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    /// Every batch up to this number is durable.
    pub durable: u64,
    pub poisoned: Option<Arc<str>>,
}

pub(crate) struct Shared {
    pub inner: Mutex<Inner>,
    pub wake_committer: Condvar,
    pub progress: watch::Sender<Progress>,
    pub metrics: CommitMetrics,
    clock: Arc<dyn Clock>,
    waiters: Mutex<HashMap<Arc<str>, Arc<Notify>>>,
    storage_name: String,
    /// The backend's own view of whether its store is reachable (see [`Reachability`]).
    reachability: Option<Reachability>,
    durable_leases: bool,
}

/// Stops the background threads when the last [`Engine`] handle goes away.
struct Threads {
    shared: Arc<Shared>,
    committer: Option<JoinHandle<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.shared.inner.lock().shutdown = true;
        self.shared.wake_committer.notify_all();
        if let Some(ticker) = self.ticker.take() {
            ticker.thread().unpark();
            let _ = ticker.join();
        }
        if let Some(committer) = self.committer.take() {
            let _ = committer.join();
        }
    }
}

/// The queue engine. Cheap to clone; all clones share one state. Dropping the last clone
/// commits what is pending and stops the background threads.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    _threads: Arc<Threads>,
}

/// The engine's own health and work, for monitoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineStats {
    /// The storage backend's description.
    pub storage: String,
    /// `None` when storage is working; otherwise why writes are refused or waiting.
    pub storage_problem: Option<String>,
    /// True when a storage failure stopped the engine for good.
    pub poisoned: bool,
    /// Records waiting for the next commit.
    pub pending_records: usize,
    /// The committer's work.
    pub commits: CommitStats,
    /// Live messages across all queues.
    pub messages: usize,
}

impl Engine {
    /// Recovers the state from `storage` and starts the committer (and the timer, unless
    /// `options.tick_interval` is `None`).
    pub fn open(
        mut storage: Box<dyn Storage>,
        clock: Arc<dyn Clock>,
        options: EngineOptions,
    ) -> Result<Engine> {
        let storage_name = storage.describe();
        let reachability = storage.reachability();
        let snapshot = storage.recover().map_err(|error| {
            EngineError::Poisoned(format!("recovery from {storage_name} failed: {error}"))
        })?;
        let state = State::restore(snapshot, clock.now_ms(), options.token_seed);
        let (progress, _) = watch::channel(Progress::default());
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                state,
                pending: Vec::new(),
                filling: 1,
                status: Status::Running,
                shutdown: false,
                enqueue_batches: VecDeque::new(),
            }),
            wake_committer: Condvar::new(),
            progress,
            metrics: CommitMetrics::default(),
            clock,
            waiters: Mutex::new(HashMap::new()),
            storage_name,
            reachability,
            durable_leases: options.durable_leases,
        });
        let committer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("switchboard-committer".into())
                .spawn(move || committer::run(shared, storage))
                .map_err(|error| {
                    EngineError::Poisoned(format!("cannot start committer: {error}"))
                })?
        };
        let ticker = match options.tick_interval {
            None => None,
            Some(period) => {
                let weak = Arc::downgrade(&shared);
                Some(
                    std::thread::Builder::new()
                        .name("switchboard-timer".into())
                        .spawn(move || run_ticker(weak, period))
                        .map_err(|error| {
                            EngineError::Poisoned(format!("cannot start timer: {error}"))
                        })?,
                )
            }
        };
        let threads = Threads {
            shared: shared.clone(),
            committer: Some(committer),
            ticker,
        };
        Ok(Engine {
            shared,
            _threads: Arc::new(threads),
        })
    }

    /// The engine's clock reading now.
    pub fn now_ms(&self) -> UnixMillis {
        self.shared.clock.now_ms()
    }

    /// Applies `op` to the state and waits until its records are durable.
    async fn write<T>(
        &self,
        op: impl FnOnce(&mut State, UnixMillis, &mut Vec<Record>) -> Result<T>,
    ) -> Result<T> {
        let mut progress = self.shared.progress.subscribe();
        let (value, batch) = self.apply(&mut progress, op).await?;
        if let Some(batch) = batch {
            wait_durable(&mut progress, batch).await?;
        }
        Ok(value)
    }

    /// Applies `op` to the state (after waiting out backpressure) without waiting for
    /// durability; returns its value and the batch its records joined, if it wrote any.
    async fn apply<T>(
        &self,
        progress: &mut watch::Receiver<Progress>,
        op: impl FnOnce(&mut State, UnixMillis, &mut Vec<Record>) -> Result<T>,
    ) -> Result<(T, Option<u64>)> {
        loop {
            let full = {
                let inner = self.shared.inner.lock();
                check_status(&inner, self.shared.reachability.as_ref())?;
                inner.pending.len() >= PENDING_RECORDS_MAX
            };
            if !full {
                break;
            }
            // Backpressure: wait for the committer to take a batch before adding more.
            if progress.changed().await.is_err() {
                return Err(EngineError::ShutDown);
            }
        }
        let mut guard = self.shared.inner.lock();
        let inner = &mut *guard;
        check_status(inner, self.shared.reachability.as_ref())?;
        let before = inner.pending.len();
        let result = op(
            &mut inner.state,
            self.shared.clock.now_ms(),
            &mut inner.pending,
        );
        // A refused operation may still have settled due work first: commit that too.
        let wrote = inner.pending.len() > before;
        if wrote {
            let filling = inner.filling;
            if inner.enqueue_batches.back().map(|(batch, _)| *batch) != Some(filling) {
                let first_enqueued =
                    inner.pending[before..]
                        .iter()
                        .find_map(|record| match record {
                            Record::Enqueued { message, .. } => Some(message.id),
                            _ => None,
                        });
                if let Some(id) = first_enqueued {
                    let durable = progress.borrow().durable;
                    while inner
                        .enqueue_batches
                        .front()
                        .is_some_and(|(batch, _)| *batch <= durable)
                    {
                        inner.enqueue_batches.pop_front();
                    }
                    inner.enqueue_batches.push_back((filling, id));
                }
            }
            self.shared.wake_committer.notify_one();
        }
        Ok((result?, wrote.then_some(inner.filling)))
    }

    /// Leases, waiting for durability when [`EngineOptions::durable_leases`] asks for it. If
    /// the returned future is dropped during that wait (a caller that stopped waiting), the
    /// messages it leased are released at once with their attempt uncounted, instead of
    /// staying hidden until their lease runs out.
    async fn lease_cancel_safe(
        &self,
        queue: &str,
        max: usize,
        lease_ms: Option<u64>,
    ) -> Result<Vec<Delivery>> {
        let mut progress = self.shared.progress.subscribe();
        let (deliveries, batch) = self
            .apply(&mut progress, |state, now, out| {
                state.lease(queue, max, lease_ms, now, out)
            })
            .await?;
        let wait_for = if self.shared.durable_leases {
            batch
        } else {
            self.enqueue_durable_batch(&deliveries, &progress)
        };
        let Some(batch) = wait_for else {
            return Ok(deliveries);
        };
        let mut guard = ReleaseOnDrop {
            engine: self,
            queue,
            leases: deliveries.iter().map(|d| (d.message.id, d.token)).collect(),
        };
        wait_durable(&mut progress, batch).await?;
        guard.leases.clear();
        Ok(deliveries)
    }

    /// The batch to wait for before `deliveries` may be handed out: the newest batch not yet
    /// durable that enqueued one of them (a consumer never sees a message whose enqueue a
    /// crash could still undo). `None` when every one of them is durable already.
    fn enqueue_durable_batch(
        &self,
        deliveries: &[Delivery],
        progress: &watch::Receiver<Progress>,
    ) -> Option<u64> {
        let newest = deliveries.iter().map(|d| d.message.id).max()?;
        let inner = self.shared.inner.lock();
        let (batch, _) = inner
            .enqueue_batches
            .iter()
            .rev()
            .find(|(_, first)| *first <= newest)?;
        (*batch > progress.borrow().durable).then_some(*batch)
    }

    /// Reads the state under the lock, after everything written before is durable (so a read
    /// never shows what a crash could still undo).
    async fn read<T>(&self, op: impl FnOnce(&State) -> T) -> Result<T> {
        let mut progress = self.shared.progress.subscribe();
        let (value, batch) = {
            let inner = self.shared.inner.lock();
            let batch = (!inner.pending.is_empty()).then_some(inner.filling);
            (op(&inner.state), batch)
        };
        if let Some(batch) = batch {
            wait_durable(&mut progress, batch).await?;
        }
        Ok(value)
    }

    fn notify_queue(&self, queue: &str) {
        if let Some(notify) = self.shared.waiters.lock().get(queue) {
            notify.notify_waiters();
        }
    }

    fn notify_for(&self, queue: &str) -> Arc<Notify> {
        self.shared
            .waiters
            .lock()
            .entry(Arc::from(queue))
            .or_default()
            .clone()
    }

    /// Creates `queue` with `config`, or reconfigures it.
    pub async fn configure_queue(&self, queue: &str, config: QueueConfig) -> Result<()> {
        self.write(|state, _, out| state.configure(queue, config, out))
            .await
    }

    /// Enqueues one message; resolves once it is durable.
    pub async fn enqueue(&self, queue: &str, message: NewMessage) -> Result<Enqueued> {
        let mut results = self.enqueue_batch(queue, vec![message]).await?;
        Ok(results.pop().expect("one result per message"))
    }

    /// Enqueues a batch, all or nothing; resolves once it is durable.
    pub async fn enqueue_batch(
        &self,
        queue: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Enqueued>> {
        let results = self
            .write(|state, now, out| state.enqueue(queue, messages, now, out))
            .await?;
        self.notify_queue(queue);
        Ok(results)
    }

    /// Leases up to `max` ready messages for `lease_ms` (the queue's default when `None`).
    /// Returns at once, possibly with nothing. The lease is durable on return only with
    /// [`EngineOptions::durable_leases`]; otherwise it is written behind (see there).
    pub async fn lease(
        &self,
        queue: &str,
        max: usize,
        lease_ms: Option<u64>,
    ) -> Result<Vec<Delivery>> {
        self.lease_cancel_safe(queue, max, lease_ms).await
    }

    /// Like [`Engine::lease`], but waits up to `wait` for a message to become ready (long poll).
    /// Safe to cancel: dropping the future never leaves messages leased to nobody.
    pub async fn lease_wait(
        &self,
        queue: &str,
        max: usize,
        lease_ms: Option<u64>,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        let notify = self.notify_for(queue);
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let deliveries = self.lease_cancel_safe(queue, max, lease_ms).await?;
            if !deliveries.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(deliveries);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Acknowledges a delivery; the message is deleted.
    pub async fn ack(&self, id: MessageId, token: LeaseToken) -> Result<()> {
        self.write(|state, now, out| state.ack(id, token, now, out))
            .await
    }

    /// Acknowledges many deliveries in one commit; one result per item, in order.
    pub async fn ack_batch(&self, items: &[(MessageId, LeaseToken)]) -> Result<Vec<Result<()>>> {
        check_batch_len(items.len())?;
        self.write(|state, now, out| {
            Ok(items
                .iter()
                .map(|(id, token)| state.ack(*id, *token, now, out))
                .collect())
        })
        .await
    }

    /// Gives a delivery back for a retry after `delay_ms` (the queue's backoff when `None`).
    pub async fn nack(
        &self,
        id: MessageId,
        token: LeaseToken,
        delay_ms: Option<u64>,
    ) -> Result<()> {
        let queue = self
            .write(|state, now, out| {
                state.nack(id, token, delay_ms, now, out)?;
                Ok(state.message(id).map(|(m, _)| m.queue))
            })
            .await?;
        if let Some(queue) = queue {
            self.notify_queue(&queue);
        }
        Ok(())
    }

    /// Gives many deliveries back in one commit; one result per item, in order.
    pub async fn nack_batch(
        &self,
        items: &[(MessageId, LeaseToken)],
        delay_ms: Option<u64>,
    ) -> Result<Vec<Result<()>>> {
        check_batch_len(items.len())?;
        let (results, queues) = self
            .write(|state, now, out| {
                let results: Vec<Result<()>> = items
                    .iter()
                    .map(|(id, token)| state.nack(*id, *token, delay_ms, now, out))
                    .collect();
                let mut queues: Vec<Arc<str>> = items
                    .iter()
                    .filter_map(|(id, _)| state.message(*id).map(|(m, _)| m.queue))
                    .collect();
                queues.dedup();
                Ok((results, queues))
            })
            .await?;
        queues.iter().for_each(|queue| self.notify_queue(queue));
        Ok(results)
    }

    /// Extends a lease to `lease_ms` from now; returns the new deadline.
    pub async fn extend(
        &self,
        id: MessageId,
        token: LeaseToken,
        lease_ms: u64,
    ) -> Result<UnixMillis> {
        self.write(|state, now, out| state.extend(id, token, lease_ms, now, out))
            .await
    }

    /// Dead letters of `queue`, oldest first, at most `limit`.
    pub async fn dead_letters(&self, queue: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        self.read(|state| state.dead_letters(queue, limit)).await
    }

    /// Sends dead letters (all, or those named) back to ready; returns how many.
    pub async fn redrive(&self, queue: &str, ids: Option<&[MessageId]>) -> Result<usize> {
        let moved = self
            .write(|state, now, out| Ok(state.redrive(queue, ids, now, out)))
            .await?;
        if moved > 0 {
            self.notify_queue(queue);
        }
        Ok(moved)
    }

    /// Deletes dead letters (all, or those named); returns how many.
    pub async fn purge_dead_letters(
        &self,
        queue: &str,
        ids: Option<&[MessageId]>,
    ) -> Result<usize> {
        self.write(|state, _, out| Ok(state.purge_dead_letters(queue, ids, out)))
            .await
    }

    /// A message and where it is, if it is still held.
    pub async fn message(&self, id: MessageId) -> Result<Option<(StoredMessage, MessageState)>> {
        self.read(|state| state.message(id)).await
    }

    /// Up to `limit` ready messages of `queue` in delivery order, without leasing them.
    pub async fn peek(&self, queue: &str, limit: usize) -> Result<Vec<StoredMessage>> {
        self.read(|state| state.peek(queue, limit)).await
    }

    /// Deletes every message of `queue` (ready, delayed, leased, dead); returns how many.
    pub async fn purge_queue(&self, queue: &str) -> Result<usize> {
        self.write(|state, _, out| Ok(state.purge_queue(queue, out)))
            .await
    }

    /// The current lease of a message (queue, token, deadline), read at once without waiting
    /// for pending commits: lets a server act on a message by id for a consumer it has
    /// already authorised, without keeping tokens itself.
    pub fn current_lease(&self, id: MessageId) -> Option<(Arc<str>, LeaseToken, UnixMillis)> {
        self.shared.inner.lock().state.current_lease(id)
    }

    /// Up to `limit` leased messages of `queue` (id, lease deadline), soonest deadline first,
    /// read at once: lets a consumer be told what it holds and has not settled yet.
    pub fn leased(&self, queue: &str, limit: usize) -> Vec<(MessageId, UnixMillis)> {
        self.shared.inner.lock().state.leased(queue, limit)
    }

    /// One queue's numbers, if it exists.
    pub fn queue_stats(&self, queue: &str) -> Option<QueueStats> {
        self.shared.inner.lock().state.stats(queue)
    }

    /// Every queue's numbers, by name.
    pub fn all_queue_stats(&self) -> Vec<QueueStats> {
        let inner = self.shared.inner.lock();
        inner
            .state
            .queue_names()
            .iter()
            .filter_map(|name| inner.state.stats(name))
            .collect()
    }

    /// The engine's own health and the committer's work.
    pub fn engine_stats(&self) -> EngineStats {
        let inner = self.shared.inner.lock();
        let (storage_problem, poisoned) = match &inner.status {
            Status::Running => match self.shared.reachability.as_ref() {
                None => (None, false),
                Some(reachability) => match reachability.stopped() {
                    Some(reason) => (Some(reason), true),
                    None => (reachability.problem(), false),
                },
            },
            Status::Unavailable(text) => (Some(text.clone()), false),
            Status::Poisoned(text) => (Some(text.to_string()), true),
        };
        EngineStats {
            storage: self.shared.storage_name.clone(),
            storage_problem,
            poisoned,
            pending_records: inner.pending.len(),
            commits: self.shared.metrics.snapshot(),
            messages: inner.state.message_count(),
        }
    }

    /// Settles everything due by now in every queue (lease timeouts, delays, expiries) and wakes
    /// waiting consumers. The background timer calls this; tests with a manual clock call it.
    pub fn tick(&self) {
        tick_shared(&self.shared);
    }

    /// Waits until everything written so far is durable: the batch filling, or else the last
    /// one taken (which may still be in flight, as may the ones before it).
    pub async fn flush(&self) -> Result<()> {
        let mut progress = self.shared.progress.subscribe();
        let batch = {
            let inner = self.shared.inner.lock();
            if inner.pending.is_empty() {
                inner.filling - 1
            } else {
                inner.filling
            }
        };
        wait_durable(&mut progress, batch).await
    }

    /// Checks the structural invariants of the state (a failure is an engine bug).
    pub fn check_invariants(&self) {
        self.shared.inner.lock().state.check_invariants();
    }
}

/// Releases the leases of a cancelled [`Engine::lease_cancel_safe`].
struct ReleaseOnDrop<'a> {
    engine: &'a Engine,
    queue: &'a str,
    leases: Vec<(MessageId, LeaseToken)>,
}

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        if self.leases.is_empty() {
            return;
        }
        {
            let mut guard = self.engine.shared.inner.lock();
            let inner = &mut *guard;
            // While storage is unavailable the release still joins the retried batches; after
            // a poisoning nothing more is written.
            if matches!(inner.status, Status::Poisoned(_)) {
                return;
            }
            let now = self.engine.shared.clock.now_ms();
            for (id, token) in self.leases.drain(..) {
                // A lease that already ended or was acked has nothing to release.
                let _ = inner.state.release(id, token, now, &mut inner.pending);
            }
            self.engine.shared.wake_committer.notify_one();
        }
        self.engine.notify_queue(self.queue);
    }
}

/// Refuses a new write unless the engine runs and its storage is not known unreachable (by a
/// failed commit, or by the backend's own background work while nothing is committed).
fn check_status(inner: &Inner, reachability: Option<&Reachability>) -> Result<()> {
    if inner.shutdown {
        return Err(EngineError::ShutDown);
    }
    match &inner.status {
        Status::Running => {
            if let Some(reason) = reachability.and_then(Reachability::stopped) {
                return Err(EngineError::Poisoned(reason));
            }
            match reachability.and_then(Reachability::problem) {
                None => Ok(()),
                Some(problem) => Err(EngineError::StorageUnavailable(problem)),
            }
        }
        Status::Unavailable(text) => Err(EngineError::StorageUnavailable(text.clone())),
        Status::Poisoned(text) => Err(EngineError::Poisoned(text.to_string())),
    }
}

fn check_batch_len(len: usize) -> Result<()> {
    if len > crate::config::BATCH_MESSAGES_MAX {
        return Err(EngineError::InvalidArgument(format!(
            "batch of {len} items, the limit is {}",
            crate::config::BATCH_MESSAGES_MAX
        )));
    }
    Ok(())
}

async fn wait_durable(progress: &mut watch::Receiver<Progress>, batch: u64) -> Result<()> {
    let seen = progress
        .wait_for(|p| p.durable >= batch || p.poisoned.is_some())
        .await
        .map_err(|_| EngineError::ShutDown)?;
    if seen.durable >= batch {
        Ok(())
    } else {
        Err(EngineError::Poisoned(
            seen.poisoned.as_deref().unwrap_or("unknown").to_string(),
        ))
    }
}

fn run_ticker(shared: std::sync::Weak<Shared>, period: Duration) {
    loop {
        std::thread::park_timeout(period);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.inner.lock().shutdown {
            return;
        }
        tick_shared(&shared);
    }
}

fn tick_shared(shared: &Shared) {
    let woken = {
        let mut guard = shared.inner.lock();
        let inner = &mut *guard;
        if inner.status != Status::Running {
            return;
        }
        let before = inner.pending.len();
        let woken = inner
            .state
            .settle_all(shared.clock.now_ms(), &mut inner.pending);
        if inner.pending.len() > before {
            shared.wake_committer.notify_one();
        }
        woken
    };
    let waiters = shared.waiters.lock();
    for queue in woken {
        if let Some(notify) = waiters.get(&queue) {
            notify.notify_waiters();
        }
    }
}
