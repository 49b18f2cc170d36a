//! Proves the durability contract with injected storage faults: for every commit N of a
//! workload, failing commit N poisons the engine (fail-stop), and reopening from storage loses
//! nothing whose operation returned Ok, while a failed batch appears entirely or not at all.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use switchboard_engine::{
    Engine, EngineError, FaultPlan, FaultyStorage, ManualClock, MemoryStorage, NewMessage,
};

/// What the workload was told: the ground truth a recovery is checked against.
#[derive(Default)]
struct Outcomes {
    /// Tags whose enqueue returned Ok.
    enqueued: BTreeSet<String>,
    /// Tags whose ack returned Ok.
    acked: BTreeSet<String>,
    /// Tags whose ack failed: the ack may or may not have been applied.
    ack_uncertain: BTreeSet<String>,
    /// Batches whose enqueue failed: each must be recovered entirely or not at all.
    failed_batches: Vec<Vec<String>>,
    /// Every tag ever offered.
    offered: BTreeSet<String>,
}

fn tag_of(payload: &[u8]) -> String {
    String::from_utf8(payload.to_vec()).unwrap()
}

/// Enqueues batches of three, leases two, acks one, nacks one, until the engine refuses.
async fn workload(engine: &Engine, out: &mut Outcomes) {
    for round in 0..12 {
        let tags: Vec<String> = (0..3).map(|i| format!("r{round}-m{i}")).collect();
        out.offered.extend(tags.iter().cloned());
        let batch = tags.iter().map(|t| NewMessage::new(t.as_bytes())).collect();
        match engine.enqueue_batch("q", batch).await {
            Ok(_) => out.enqueued.extend(tags),
            Err(_) => {
                out.failed_batches.push(tags);
                return;
            }
        }
        let Ok(leased) = engine.lease("q", 2, Some(60_000)).await else {
            return;
        };
        if let Some(first) = leased.first() {
            match engine.ack(first.message.id, first.token).await {
                Ok(()) => {
                    out.acked.insert(tag_of(&first.message.payload));
                }
                Err(_) => {
                    out.ack_uncertain.insert(tag_of(&first.message.payload));
                    return;
                }
            }
        }
        if let Some(second) = leased.get(1) {
            if engine
                .nack(second.message.id, second.token, Some(0))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

fn recovered_tags(storage: &MemoryStorage) -> BTreeSet<String> {
    storage
        .durable_snapshot()
        .messages
        .iter()
        .map(|m| tag_of(&m.payload))
        .collect()
}

fn check_recovery(storage: &MemoryStorage, out: &Outcomes, apply_then_fail: bool) {
    let recovered = recovered_tags(storage);
    for tag in &out.enqueued {
        if !out.acked.contains(tag) && !out.ack_uncertain.contains(tag) {
            assert!(recovered.contains(tag), "acknowledged enqueue {tag} lost");
        }
    }
    for tag in &out.acked {
        assert!(!recovered.contains(tag), "acknowledged ack of {tag} undone");
    }
    for tag in &recovered {
        assert!(out.offered.contains(tag), "{tag} was never enqueued");
    }
    for batch in &out.failed_batches {
        let present = batch.iter().filter(|t| recovered.contains(*t)).count();
        let expected = if apply_then_fail { batch.len() } else { 0 };
        assert_eq!(present, expected, "failed batch {batch:?} half-appeared");
    }
}

async fn commits_in_clean_run() -> u64 {
    let storage = MemoryStorage::new();
    let clock = Arc::new(ManualClock::new(common::START_MS));
    let engine = common::open_on(Box::new(storage.clone()), clock);
    workload(&engine, &mut Outcomes::default()).await;
    engine.flush().await.unwrap();
    storage.commit_count()
}

async fn run_with_fault(fail_commit: u64, apply_then_fail: bool) {
    let storage = MemoryStorage::new();
    let plan = FaultPlan {
        fail_commit: Some(fail_commit),
        apply_then_fail,
        ..FaultPlan::default()
    };
    let clock = Arc::new(ManualClock::new(common::START_MS));
    let engine = common::open_on(
        Box::new(FaultyStorage::new(storage.clone(), plan)),
        clock.clone(),
    );
    let mut out = Outcomes::default();
    workload(&engine, &mut out).await;
    // Leases are written behind, so this run may group its records into fewer commits than
    // the clean run did: enqueue until the failing commit has come.
    for extra in 0.. {
        assert!(extra < 1_000, "commit {fail_commit} never came");
        let tag = format!("after-{extra}");
        out.offered.insert(tag.clone());
        if engine
            .enqueue("q", NewMessage::new(tag.as_bytes()))
            .await
            .is_err()
        {
            break;
        }
        out.enqueued.insert(tag);
    }
    // Fail-stop: once a commit failed, every later write is refused with a clear error.
    let refused = engine.enqueue("q", NewMessage::new("after")).await;
    assert!(
        matches!(refused, Err(EngineError::Poisoned(_))),
        "commit {fail_commit}: {refused:?}"
    );
    assert!(refused.unwrap_err().to_string().contains("restart"));
    assert!(engine.engine_stats().poisoned);
    drop(engine);
    check_recovery(&storage, &out, apply_then_fail);
    // The reopened engine works and holds exactly what was durable.
    let reopened = common::open_on(Box::new(storage.clone()), clock);
    reopened.check_invariants();
    reopened
        .enqueue("q", NewMessage::new("after-restart"))
        .await
        .unwrap();
}

#[tokio::test]
async fn failing_any_commit_loses_nothing_acknowledged() {
    let total = commits_in_clean_run().await;
    assert!(
        total >= 30,
        "workload too small to be interesting: {total} commits"
    );
    for n in 1..=total {
        run_with_fault(n, false).await;
    }
}

#[tokio::test]
async fn a_write_applied_but_reported_failed_appears_whole() {
    let total = commits_in_clean_run().await;
    for n in 1..=total {
        run_with_fault(n, true).await;
    }
}

#[tokio::test]
async fn concurrent_callers_of_a_failed_group_commit_all_fail() {
    for fail_commit in [1u64, 2, 3, 5, 8, 13] {
        let storage = MemoryStorage::new();
        let plan = FaultPlan {
            fail_commit: Some(fail_commit),
            ..FaultPlan::default()
        };
        let clock = Arc::new(ManualClock::new(common::START_MS));
        let engine = common::open_on(Box::new(FaultyStorage::new(storage.clone(), plan)), clock);
        let mut tasks = Vec::new();
        for task in 0..16 {
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                let mut ok = Vec::new();
                for i in 0..20 {
                    let tag = format!("t{task}-{i}");
                    match engine.enqueue("q", NewMessage::new(tag.as_bytes())).await {
                        Ok(_) => ok.push(tag),
                        Err(_) => break,
                    }
                }
                ok
            }));
        }
        let mut acknowledged = Vec::new();
        for task in tasks {
            acknowledged.extend(task.await.unwrap());
        }
        drop(engine);
        let recovered = recovered_tags(&storage);
        for tag in &acknowledged {
            assert!(
                recovered.contains(tag),
                "acknowledged {tag} lost at fault {fail_commit}"
            );
        }
    }
}

