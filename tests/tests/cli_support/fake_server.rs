//! Stand-ins for a server that misbehaves on the wire, to test what the client concludes:
//! - [`SilentServer`] accepts connections, reads each request, and never answers (or, made
//!   with [`SilentServer::answering_gets`], answers GETs and never answers anything else);
//! - [`AnswerLosingProxy`] forwards to a real server but drops the first answer (the server
//!   did the work; the client never hears of it); made with [`AnswerLosingProxy::dying`], it
//!   then stops listening, as an active server killed mid-request;
//! - [`StandbyServer`] answers every request as a hot standby does (503, `"error":
//!   "standby"`, the active server's URL or null);
//! - [`dead_url`] is a loopback URL nobody listens at.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Largest request the silent server reads, in bytes.
const REQUEST_BYTES_MAX: usize = 1024 * 1024;

/// A listener that takes requests and never answers them.
pub struct SilentServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl SilentServer {
    /// Starts listening on a free loopback port.
    pub async fn start() -> Self {
        Self::listen(None).await
    }

    /// Starts listening on a free loopback port; every GET is answered with `json` (status
    /// 200), every other request never: a server that is up, but whose sends hang.
    pub async fn answering_gets(json: &str) -> Self {
        Self::listen(Some(json.to_string())).await
    }

    async fn listen(get_answer: Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
        let recorded = bodies.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let recorded = recorded.clone();
                let get_answer = get_answer.clone();
                tokio::spawn(async move {
                    let Some((method, body)) = read_request(&mut stream).await else {
                        return;
                    };
                    if let (true, Some(json)) = (method == "GET", get_answer) {
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n{json}",
                            json.len()
                        );
                        let _ = stream.write_all(answer.as_bytes()).await;
                        let _ = stream.shutdown().await;
                        return;
                    }
                    recorded.lock().unwrap().push(body);
                    // Hold the connection open, answering nothing, until the client leaves.
                    let mut rest = [0u8; 1024];
                    while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
                });
            }
        });
        Self { url, bodies, task }
    }

    /// The bodies of the requests received and left unanswered so far, in order.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 request (headers, then `Content-Length` bytes of body); its method and
/// body.
async fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buffer.len() > REQUEST_BYTES_MAX {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let headers = String::from_utf8_lossy(&buffer[..header_end]).to_lowercase();
    let length: usize = headers
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let method = headers.split(' ').next().unwrap_or_default().to_uppercase();
    let body = String::from_utf8_lossy(&buffer[header_end..header_end + length]).into_owned();
    Some((method, body))
}

/// A TCP proxy to a real server that lets the first request through but drops its answer
/// (closing the client's connection once the server has answered); later connections pass
/// untouched.
pub struct AnswerLosingProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    task: JoinHandle<()>,
}

impl AnswerLosingProxy {
    /// Starts a proxy to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        Self::listen(upstream, false).await
    }

    /// Starts a proxy to `upstream` that, once it has lost the first answer, stops listening:
    /// later connections are refused, as by a server killed after doing the work.
    pub async fn dying(upstream: SocketAddr) -> Self {
        Self::listen(upstream, true).await
    }

    async fn listen(upstream: SocketAddr, die_after_first: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let task = tokio::spawn(async move {
            let mut first = true;
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let lose_the_answer = std::mem::take(&mut first);
                let relay = tokio::spawn(async move {
                    if lose_the_answer {
                        let (mut from_client, _to_client) = client.split();
                        let (mut from_server, mut to_server) = server.split();
                        let forward = tokio::io::copy(&mut from_client, &mut to_server);
                        let mut answer = [0u8; 1];
                        // The server's first byte means it did the work; then hang up on the
                        // client without passing anything on.
                        tokio::select! {
                            _ = forward => {}
                            _ = from_server.read_exact(&mut answer) => {}
                        }
                    } else {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    let _ = client.shutdown().await;
                });
                if die_after_first {
                    // Stop listening only once the answer is lost, so that the client's retry
                    // cannot come back here.
                    let _ = relay.await;
                    return;
                }
            }
        });
        Self { url, task }
    }
}

impl Drop for AnswerLosingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A hot standby as the client sees one: every request, whatever its path, is answered 503
/// with `Retry-After: 1` and the standby body naming `active`.
pub struct StandbyServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    asked: Arc<Mutex<u64>>,
    task: JoinHandle<()>,
}

impl StandbyServer {
    /// Starts a standby on a free loopback port that names `active` as the active server
    /// (`None`: unknown, `"active": null`).
    pub async fn start(active: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let body = serde_json::json!({
            "detail": format!(
                "this server is a hot standby; the active server is {}",
                active.unwrap_or("unknown")
            ),
            "error": "standby",
            "status": "standby",
            "active": active,
        })
        .to_string();
        let asked: Arc<Mutex<u64>> = Arc::default();
        let counted = asked.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let body = body.clone();
                let counted = counted.clone();
                tokio::spawn(async move {
                    // A WebSocket upgrade is a request like any other: refused the same way.
                    while read_request(&mut stream).await.is_some() {
                        *counted.lock().unwrap() += 1;
                        let answer = format!(
                            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                             retry-after: 1\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { url, asked, task }
    }

    /// Requests answered so far.
    pub fn asked(&self) -> u64 {
        *self.asked.lock().unwrap()
    }
}

impl Drop for StandbyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `http://127.0.0.1:PORT` where nothing listens: a port the system just gave out and that was
/// closed again.
pub fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("an address");
    drop(listener);
    format!("http://{address}")
}
