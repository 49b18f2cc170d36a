//! A simulated process around one store: an engine that can be crashed and started again on
//! the same store, with a manual clock that keeps running across restarts.

use std::sync::Arc;

use switchboard_engine::{Engine, EngineOptions, ManualClock, Snapshot, Storage, UnixMillis};

/// Where every suite's manual clock starts (a plausible wall-clock time, in milliseconds).
pub const START_MS: UnixMillis = 1_700_000_000_000;

/// Token seed of every engine the suite opens, so two engines fed the same operations hand
/// out the same lease tokens.
const TOKEN_SEED: u64 = 1;

/// An engine on a reopenable store, and its clock.
pub struct Harness<F: Fn() -> Box<dyn Storage>> {
    open: F,
    clock: Arc<ManualClock>,
    engine: Option<Engine>,
}

impl<F: Fn() -> Box<dyn Storage>> Harness<F> {
    /// Opens the store and starts an engine on it at [`START_MS`].
    pub fn start(open: F) -> Self {
        let mut harness = Self {
            open,
            clock: Arc::new(ManualClock::new(START_MS)),
            engine: None,
        };
        harness.boot();
        harness
    }

    fn boot(&mut self) {
        let storage = (self.open)();
        let options = EngineOptions {
            tick_interval: None,
            token_seed: TOKEN_SEED,
            durable_leases: false,
        };
        let engine = Engine::open(storage, self.clock.clone(), options)
            .unwrap_or_else(|error| panic!("engine does not open on the store: {error}"));
        engine.check_invariants();
        self.engine = Some(engine);
    }

    /// The running engine.
    pub fn engine(&self) -> &Engine {
        self.engine
            .as_ref()
            .expect("the harness's engine is running")
    }

    /// Stops the engine (its leases die with it) and releases the store.
    pub fn stop(&mut self) {
        self.engine = None;
    }

    /// Crashes the engine and starts a new one on the same store.
    pub fn restart(&mut self) {
        self.stop();
        self.boot();
    }

    /// What the store holds now, read by a fresh handle (the engine is stopped first, since
    /// file stores take an exclusive lock). Leaves the engine stopped.
    pub fn recover(&mut self) -> Snapshot {
        self.stop();
        (self.open)()
            .recover()
            .unwrap_or_else(|error| panic!("store does not recover: {error}"))
    }

    /// Moves the clock forward and lets the engine settle what fell due.
    pub fn advance_ms(&self, delta_ms: u64) {
        self.clock.advance_ms(delta_ms);
        if let Some(engine) = &self.engine {
            engine.tick();
        }
    }

    /// The clock's reading.
    pub fn now_ms(&self) -> UnixMillis {
        use switchboard_engine::Clock;
        self.clock.now_ms()
    }
}

/// A small, seedable random source (splitmix64): random test runs replay from their seed.
#[derive(Debug, Clone)]
pub struct TestRng {
    state: u64,
}

impl TestRng {
    /// A source that always yields the same sequence for `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..high` (`high` > `low`).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// One of `items`, chosen uniformly.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }
}
