//! A TLS listener for `axum::serve`: TCP connections come from the capped
//! [`LimitedListener`] (a connection holds its slot through the handshake and after), and
//! handshakes run in their own tasks, each within [`TLS_HANDSHAKE_TIMEOUT`], so one slow or
//! silent client never holds up accepting the others.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::listener::{Limited, LimitedListener};

/// Longest a client may take to finish its TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const HANDSHAKEN_QUEUED_MAX: usize = 64;

/// [`LimitedListener`] with TLS on top.
pub struct TlsListener {
    handshaken: mpsc::Receiver<(TlsStream<Limited>, SocketAddr)>,
    local: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl TlsListener {
    /// Serves TLS with `config` on the connections of `inner`.
    pub fn new(mut inner: LimitedListener, config: Arc<ServerConfig>) -> io::Result<Self> {
        let local = axum::serve::Listener::local_addr(&inner)?;
        let tls = TlsAcceptor::from(config);
        let (sender, handshaken) = mpsc::channel(HANDSHAKEN_QUEUED_MAX);
        let acceptor = tokio::spawn(async move {
            loop {
                let (stream, address) = axum::serve::Listener::accept(&mut inner).await;
                let tls = tls.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = sender.send((stream, address)).await;
                        }
                        // A client that speaks plain HTTP or distrusts the certificate: its
                        // problem to report, not the server's.
                        Ok(Err(error)) => {
                            tracing::debug!(%address, %error, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%address, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            handshaken,
            local,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // The server stopped accepting: stop taking connections for it.
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<Limited>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.handshaken.recv().await {
            Some(connection) => connection,
            // The accepting task ended (it only does when aborted): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