#[tokio::test]
async fn transient_unavailability_is_retried_and_loses_nothing() {
    let storage = MemoryStorage::new();
    let plan = FaultPlan {
        fail_after: Some(2),
        transient: true,
        ..FaultPlan::default()
    };
    let faulty = FaultyStorage::new(storage.clone(), plan);
    let handle = faulty.plan();
    let clock = Arc::new(ManualClock::new(common::START_MS));
    let engine = common::open_on(Box::new(faulty), clock);
    engine.enqueue("q", NewMessage::new("a")).await.unwrap();
    engine.enqueue("q", NewMessage::new("b")).await.unwrap();
    // The third commit fails as "unavailable": the caller waits while the committer retries.
    let pending = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.enqueue("q", NewMessage::new("c")).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !pending.is_finished(),
        "no success before the write is durable"
    );
    let refused = engine.enqueue("q", NewMessage::new("d")).await;
    assert!(
        matches!(refused, Err(EngineError::StorageUnavailable(_))),
        "{refused:?}"
    );
    assert!(engine.engine_stats().storage_problem.is_some());
    handle.lock().fail_after = None;
    pending.await.unwrap().unwrap();
    engine.enqueue("q", NewMessage::new("e")).await.unwrap();
    drop(engine);
    let tags = recovered_tags(&storage);
    let expected: BTreeSet<String> = ["a", "b", "c", "e"].iter().map(|s| s.to_string()).collect();
    assert_eq!(tags, expected);
}

