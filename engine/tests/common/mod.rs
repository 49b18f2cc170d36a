//! Shared set-up for the engine's tests: an engine on memory storage with a manual clock.
#![allow(dead_code)]

use std::sync::Arc;

use switchboard_engine::{
    Engine, EngineOptions, ManualClock, MemoryStorage, NewMessage, QueueConfig, Storage,
};

/// The clock's starting point: an arbitrary fixed moment (2026-01-01T00:00:00Z).
pub const START_MS: u64 = 1_767_225_600_000;

pub struct Harness {
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub storage: MemoryStorage,
}

pub fn options() -> EngineOptions {
    EngineOptions {
        token_seed: 7,
        tick_interval: None,
        durable_leases: false,
    }
}

impl Harness {
    pub fn new() -> Self {
        let storage = MemoryStorage::new();
        let clock = Arc::new(ManualClock::new(START_MS));
        let engine = Engine::open(Box::new(storage.clone()), clock.clone(), options()).unwrap();
        Self {
            engine,
            clock,
            storage,
        }
    }

    /// Drops the engine (as a crash would, after its last commit) and opens a new one on the
    /// same storage and clock.
    pub fn restart(self) -> Self {
        let Harness {
            storage,
            clock,
            engine,
        } = self;
        // Stopping commits what is pending (leases are written behind), like a crash after
        // the last commit; tests/durability.rs covers a crash before it.
        drop(engine);
        let engine = Engine::open(Box::new(storage.clone()), clock.clone(), options()).unwrap();
        Self {
            engine,
            clock,
            storage,
        }
    }

    pub fn advance(&self, ms: u64) {
        self.clock.advance_ms(ms);
    }

    pub async fn configure(&self, queue: &str, config: QueueConfig) {
        self.engine.configure_queue(queue, config).await.unwrap();
    }

    pub async fn send(
        &self,
        queue: &str,
        text: &str,
        priority: u8,
    ) -> switchboard_engine::MessageId {
        self.engine
            .enqueue(queue, NewMessage::new(text).with_priority(priority))
            .await
            .unwrap()
            .id
    }

    /// Leases up to `max` and returns their payloads as text.
    pub async fn take(&self, queue: &str, max: usize) -> Vec<String> {
        self.engine
            .lease(queue, max, Some(30_000))
            .await
            .unwrap()
            .into_iter()
            .map(|d| String::from_utf8(d.message.payload.to_vec()).unwrap())
            .collect()
    }
}

pub fn open_on(storage: Box<dyn Storage>, clock: Arc<ManualClock>) -> Engine {
    Engine::open(storage, clock, options()).unwrap()
}
