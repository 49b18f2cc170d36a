//! `switchboard serve`: open storage, load the registry, listen, and shut down gracefully.
//!
//! Before anything is opened, `serve` refuses a non-loopback address without authentication
//! (see [`crate::auth::exposure`]), bad TLS files, and a bad admin token. With `--tls-cert` and
//! `--tls-key` the same port serves HTTPS and WSS.
//!
//! Start-up failures (storage unreachable, port taken) print one paragraph on stderr saying
//! what failed and what to do, and exit with code 1. On SIGTERM or Ctrl-C the server stops
//! accepting, answers long polls at once (with nothing, as when their wait ends), finishes
//! in-flight requests, closes sockets (their leases go back to the inboxes), waits until
//! everything written is durable, and exits 0.

use std::process::ExitCode;
use std::sync::Arc;

use switchboard_engine::{Engine, EngineOptions, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::app;
use crate::config::{ServeArgs, Settings};
use crate::limits;
use crate::listener::LimitedListener;
use crate::registry::Registry;
use crate::state::AppState;
use crate::tls::listener::TlsListener;

/// Runs the server until it is told to stop.
pub fn run(args: ServeArgs) -> ExitCode {
    init_tracing(&args.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchboard: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(paragraph) => {
            eprintln!("{paragraph}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log redirected to a file or a journal stays plain text.
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colours)
        .try_init();
}

/// The one paragraph printed when storage cannot be opened: what failed, then what to do,
/// with advice for the kind of storage the URL names. A URL whose scheme names no backend
/// gets no backend's advice: its error already lists the URLs that work.
fn storage_paragraph(url: &str, error: &str) -> String {
    // Storage errors usually name the URL already; say it once.
    let what = if error.contains(url) {
        error.to_string()
    } else {
        format!("{url:?}, {error}")
    };
    let advice = match switchboard_storage::StorageUrl::parse(url) {
        Err(_) => {
            return format!("switchboard: cannot open the storage: {what}. Nothing was started.")
        }
        Ok(switchboard_storage::StorageUrl::Redis { .. }) => format!(
            "Check that redis-server is running and reachable at that address (for example \
             with `redis-cli -u {url} ping`) and that the host, port and database in the URL \
             are right."
        ),
        Ok(_) => "Check the path, that its directory exists, its permissions, and that no other \
             switchboard holds the file."
            .to_string(),
    };
    format!(
        "switchboard: cannot open the storage: {what}. Nothing was started. {advice} \
         To run without Redis, choose another backend with --storage (or SWITCHBOARD_STORAGE): \
         `redb:./data/switchboard.redb` for a single-node embedded store, or `memory:` for a \
         throwaway one."
    )
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let url = args.storage_url(|name| std::env::var(name).ok());
    let address = args.listen_address();
    // Refusals that need no storage come first: exposure without auth, TLS files, admin token.
    crate::auth::exposure::check(&address, args.auth.auth, args.auth.insecure).await?;
    let tls = args.tls.server_config()?;
    let auth = crate::auth::prepare(&args.auth, &args.workdir)?;
    let storage =
        crate::storage::open_backend(&url).map_err(|error| storage_paragraph(&url, &error))?;
    let engine = Engine::open(storage, Arc::new(SystemClock), EngineOptions::default())
        .map_err(|error| storage_paragraph(&url, &error.to_string()))?;
    let registry = Registry::load(engine.clone())
        .await
        .map_err(|error| storage_paragraph(&url, &error.to_string()))?;
    let listener = TcpListener::bind(&address).await.map_err(|error| {
        format!(
            "switchboard: cannot listen on {address}: {error}. Check --api-host (or API_HOST); \
             if another process holds the port, choose another with --api-port (or API_PORT) \
             or stop that process."
        )
    })?;
    let local = listener
        .local_addr()
        .map_err(|error| format!("switchboard: cannot read the listening address: {error}"))?;
    let (stop, stopped) = watch::channel(false);
    let settings = Settings {
        auth,
        ..Settings::from(&args)
    };
    let state = AppState::new(engine.clone(), registry, settings, stopped);
    // Routing rules (`--routing-rules` or kept in storage), then a first discovery scan so
    // that found agents exist before the first request; then the background work.
    state.routing.load(&engine).await.map_err(|error| {
        format!("switchboard: {error}. Fix the rules (or remove --routing-rules) and start again.")
    })?;
    // Receipts, open asks and routing memory saved by the server before this one.
    let writers = crate::durable::restore(&state)
        .await
        .map_err(|error| storage_paragraph(&url, &error.to_string()))?;
    let discovery = crate::registry::discovery::spawn(state.clone());
    if let Err(error) = state.discovery.rescan(&state).await {
        tracing::warn!(%error, "agent discovery failed at start; it is retried on its interval");
    }
    let sweeper = crate::routing::spawn(state.clone());
    let stale_cleanup = crate::registry::discovery::stale::spawn_stale_cleanup(state.clone());
    // Loads the migration state: resumes (or rolls back) an unfinished run, or --migrate-now.
    crate::migrate::boot(
        &state,
        &args.migration,
        args.enable_migration,
        args.workdir.clone(),
        local,
    )
    .await?;
    // Monitoring is always on (see `crate::monitor`); --enable-monitoring changes nothing.
    let sampler = crate::monitor::sampler::spawn(state.clone(), state.shutdown.clone());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let auth_mode = format!("{:?}", args.auth.auth).to_lowercase();
    tracing::info!(%local, storage = %url, workdir = %args.workdir.display(), auth = %auth_mode, %scheme, "switchboard listening");
    let signals = crate::shutdown::StopSignals::install();
    // One line on stdout, so scripts and tests can learn the port when they asked for port 0.
    println!("switchboard listening on {scheme}://{local}");
    let router = app(state.clone()).into_make_service();
    let limited = LimitedListener::new(listener, limits::CONNECTIONS_MAX);
    let stopping = async move {
        signals.recv().await;
        let _ = stop.send(true);
    };
    let served = match tls {
        None => {
            axum::serve(limited, router)
                .with_graceful_shutdown(stopping)
                .await
        }
        Some(config) => {
            let listener = TlsListener::new(limited, config)
                .map_err(|error| format!("switchboard: cannot set up TLS: {error}"))?;
            axum::serve(listener, router)
                .with_graceful_shutdown(stopping)
                .await
        }
    };
    if let Err(error) = served {
        tracing::error!(%error, "server failed");
    }
    sampler.abort(); // it stops by itself on shutdown; this covers a server that failed
    for task in [discovery, sweeper, stale_cleanup] {
        task.abort(); // they stop by themselves on shutdown too
    }
    if !state.sockets.wait_all_closed(limits::SHUTDOWN_GRACE).await {
        tracing::warn!("some sockets did not close in time; their leases return when they run out");
    }
    if !writers.finish().await {
        tracing::warn!("the last receipts and routing memory were not saved in time");
    }
    match tokio::time::timeout(limits::SHUTDOWN_FLUSH_TIMEOUT, engine.flush()).await {
        Ok(Ok(())) => tracing::info!("everything written is durable; bye"),
        Ok(Err(error)) => {
            return Err(format!(
                "switchboard: could not make the last writes durable while shutting down: {error}"
            ))
        }
        Err(_) => {
            return Err(format!(
                "switchboard: storage did not make the last writes durable within {} s while \
                 shutting down (is it down?); writes not acknowledged to clients may be lost",
                limits::SHUTDOWN_FLUSH_TIMEOUT.as_secs()
            ))
        }
    }
    Ok(())
}
