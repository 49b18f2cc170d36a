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
//! everything written is durable, gives the storage back (a Redis prefix's ownership, so a
//! hot standby takes over at once), and exits 0.
//!
//! The listener is bound before the storage is opened. When another server owns the storage
//! (a Redis prefix), this one is a hot standby on that listener (see [`crate::standby`]) and
//! becomes the active server, without a restart, once it can take ownership. The workdir is
//! locked for the server's life ([`crate::workdir`]): it keeps the owner id that lets a
//! restarted server reclaim its own lease at once.

mod active;
mod advertise;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use switchboard_storage::OpenOptions;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{ServeArgs, Settings};
use crate::limits;
use crate::listener::LimitedListener;
use crate::standby::switch::RouterSwitch;
use crate::standby::{takeover, Standing};
use crate::storage::{OpenFailure, OwnerSeen};
use crate::tls::listener::TlsListener;
use crate::workdir::WorkdirLock;
use active::Active;

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
    // Held until this function returns, after the storage is given back.
    let workdir = WorkdirLock::acquire(&args.workdir)?;
    let auth = crate::auth::prepare(&args.auth, &args.workdir)?;
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
    let scheme = if tls.is_some() { "https" } else { "http" };
    let advertise_url = args
        .advertise_url
        .clone()
        .unwrap_or_else(|| advertise::default_url(scheme, local));
    let options = OpenOptions {
        owner_id: Some(workdir.owner_id()?),
        advertise_url: Some(advertise_url.clone()),
        owner_lease: Some(args.owner_lease()),
    };
    let first = crate::storage::open_backend(&url, &options).await;
    let (stop, stopping) = watch::channel(false);
    let context = active::Context {
        settings: Settings {
            auth,
            ..Settings::from(&args)
        },
        args: args.clone(),
        url: url.clone(),
        stopping: stopping.clone(),
        local,
    };
    let signals = crate::shutdown::StopSignals::install();
    let (switch, becoming_active) = match first {
        Ok(storage) => {
            let active = Active::start(storage, &context).await?;
            (
                RouterSwitch::new(active.router()),
                BecomingActive::Now(active),
            )
        }
        Err(OpenFailure::Owned(owner)) => {
            tracing::warn!(storage = %url, owner = %owner.holder,
                active = owner.active_url.as_deref().unwrap_or("unknown"),
                "another server owns the storage: serving as a hot standby until it stops or \
                 its lease lapses");
            let standing = Standing::new(owner.clone());
            let switch = RouterSwitch::new(crate::standby::router(standing.clone()));
            let takeover = tokio::spawn(take_over(
                TakeOver {
                    options,
                    owner,
                    standing,
                    context,
                    switch: switch.clone(),
                },
                stop.clone(),
            ));
            (switch, BecomingActive::Later(takeover))
        }
        Err(OpenFailure::Failed(error)) => return Err(storage_paragraph(&url, &error)),
    };
    let auth_mode = format!("{:?}", args.auth.auth).to_lowercase();
    tracing::info!(%local, storage = %url, workdir = %args.workdir.display(), auth = %auth_mode,
        %scheme, advertise = %advertise_url, "switchboard listening");
    // One line on stdout, so scripts and tests can learn the port when they asked for port 0.
    println!("switchboard listening on {scheme}://{local}");
    tokio::spawn({
        let stop = stop.clone();
        async move {
            signals.recv().await;
            let _ = stop.send(true);
        }
    });
    serve_until_stopped(listener, tls, switch.router(), stopping).await?;
    let active = match becoming_active {
        BecomingActive::Now(active) => Some(active),
        BecomingActive::Later(takeover) => takeover
            .await
            .map_err(|error| format!("switchboard: the takeover failed: {error}"))??,
    };
    let stopped = match active {
        Some(active) => active.stop().await,
        None => Ok(()),
    };
    drop(workdir);
    stopped
}

/// Serves `router` on `listener` (over TLS with `tls`) until `stopping` turns true and every
/// request in flight is answered.
async fn serve_until_stopped(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: axum::Router,
    mut stopping: watch::Receiver<bool>,
) -> Result<(), String> {
    let router = router.into_make_service();
    let limited = LimitedListener::new(listener, limits::CONNECTIONS_MAX);
    let stopped = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let served = match tls {
        None => {
            axum::serve(limited, router)
                .with_graceful_shutdown(stopped)
                .await
        }
        Some(config) => {
            let listener = TlsListener::new(limited, config)
                .map_err(|error| format!("switchboard: cannot set up TLS: {error}"))?;
            axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await
        }
    };
    if let Err(error) = served {
        tracing::error!(%error, "server failed");
    }
    Ok(())
}

/// The active server, now or once this hot standby takes over.
enum BecomingActive {
    Now(Active),
    Later(JoinHandle<Result<Option<Active>, String>>),
}

/// What a hot standby needs to take over.
struct TakeOver {
    options: OpenOptions,
    owner: OwnerSeen,
    standing: Standing,
    context: active::Context,
    switch: RouterSwitch,
}

/// Waits for ownership, starts the active server and puts its API on the listener. `None`
/// when the server stopped first. A failure to start stops the server: a standby that cannot
/// take over must not look healthy.
async fn take_over(take: TakeOver, stop: watch::Sender<bool>) -> Result<Option<Active>, String> {
    let TakeOver {
        options,
        owner,
        standing,
        context,
        switch,
    } = take;
    let stopping = context.stopping.clone();
    let Some(storage) =
        takeover::wait_for_ownership(&context.url, &options, &owner, &standing, stopping).await
    else {
        return Ok(None);
    };
    let started = Instant::now();
    match Active::start(storage, &context).await {
        Ok(active) => {
            switch.switch_to(active.router());
            tracing::warn!(
                recovery_ms = started.elapsed().as_millis() as u64,
                "took over: serving the full API as the active server"
            );
            Ok(Some(active))
        }
        Err(paragraph) => {
            tracing::error!(%paragraph, "the takeover failed; stopping");
            let _ = stop.send(true);
            Err(paragraph)
        }
    }
}
