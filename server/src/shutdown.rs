//! Waiting for the signal to stop: Ctrl-C (SIGINT) or SIGTERM.
//!
//! The handlers are installed by [`StopSignals::install`], before the server says it is
//! listening: a SIGTERM sent the moment it is up must stop it gracefully, not kill it with the
//! default action. Long polls end early on shutdown ([`unless_stopping`]): a graceful stop
//! waits for every request in flight, and a client waiting 20 s must not hold it that long.

use std::future::Future;

use tokio::sync::watch;

/// Runs the long poll `poll`, unless the server starts shutting down (`stopping` turns true)
/// first: then answers `stopped()`, what the poll answers when its wait ends with nothing.
/// Dropping the poll must be safe (`Engine::lease_wait` releases what it leased).
pub async fn unless_stopping<T>(
    stopping: &watch::Receiver<bool>,
    poll: impl Future<Output = T>,
    stopped: impl FnOnce() -> T,
) -> T {
    let mut stopping = stopping.clone();
    tokio::select! {
        // The poll first: what it has found already is still answered.
        biased;
        answer = poll => answer,
        () = shutting_down(&mut stopping) => stopped(),
    }
}

/// Resolves once `stopping` is true; never if its sender goes away without saying so (tests
/// that build a state without a server).
async fn shutting_down(stopping: &mut watch::Receiver<bool>) {
    if stopping.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The installed stop signals.
pub struct StopSignals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    /// Installs the handlers for SIGTERM and Ctrl-C (needs a running Tokio runtime).
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let install = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(stream) => Some(stream),
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for {name}");
                    None
                }
            };
            Self {
                terminate: install(SignalKind::terminate(), "SIGTERM"),
                interrupt: install(SignalKind::interrupt(), "Ctrl-C"),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves when the process is asked to stop.
    pub async fn recv(self) {
        #[cfg(unix)]
        {
            let Self {
                terminate,
                interrupt,
            } = self;
            let wait = |stream: Option<tokio::signal::unix::Signal>| async move {
                match stream {
                    Some(mut stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(interrupt) => tracing::info!("Ctrl-C received, shutting down"),
                _ = wait(terminate) => tracing::info!("SIGTERM received, shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::warn!(%error, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
            tracing::info!("Ctrl-C received, shutting down");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_poll_is_answered_once_the_server_starts_stopping() {
        let (stop, stopping) = watch::channel(false);
        let poll = std::future::pending::<Vec<u32>>();
        let answer = tokio::spawn(async move { unless_stopping(&stopping, poll, Vec::new).await });
        stop.send(true).unwrap();
        assert_eq!(answer.await.unwrap(), Vec::<u32>::new());
    }

    #[tokio::test]
    async fn a_poll_without_a_stop_sender_runs_to_its_own_end() {
        let (stop, stopping) = watch::channel(false);
        drop(stop);
        // Not ready at its first poll, so a closed channel read as "stopping" would win.
        let poll = async {
            tokio::task::yield_now().await;
            vec![7]
        };
        assert_eq!(unless_stopping(&stopping, poll, Vec::new).await, vec![7]);
    }
}
