//! The load generator over WebSocket: consumers receive pushes and ack them with `ack` frames;
//! producers send `send_message` frames, a window of them in flight. Each socket is opened on
//! the active server of `--server URL[,URL...]`, and opened again (on the new active server)
//! when it is lost, so a load keeps running across a failover: what was in flight is counted
//! (consumer errors, send errors), not a reason to stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as Frame};

use super::client::{seq_of, Agent, Http, ProducerJob, ACTIVE_SEARCH_WINDOW};
use super::tracker::Tracker;
use crate::cli::client::servers::{on_active, standby_in, Reply};

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Longest wait for the answers to the sends still in flight when a producer is done.
const REPLIES_WAIT: Duration = Duration::from_secs(30);
/// Bytes a socket reads at a time: the default 128 KiB is zeroed before every read, costly
/// for small frames.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Opens `/ws/{agent}` on the active server. `origin` is the server of the previous socket
/// (set to this one's): a socket opened on another counts as moved.
pub async fn connect(
    http: &Http,
    agent: &Agent,
    origin: &mut Option<String>,
) -> Result<WsStream, String> {
    let reached = on_active(http.servers(), ACTIVE_SEARCH_WINDOW, |base| {
        let url = format!("{}/ws/{}", base.replacen("http", "ws", 1), agent.id);
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES);
        // Small frames (acks, sends) must leave at once, not wait for Nagle's algorithm.
        let disable_nagle = true;
        async move {
            match tokio_tungstenite::connect_async_with_config(&url, Some(config), disable_nagle)
                .await
            {
                Ok((socket, _)) => Reply::Answered(Ok((base, socket))),
                Err(WsError::Io(error)) => Reply::Unreachable {
                    cause: error.to_string(),
                },
                Err(WsError::Http(response)) => {
                    let body: Value = response
                        .body()
                        .as_deref()
                        .and_then(|body| serde_json::from_slice(body).ok())
                        .unwrap_or(Value::Null);
                    match standby_in(response.status().as_u16(), &body) {
                        Some(active) => Reply::Standby { active },
                        None => Reply::Answered(Err(format!(
                            "connect {url}: answered {}: {body}",
                            response.status()
                        ))),
                    }
                }
                Err(error) => Reply::Answered(Err(format!("connect {url}: {error}"))),
            }
        }
    })
    .await;
    match reached {
        Ok(Ok((base, socket))) => {
            if origin.as_deref().is_some_and(|before| before != base) {
                http.count_move();
            }
            *origin = Some(base);
            Ok(socket)
        }
        Ok(Err(error)) => Err(error),
        Err(none) => Err(format!(
            "connect /ws/{}: no active server: {}",
            agent.id,
            none.summary()
        )),
    }
}

/// Receives `agent`'s pushes and acks them, on `socket` and then on every socket opened again
/// after a loss, until `stop`. A message pushed and not acked on a lost socket comes back
/// when its lease ends.
pub async fn ws_consumer(
    http: Http,
    agent: Agent,
    socket: WsStream,
    tracker: Arc<Tracker>,
    stop: Arc<AtomicBool>,
) {
    let mut origin = Some(http.base());
    let mut socket = Some(socket);
    while !stop.load(Ordering::Relaxed) {
        let open = match socket.take() {
            Some(open) => open,
            None => match connect(&http, &agent, &mut origin).await {
                Ok(open) => open,
                Err(error) => {
                    tracker.consumer_error();
                    eprintln!("loadgen: consumer {} stops: {error}", agent.name);
                    return;
                }
            },
        };
        consume(open, &tracker, &stop).await;
    }
}

