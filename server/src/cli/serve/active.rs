//! The active server: everything that runs once this server owns its storage (at start, or
//! when a hot standby takes over), and its graceful stop.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use switchboard_engine::{Engine, EngineOptions, Storage, SystemClock};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::app;
use crate::config::{ServeArgs, Settings};
use crate::limits;
use crate::registry::Registry;
use crate::state::AppState;

/// What starting the active server needs besides the store.
pub struct Context {
    /// The flags `serve` was started with.
    pub args: ServeArgs,
    /// The storage URL (for messages).
    pub url: String,
    /// Run-time settings (authentication already prepared).
    pub settings: Settings,
    /// Turns true when the server is shutting down.
    pub stopping: watch::Receiver<bool>,
    /// The address the listener is bound to.
    pub local: SocketAddr,
}

/// A running active server: its state and background work.
pub struct Active {
    state: AppState,
    tasks: Vec<JoinHandle<()>>,
    /// Save receipts, open asks and routing memory in the background.
    writers: crate::durable::Writers,
}

impl Active {
    /// Recovers the engine from `storage`, loads the registry, routing rules and migration
    /// state, and starts the background work. Errors are one paragraph.
    pub async fn start(storage: Box<dyn Storage>, context: &Context) -> Result<Self, String> {
        let url = &context.url;
        let engine = Engine::open(storage, Arc::new(SystemClock), EngineOptions::default())
            .map_err(|error| super::storage_paragraph(url, &error.to_string()))?;
        let registry = Registry::load(engine.clone())
            .await
            .map_err(|error| super::storage_paragraph(url, &error.to_string()))?;
        let state = AppState::new(
            engine.clone(),
            registry,
            context.settings.clone(),
            context.stopping.clone(),
        );
        // Routing rules (`--routing-rules` or kept in storage), then a first discovery scan so
        // that found agents exist before the first request; then the background work.
        state.routing.load(&engine).await.map_err(|error| {
            format!(
                "switchboard: {error}. Fix the rules (or remove --routing-rules) and start again."
            )
        })?;
        // Receipts, open asks and routing memory saved by the server before this one (this
        // process before a restart, or the active server a standby takes over from).
        let writers = crate::durable::restore(&state)
            .await
            .map_err(|error| super::storage_paragraph(url, &error.to_string()))?;
        let discovery = crate::registry::discovery::spawn(state.clone());
        if let Err(error) = state.discovery.rescan(&state).await {
            tracing::warn!(%error, "agent discovery failed at start; it is retried on its interval");
        }
        let sweeper = crate::routing::spawn(state.clone());
        let stale_cleanup = crate::registry::discovery::stale::spawn_stale_cleanup(state.clone());
        let args = &context.args;
        // Loads the migration state: resumes (or rolls back) an unfinished run, or --migrate-now.
        crate::migrate::boot(
            &state,
            &args.migration,
            args.enable_migration,
            args.workdir.clone(),
            context.local,
        )
        .await?;
        // Monitoring is always on (see `crate::monitor`); --enable-monitoring changes nothing.
        let sampler = crate::monitor::sampler::spawn(state.clone(), state.shutdown.clone());
        Ok(Self {
            state,
            tasks: vec![discovery, sweeper, stale_cleanup, sampler],
            writers,
        })
    }

    /// The full API over this server's state.
    pub fn router(&self) -> Router {
        app(self.state.clone())
    }

    /// After the listener stopped: waits for sockets to give their leases back and for the
    /// last writes to be durable, then drops the engine, which gives the storage (and a Redis
    /// prefix's ownership) back at once, so a standby need not wait for the lease to lapse.
    pub async fn stop(self) -> Result<(), String> {
        let Self {
            state,
            tasks,
            writers,
        } = self;
        for task in tasks {
            task.abort(); // they stop by themselves on shutdown; this covers a failed server
            let _ = task.await; // so that their handles on the engine are gone too
        }
        if !state.sockets.wait_all_closed(limits::SHUTDOWN_GRACE).await {
            tracing::warn!(
                "some sockets did not close in time; their leases return when they run out"
            );
        }
        if !writers.finish().await {
            tracing::warn!("the last receipts and routing memory were not saved in time");
        }
        let engine = state.engine.clone();
        let flushed = tokio::time::timeout(limits::SHUTDOWN_FLUSH_TIMEOUT, engine.flush()).await;
        drop(state);
        // Normally the last handle (the listener and the tasks are gone): dropping it stops the
        // committer and drops the store, which releases the ownership. Off the async threads,
        // since it joins threads.
        let _ = tokio::task::spawn_blocking(move || drop(engine)).await;
        match flushed {
            Ok(Ok(())) => {
                tracing::info!("everything written is durable; bye");
                Ok(())
            }
            Ok(Err(error)) => Err(format!(
                "switchboard: could not make the last writes durable while shutting down: {error}"
            )),
            Err(_) => Err(format!(
                "switchboard: storage did not make the last writes durable within {} s while \
                 shutting down (is it down?); writes not acknowledged to clients may be lost",
                limits::SHUTDOWN_FLUSH_TIMEOUT.as_secs()
            )),
        }
    }
}
