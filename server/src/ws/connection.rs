//! One agent's socket: reader, pusher and writer (see the module doc of [`crate::ws`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::stream::FuturesUnordered;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_engine::{Delivery, IdMap, LeaseToken, MessageId, UnixMillis};
use tokio::sync::{mpsc, Notify};

use super::frames::{
    self, AckFrame, ClientFrame, ExtendFrame, NackFrame, Reply, SentFrame, SettledFrame,
};
use crate::api::wire::AgentStatus;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::inbox::{self, Settle};
use crate::limits;
use crate::registry::AgentRecord;
use crate::state::AppState;

/// Close code sent to a socket that a newer socket of the same agent replaced.
const CLOSE_REPLACED: u16 = 4000;
/// Close code "going away", sent when the server shuts down.
const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code "message too big", sent for a frame over [`limits::WS_FRAME_BYTES_MAX`].
const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;
/// Client frames handled at once per connection; the reader waits beyond it.
const FRAMES_IN_PROGRESS_MAX: usize = 256;

/// Optional query of `/ws/{agent}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// Lease length of pushed messages in seconds (default 300).
    #[serde(default)]
    lease_seconds: Option<u64>,
    /// Lower this connection's credit below the server's `--max-in-flight`.
    #[serde(default)]
    max_in_flight: Option<usize>,
}

/// `GET /ws/{agent}`: upgrades to an agent socket; 404 (JSON) before the upgrade when the agent
/// is unknown.
#[utoipa::path(get, path = "/ws/{agent}", tag = "websocket",
    params(("agent" = String, Path, description = "Agent name or id"), WsQuery),
    responses((status = 101, description = "Switching to the WebSocket protocol"),
              (status = 404, description = "Unknown agent")))]
pub async fn handler(
    State(state): State<AppState>,
    ApiPath(agent): ApiPath<String>,
    ApiQuery(query): ApiQuery<WsQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let agent = state.registry.require(&agent)?;
    let lease_ms = inbox::lease_ms(query.lease_seconds)?;
    let max_in_flight = query
        .max_in_flight
        .unwrap_or(state.settings.max_in_flight)
        .clamp(1, state.settings.max_in_flight);
    let upgrade = upgrade.map_err(|rejection| ApiError::Invalid {
        status: rejection.status(),
        detail: format!("not a WebSocket handshake: {}", rejection.body_text()),
    })?;
    let connection = state.sockets.number();
    Ok(upgrade
        .max_message_size(limits::WS_FRAME_BYTES_MAX)
        .read_buffer_size(limits::WS_READ_CHUNK_BYTES)
        .on_upgrade(move |socket| async move {
            let session = Arc::new(Session {
                state,
                agent,
                connection,
                lease_ms,
                max_in_flight,
                in_flight: Mutex::new(IdMap::default()),
                credit_returned: Notify::new(),
                closing: AtomicBool::new(false),
                closed: Notify::new(),
            });
            session.run(socket).await;
        }))
}

/// A pushed, unacknowledged message: its lease token, deadline and enqueue time.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    token: LeaseToken,
    deadline: UnixMillis,
    enqueued_at: UnixMillis,
}

struct Session {
    state: AppState,
    agent: Arc<AgentRecord>,
    /// Numbered before the client is told it is connected (see `Sockets::number`).
    connection: u64,
    lease_ms: u64,
    max_in_flight: usize,
    /// Pushed and not yet settled. A parking_lot mutex: held for map operations only, never
    /// across an `.await`.
    in_flight: Mutex<IdMap<InFlight>>,
    /// Notified when an ack or nack frees credit.
    credit_returned: Notify,
    closing: AtomicBool,
    closed: Notify,
}

type Outbox = mpsc::Sender<Message>;