#[tokio::test]
async fn group_commit_batches_many_concurrent_operations_per_commit() {
    let storage = MemoryStorage::new();
    let engine = Engine::open(
        Box::new(storage.clone()),
        Arc::new(switchboard_engine::SystemClock),
        common::options(),
    )
    .unwrap();
    let mut tasks = Vec::new();
    for task in 0..64 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                engine
                    .enqueue("q", NewMessage::new(format!("{task}-{i}")))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let operations = 64 * 50;
    let commits = storage.commit_count();
    assert_eq!(storage.durable_snapshot().messages.len(), operations);
    // On a multi-threaded runtime 64 callers share commits; single-threaded they would too,
    // because the committer drains everything written while it was busy.
    assert!(
        commits < operations as u64,
        "{commits} commits for {operations} enqueues"
    );
    let per_queue: HashMap<_, _> = engine
        .all_queue_stats()
        .into_iter()
        .map(|s| (s.name.clone(), s.ready))
        .collect();
    assert_eq!(
        per_queue[&*std::sync::Arc::<str>::from("q")],
        operations as u64
    );
}

/// Opens an engine on `storage` whose commit number `fail_commit` fails for good, with one
/// message enqueued and durable (commit 1).
async fn engine_failing_commit_two(
    storage: &MemoryStorage,
    durable_leases: bool,
) -> (Engine, switchboard_engine::MessageId) {
    let plan = FaultPlan {
        fail_commit: Some(2),
        ..FaultPlan::default()
    };
    let clock = Arc::new(ManualClock::new(common::START_MS));
    let options = switchboard_engine::EngineOptions {
        durable_leases,
        ..common::options()
    };
    let engine = Engine::open(
        Box::new(FaultyStorage::new(storage.clone(), plan)),
        clock,
        options,
    )
    .unwrap();
    let id = engine.enqueue("q", NewMessage::new("m")).await.unwrap().id;
    (engine, id)
}

#[tokio::test]
async fn a_lease_lost_with_its_commit_leaves_the_message_ready_and_the_attempt_uncounted() {
    let storage = MemoryStorage::new();
    let (engine, id) = engine_failing_commit_two(&storage, false).await;
    // Leases are written behind: the lease is handed out before commit 2 (which fails).
    let leased = engine.lease("q", 1, Some(60_000)).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].message.attempts, 1);
    // The ack waits for a commit that includes the lease's record, so it cannot succeed.
    let acked = engine.ack(id, leased[0].token).await;
    assert!(matches!(acked, Err(EngineError::Poisoned(_))), "{acked:?}");
    drop(engine);

    let clock = Arc::new(ManualClock::new(common::START_MS));
    let reopened = common::open_on(Box::new(storage.clone()), clock);
    let (message, state) = reopened.message(id).await.unwrap().expect("still stored");
    assert_eq!(state, switchboard_engine::MessageState::Ready);
    assert_eq!(message.attempts, 0, "the lost delivery is not counted");
    let again = reopened.lease("q", 1, Some(60_000)).await.unwrap();
    assert_eq!(again.len(), 1);
    reopened.ack(id, again[0].token).await.unwrap();
    reopened.flush().await.unwrap();
}