/// Receives and acks on one socket until `stop` or the socket is lost (counted).
async fn consume(socket: WsStream, tracker: &Tracker, stop: &AtomicBool) {
    let (mut sink, mut stream) = socket.split();
    while !stop.load(Ordering::Relaxed) {
        let frame = match tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
            Err(_) => continue,
            Ok(None) | Ok(Some(Err(_))) => {
                tracker.consumer_error();
                return;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Frame::Text(text) = frame else { continue };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            tracker.consumer_error();
            continue;
        };
        if value["type"] == "error" {
            // An ack the server refused (or a frame it could not read).
            tracker.consumer_error();
            continue;
        }
        if value["type"] != "message" {
            continue;
        }
        if let Some(seq) = seq_of(&value) {
            tracker.received(seq);
        }
        if let Some(id) = value["id"].as_str() {
            let ack = json!({"type": "ack", "message_id": id}).to_string();
            if sink.send(Frame::Text(ack.into())).await.is_err() {
                tracker.consumer_error();
                return;
            }
        }
    }
    let _ = sink.close().await;
}

/// Sends as `producer` with `send_message` frames, on `socket` and then on every socket
/// opened again after a loss, until the shared counter runs out.
pub async fn produce_ws(job: ProducerJob, producer: Agent, socket: WsStream, window: usize) {
    let mut origin = Some(job.http.base());
    let mut socket = Some(socket);
    loop {
        let open = match socket.take() {
            Some(open) => open,
            None => match connect(&job.http, &producer, &mut origin).await {
                Ok(open) => open,
                Err(error) => {
                    eprintln!("loadgen: producer {} stops: {error}", producer.name);
                    return;
                }
            },
        };
        if produce_on(&job, open, window).await == Socket::Done {
            return;
        }
    }
}

/// How a producer's socket ended.
#[derive(Debug, PartialEq, Eq)]
enum Socket {
    /// Every message was taken and every send answered.
    Done,
    /// The connection was lost; the sends in flight were counted as errors.
    Lost,
}

/// Sends on one socket, keeping up to `window` sends in flight.
async fn produce_on(job: &ProducerJob, socket: WsStream, window: usize) -> Socket {
    let (mut sink, mut stream) = socket.split();
    let credit = Arc::new(Semaphore::new(window));
    let replies = {
        let credit = credit.clone();
        let tracker = job.tracker.clone();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                let Frame::Text(text) = frame else { continue };
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                match value["type"].as_str() {
                    Some("sent") => tracker.sent(true),
                    Some("error") => tracker.sent(false),
                    _ => continue,
                }
                credit.add_permits(1);
            }
            // The connection is gone: nobody will answer what is in flight.
            credit.close();
        })
    };
    let mut ticker = job.interval.map(tokio::time::interval);
    let mut ended = Socket::Done;
    loop {
        // Credit first, then a number: a number taken is a message this socket sends.
        match credit.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => {
                ended = Socket::Lost;
                break;
            }
        }
        let seq = job.next.fetch_add(1, Ordering::Relaxed);
        if seq >= job.total {
            credit.add_permits(1);
            break;
        }
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        let agent = &job.agents[seq as usize % job.agents.len()];
        let frame = json!({
            "type": "send_message",
            "recipient": agent.name,
            "content": format!("lg:{}:{}:{}", job.run_id, seq, job.filler),
            "priority": "medium",
            "metadata": {"loadgen_seq": seq},
        });
        job.tracker.sending(seq);
        if sink
            .send(Frame::Text(frame.to_string().into()))
            .await
            .is_err()
        {
            job.tracker.sent(false);
            credit.add_permits(1);
            ended = Socket::Lost;
            break;
        }
    }
    // Wait for the answers to every send before closing.
    let answered = tokio::time::timeout(REPLIES_WAIT, credit.acquire_many(window as u32)).await;
    if !matches!(answered, Ok(Ok(_))) {
        // Sends in flight on a lost (or silent) socket: outcome unknown, counted as failed.
        let unanswered = window.saturating_sub(credit.available_permits());
        (0..unanswered).for_each(|_| job.tracker.sent(false));
        ended = Socket::Lost;
    }
    replies.abort();
    let _ = sink.close().await;
    ended
}