impl Session {
    async fn run(self: Arc<Self>, socket: WebSocket) {
        let state = &self.state;
        let connection = self.connection;
        let replaced = state.sockets.attach(&self.agent.id, connection);
        state.registry.touch(&self.agent.id, None);
        tracing::debug!(agent = %self.agent.name, connection, "socket opened");
        let (sink, stream) = socket.split();
        let (outbox, outbox_rx) = mpsc::channel(limits::WS_OUTBOX_FRAMES_MAX);
        let writer = tokio::spawn(write_frames(sink, outbox_rx));
        let pusher = tokio::spawn(self.clone().push(outbox.clone()));
        let close = self.clone().read(stream, &outbox, &replaced).await;
        if let Some(close) = close {
            let _ = outbox.send(Message::Close(Some(close))).await;
        }
        let _ = pusher.await;
        self.give_back().await;
        drop(outbox);
        let _ = writer.await;
        if state.sockets.detach(&self.agent.id, connection) {
            state
                .registry
                .touch(&self.agent.id, Some(AgentStatus::Offline));
        }
        tracing::debug!(agent = %self.agent.name, connection, "socket closed");
    }

    /// Reads client frames until the socket ends, is replaced, or the server shuts down;
    /// returns the close frame to send, if any. Frames are answered concurrently (an ack or a
    /// send waits for its commit), up to [`FRAMES_IN_PROGRESS_MAX`] at once, inside this task:
    /// a task per frame cost more than the rest of an ack. When reading ends the socket is
    /// marked closing at once (the pusher stops leasing for it), and this returns once every
    /// frame read is answered, since those may still settle messages.
    async fn read(
        self: Arc<Self>,
        mut stream: SplitStream<WebSocket>,
        outbox: &Outbox,
        replaced: &Notify,
    ) -> Option<CloseFrame> {
        let mut shutdown = self.state.shutdown.clone();
        let mut in_progress = FuturesUnordered::new();
        let close = loop {
            let reading = in_progress.len() < FRAMES_IN_PROGRESS_MAX;
            let frame = tokio::select! {
                // Replacement and shutdown first (a flood of frames must not delay them), then
                // answers (a busy socket would otherwise read up to the cap before letting the
                // frames it read start), then the next frame.
                biased;
                _ = replaced.notified() => {
                    break Some(close_frame(CLOSE_REPLACED, "replaced by a newer connection of this agent"));
                }
                _ = stopping(&mut shutdown) => {
                    break Some(close_frame(CLOSE_GOING_AWAY, "server shutting down"));
                }
                Some(()) = in_progress.next(), if !in_progress.is_empty() => continue,
                frame = stream.next(), if reading => frame,
            };
            let text = match frame {
                Some(Err(error)) if is_over_size_limit(&error) => {
                    break Some(CloseFrame {
                        code: CLOSE_MESSAGE_TOO_BIG,
                        reason: format!(
                            "frame larger than {} bytes; send smaller messages",
                            limits::WS_FRAME_BYTES_MAX
                        )
                        .into(),
                    });
                }
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break None,
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Binary(_))) => {
                    let reply =
                        frames::error("binary frames are not supported; send JSON text", None);
                    if send(outbox, reply).await.is_err() {
                        break None;
                    }
                    continue;
                }
                Some(Ok(_)) => continue,
            };
            in_progress.push(self.clone().answer(text, outbox.clone()));
        };
        self.closing.store(true, Ordering::SeqCst);
        self.closed.notify_waiters();
        while in_progress.next().await.is_some() {}
        close
    }

    /// Handles one client frame and queues its reply.
    async fn answer(self: Arc<Self>, text: Utf8Bytes, outbox: Outbox) {
        let reply = self.handle(text.as_str(), &outbox).await;
        self.state.monitor.counters.ws_frame(reply.rejected);
        let _ = send_text(&outbox, reply.text).await;
    }

    /// Answers one client frame.
    async fn handle(self: &Arc<Self>, text: &str, outbox: &Outbox) -> Reply {
        let frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(error) => return Reply::error(format!("bad frame: {error}"), None),
        };
        let state = &self.state;
        match frame {
            ClientFrame::Heartbeat => {
                state.registry.touch(&self.agent.id, None);
                Reply::of(&json!({ "type": "heartbeat_ack" }))
            }
            ClientFrame::Ack(AckFrame { message_id }) => {
                let reply = self.settle(&message_id, Settle::Ack).await;
                reply_frame(reply, "acknowledged", &message_id)
            }
            ClientFrame::Nack(NackFrame {
                message_id,
                delay_seconds,
            }) => {
                let delay = delay_seconds.map(|s| s.saturating_mul(1000)).or(Some(0));
                let reply = self.settle(&message_id, Settle::Nack(delay)).await;
                reply_frame(reply, "requeued", &message_id)
            }
            ClientFrame::Extend(ExtendFrame {
                message_id,
                lease_seconds,
            }) => {
                let reply = match inbox::lease_ms(Some(lease_seconds)) {
                    Ok(lease_ms) => self.settle(&message_id, Settle::Extend(lease_ms)).await,
                    Err(error) => Err(error),
                };
                reply_frame(reply, "extended", &message_id)
            }
            ClientFrame::SendMessage(request) => {
                // `auto` and `capability:NAME` are routed, as over REST.
                match crate::routing::send(state, &self.agent.name, request).await {
                    Ok((enqueued, routed)) => {
                        let id = enqueued.id.to_ascii();
                        Reply::of(&SentFrame {
                            kind: "sent",
                            message_id: std::str::from_utf8(&id).expect("a message id is ASCII"),
                            recipient: &routed.name,
                            deduplicated: enqueued.deduplicated,
                            routed_to: routed.routed_to.as_deref(),
                            rule: routed.rule.as_deref(),
                            strategy: routed.strategy.map(|s| s.as_str()),
                            waiting_queue: routed.waiting_queue.as_deref(),
                        })
                    }
                    Err(error) => Reply::error(error.detail(), None),
                }
            }
            ClientFrame::SubscribeReceipts => {
                let events = state.receipts.subscribe(state);
                let session = self.clone();
                tokio::spawn(crate::receipts::feed::forward_to_socket(
                    events,
                    self.agent.name.clone(),
                    outbox.clone(),
                    async move { session.wait_closed().await },
                ));
                Reply::of(&json!({ "type": "subscribed", "stream": "receipts" }))
            }
        }
    }

    /// Resolves once the socket is closing (the receipt forwarder stops on it, so that its
    /// clone of the outbox does not keep the writer open).
    async fn wait_closed(&self) {
        loop {
            let closed = self.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.closing.load(Ordering::SeqCst) {
                return;
            }
            closed.await;
        }
    }

    /// Settles a message: with the token this socket holds when it pushed it, else (leased
    /// over REST, or pushed to an earlier socket) as the REST endpoints do.
    async fn settle(&self, id_text: &str, action: Settle) -> ApiResult<Option<UnixMillis>> {
        let Ok(id) = id_text.parse::<MessageId>() else {
            return Err(inbox::message_not_found(id_text));
        };
        let held = {
            let mut in_flight = self.in_flight.lock();
            match action {
                Settle::Extend(_) => in_flight.get(&id).copied(),
                Settle::Ack | Settle::Nack(_) => in_flight.remove(&id),
            }
        };
        let Some(held) = held else {
            return inbox::settle(&self.state, &self.agent, id_text, action).await;
        };
        if !matches!(action, Settle::Extend(_)) {
            self.credit_returned.notify_one();
        }
        let result =
            inbox::settle_with(&self.state, id, held.token, held.enqueued_at, action).await;
        if let (Settle::Extend(_), Ok(Some(deadline))) = (action, &result) {
            if let Some(entry) = self.in_flight.lock().get_mut(&id) {
                entry.deadline = *deadline;
            }
        }
        result
    }

    /// Leases from the inbox as credit allows and pushes what it gets.
    async fn push(self: Arc<Self>, outbox: Outbox) {
        let inbox = self.agent.inbox();
        let engine = self.state.engine.clone();
        while !self.closing.load(Ordering::SeqCst) {
            let credit = self.max_in_flight.saturating_sub(self.forget_lapsed());
            if credit == 0 {
                let returned = self.credit_returned.notified();
                let closed = self.closed.notified();
                tokio::select! {
                    _ = returned => {}
                    _ = closed => {}
                    _ = tokio::time::sleep(limits::WS_POLL_WAIT) => {}
                }
                continue;
            }
            // Stop waiting as soon as the socket closes, or the close (and the give-back of
            // every lease) would wait out the poll. Dropping `lease_wait` releases what it
            // leased. `notified()` counts a notification from its creation, so create it
            // before the last look at `closing`.
            let closed = self.closed.notified();
            if self.closing.load(Ordering::SeqCst) {
                return;
            }
            let waited = tokio::select! {
                waited = engine.lease_wait(&inbox, credit, Some(self.lease_ms), limits::WS_POLL_WAIT) => waited,
                _ = closed => return,
            };
            let deliveries = match waited {
                Ok(deliveries) => deliveries,
                Err(error) => {
                    let frame = frames::error(format!("cannot read the inbox: {error}"), None);
                    let _ = send(&outbox, frame).await;
                    tokio::time::sleep(limits::WS_POLL_WAIT).await;
                    continue;
                }
            };
            self.hold(&deliveries);
            if self.closing.load(Ordering::SeqCst) {
                return; // the reader gives them back
            }
            let now = self.state.engine.now_ms();
            self.state.monitor.delivered(&deliveries, now);
            let via = crate::receipts::Via::WebSocket;
            self.state
                .receipts
                .delivered(&deliveries, &self.agent.name, via, now);
            for delivery in &deliveries {
                if send_text(&outbox, frames::push_text(delivery))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }

    fn hold(&self, deliveries: &[Delivery]) {
        let mut in_flight = self.in_flight.lock();
        for delivery in deliveries {
            in_flight.insert(
                delivery.message.id,
                InFlight {
                    token: delivery.token,
                    deadline: delivery.lease_deadline,
                    enqueued_at: delivery.message.enqueued_at,
                },
            );
        }
    }

    /// Drops pushes whose lease ran out (the engine delivers them again) so that they no
    /// longer use credit; returns how many are still held.
    fn forget_lapsed(&self) -> usize {
        let now = self.state.engine.now_ms();
        let mut in_flight = self.in_flight.lock();
        in_flight.retain(|_, held| held.deadline > now);
        in_flight.len()
    }

    /// Returns every lease this socket still holds to the inbox, ready at once.
    async fn give_back(&self) {
        let held: Vec<(MessageId, LeaseToken)> = self
            .in_flight
            .lock()
            .drain()
            .map(|(id, held)| (id, held.token))
            .collect();
        if held.is_empty() {
            return;
        }
        if let Err(error) = self.state.engine.nack_batch(&held, Some(0)).await {
            tracing::warn!(agent = %self.agent.name, %error, "could not give leases back; they return when they run out");
        }
    }
}

fn reply_frame(
    result: ApiResult<Option<UnixMillis>>,
    kind: &'static str,
    message_id: &str,
) -> Reply {
    match result {
        Ok(deadline) => Reply::of(&SettledFrame {
            kind,
            message_id,
            lease_expires_at: deadline.map(crate::time::iso8601),
        }),
        Err(error) => Reply::error(error.detail(), Some(message_id)),
    }
}

/// Resolves when the server starts shutting down (never, if nobody can tell it to).
async fn stopping(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A read failed because the client's frame (or message) is over the size limit: the socket
/// is closed with a code saying so, not dropped as after a broken connection.
fn is_over_size_limit(error: &axum::Error) -> bool {
    std::error::Error::source(error)
        .and_then(|inner| inner.downcast_ref::<tungstenite::Error>())
        .is_some_and(|inner| matches!(inner, tungstenite::Error::Capacity(_)))
}

fn close_frame(code: u16, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }
}

async fn send(outbox: &Outbox, frame: Value) -> Result<(), ()> {
    send_text(outbox, frame.to_string()).await
}

async fn send_text(outbox: &Outbox, text: String) -> Result<(), ()> {
    outbox.send(Message::Text(text.into())).await.map_err(drop)
}

/// Owns the socket's sending half. Frames queued together are written together and flushed
/// once, so a burst of pushes costs one system call rather than one each. Before flushing it
/// yields once, so that frames other tasks are about to queue (replies to a burst of client
/// frames, the rest of a lease's pushes) join the same write.
async fn write_frames(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbox: mpsc::Receiver<Message>,
) {
    'frames: while let Some(first) = outbox.recv().await {
        let mut next = Some(first);
        let mut closing = false;
        let mut yielded = false;
        while let Some(message) = next.take() {
            closing |= matches!(message, Message::Close(_));
            if sink.feed(message).await.is_err() {
                break 'frames;
            }
            if !closing {
                next = outbox.try_recv().ok();
                if next.is_none() && !yielded {
                    yielded = true;
                    tokio::task::yield_now().await;
                    next = outbox.try_recv().ok();
                }
            }
        }
        if sink.flush().await.is_err() || closing {
            break;
        }
    }
    let _ = sink.close().await;
}