#[tokio::test]
async fn with_durable_leases_a_lease_whose_commit_fails_is_refused() {
    let storage = MemoryStorage::new();
    let (engine, _id) = engine_failing_commit_two(&storage, true).await;
    let leased = engine.lease("q", 1, Some(60_000)).await;
    assert!(
        matches!(leased, Err(EngineError::Poisoned(_))),
        "{leased:?}"
    );
}

/// A gate a test opens to let the committer thread on.
#[derive(Debug, Clone, Default)]
struct Gate(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    fn pass(&self) {
        let (open, opened) = &*self.0;
        let mut guard = open.lock().unwrap();
        while !*guard {
            guard = opened.wait(guard).unwrap();
        }
    }

    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    fn close(&self) {
        *self.0 .0.lock().unwrap() = false;
    }
}

/// Memory storage whose commits wait while the gate is closed: a slow disk.
#[derive(Debug)]
struct GatedStorage {
    inner: MemoryStorage,
    open: Gate,
}

impl switchboard_engine::Storage for GatedStorage {
    fn recover(
        &mut self,
    ) -> Result<switchboard_engine::Snapshot, switchboard_engine::StorageError> {
        self.inner.recover()
    }

    fn commit(
        &mut self,
        batch: &[switchboard_engine::Record],
    ) -> Result<(), switchboard_engine::StorageError> {
        self.open.pass();
        self.inner.commit(batch)
    }

    fn describe(&self) -> String {
        "gated memory".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_handed_out_only_once_its_enqueue_is_durable() {
    let gate = Gate::default();
    let storage = GatedStorage {
        inner: MemoryStorage::new(),
        open: gate.clone(),
    };
    let clock = Arc::new(ManualClock::new(common::START_MS));
    let engine = common::open_on(Box::new(storage), clock);
    let producer = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.enqueue("q", NewMessage::new("x")).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let early = tokio::time::timeout(
        std::time::Duration::from_millis(100),
        engine.lease("q", 1, Some(60_000)),
    )
    .await;
    assert!(
        early.is_err(),
        "a lease handed out a message whose enqueue is not durable: {early:?}"
    );
    gate.open();
    producer.await.unwrap().unwrap();
    let leased = engine.lease("q", 1, Some(60_000)).await.unwrap();
    assert_eq!(leased.len(), 1, "the abandoned lease released the message");
    assert_eq!(
        leased[0].message.attempts, 1,
        "and did not count an attempt"
    );
    // A message whose enqueue is durable is handed out without waiting for the lease's own
    // record, even while that commit is stuck.
    let id = engine.enqueue("q", NewMessage::new("y")).await.unwrap().id;
    gate.close();
    let prompt = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        engine.lease("q", 1, Some(60_000)),
    )
    .await
    .expect("a message whose enqueue is durable is handed out at once")
    .unwrap();
    assert_eq!(prompt[0].message.id, id);
    gate.open();
}

/// A storage that keeps two batches in flight: `submit` only queues (the first one waits for
/// its gate), `finish_oldest` waits for its gate and then commits the oldest.
struct PipelinedStorage {
    inner: MemoryStorage,
    in_flight: std::collections::VecDeque<Vec<switchboard_engine::Record>>,
    submitted: Arc<std::sync::atomic::AtomicUsize>,
    first_submit: Gate,
    finish: Gate,
}

impl switchboard_engine::Storage for PipelinedStorage {
    fn recover(
        &mut self,
    ) -> Result<switchboard_engine::Snapshot, switchboard_engine::StorageError> {
        self.inner.recover()
    }

    fn commit(
        &mut self,
        _: &[switchboard_engine::Record],
    ) -> Result<(), switchboard_engine::StorageError> {
        unreachable!("a pipelined storage is driven by submit and finish_oldest")
    }

    fn pipeline_depth(&self) -> usize {
        2
    }

    fn submit(
        &mut self,
        batch: &[switchboard_engine::Record],
    ) -> Result<(), switchboard_engine::StorageError> {
        self.first_submit.pass();
        self.in_flight.push_back(batch.to_vec());
        self.submitted
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn finish_oldest(&mut self) -> Result<(), switchboard_engine::StorageError> {
        self.finish.pass();
        let oldest = self.in_flight.pop_front().expect("a batch in flight");
        self.inner.commit(&oldest)
    }

    fn describe(&self) -> String {
        "pipelined memory".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelining_storage_gets_the_next_batch_before_the_last_is_durable() {
    let (first_submit, finish) = (Gate::default(), Gate::default());
    let submitted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let inner = MemoryStorage::new();
    let storage = PipelinedStorage {
        inner: inner.clone(),
        in_flight: Default::default(),
        submitted: submitted.clone(),
        first_submit: first_submit.clone(),
        finish: finish.clone(),
    };
    let clock = Arc::new(ManualClock::new(common::START_MS));
    let engine = common::open_on(Box::new(storage), clock.clone());
    let enqueue = |payload: &'static str| {
        let engine = engine.clone();
        tokio::spawn(async move { engine.enqueue("q", NewMessage::new(payload)).await })
    };
    // The first batch is being handed over while the second one's record arrives.
    let first = enqueue("a");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let second = enqueue("b");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    first_submit.open();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while submitted.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        if std::time::Instant::now() > deadline {
            finish.open();
            panic!("the second batch was not handed over while the first was in flight");
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let early = !first.is_finished() && !second.is_finished();
    finish.open();
    assert!(
        early,
        "nothing is acknowledged before its batch is finished"
    );
    let a = first.await.unwrap().unwrap().id;
    let b = second.await.unwrap().unwrap().id;
    drop(engine);
    let reopened = common::open_on(Box::new(inner), clock);
    let leased = reopened.lease("q", 2, Some(60_000)).await.unwrap();
    let ids: Vec<_> = leased.iter().map(|d| d.message.id).collect();
    assert_eq!(ids, vec![a, b], "both batches were committed, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_for_a_batch_already_handed_to_storage() {
    let gate = Gate::default();
    let storage = GatedStorage {
        inner: MemoryStorage::new(),
        open: gate.clone(),
    };
    let engine = common::open_on(
        Box::new(storage),
        Arc::new(ManualClock::new(common::START_MS)),
    );
    let producer = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.enqueue("q", NewMessage::new("x")).await })
    };
    // The committer has taken the batch (nothing is pending) and its commit is stuck.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let early = tokio::time::timeout(std::time::Duration::from_millis(100), engine.flush()).await;
    gate.open();
    assert!(
        early.is_err(),
        "flush returned while a write was not durable: {early:?}"
    );
    producer.await.unwrap().unwrap();
    engine.flush().await.unwrap();
}

#[tokio::test]
async fn ids_stay_unique_when_the_next_owner_s_clock_is_behind() {
    let storage = MemoryStorage::new();
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let first = Engine::open(Box::new(storage.clone()), clock.clone(), common::options()).unwrap();
    first.enqueue("q", NewMessage::new("a")).await.unwrap();
    // Ids minted later in the same reservation, then every message acked: storage keeps no id.
    clock.advance_ms(30_000);
    let last = first.enqueue("q", NewMessage::new("b")).await.unwrap().id;
    for delivery in first.lease("q", 10, Some(60_000)).await.unwrap() {
        first
            .ack(delivery.message.id, delivery.token)
            .await
            .unwrap();
    }
    drop(first);
    assert!(storage.durable_snapshot().messages.is_empty());

    // The next owner's clock is ten minutes behind: it still mints above every earlier id.
    clock.set_ms(1_800_000_000_000 - 600_000);
    let second = Engine::open(Box::new(storage.clone()), clock.clone(), common::options()).unwrap();
    let next = second.enqueue("q", NewMessage::new("c")).await.unwrap().id;
    assert!(next > last, "{next} must be above {last}");
    assert!(storage.durable_snapshot().ids_minted_until > (last.0 >> 80) as u64);
}
