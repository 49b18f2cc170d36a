//! Delivery receipts: what happened to each message, stage by stage, with times — queued,
//! delivered (each lease: when, to whom, which attempt, REST or WebSocket), nacked, acked,
//! dead-lettered or expired with the reason, replied to.
//!
//! Receipts live in a bounded [`book::Book`] in memory, saved in the background to the engine
//! ([`persist`]), so a restart or a failover to another server on the same storage finds the
//! stages recorded before it. They are a record for people and senders, not a source of
//! truth: where a message *is* comes from the engine, and [`status::status`] merges both, so a
//! message whose receipt is gone (forgotten past the limit) still has a status (with
//! `history_complete: false`). Dead letters and expiry happen inside the engine's timer, out
//! of sight of any handler: the status query notices them, and while anyone listens to the
//! feed a background watcher ([`maintenance`]) looks for them too.
//!
//! Every stage is also published on a broadcast feed: `GET /api/v1/feed` (server-sent events,
//! `switchboard tail`) shows all traffic, and an agent's WebSocket `subscribe_receipts` frame
//! gets the receipts of the messages it sent ([`feed::forward_to_socket`]).
//!
//! [`asks`] holds request/reply: replies to a question whose asker is waiting go to the
//! asker's reply queue, so `ask` takes its answer without disturbing the inbox. Open asks are
//! saved too ([`asks_persist`]).

pub mod asks;
pub mod asks_persist;
mod book;
pub mod feed;
mod maintenance;
pub mod persist;
pub mod status;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use switchboard_engine::{DeadReason, Delivery, MessageId, UnixMillis};
use tokio::sync::broadcast;

pub use book::{Receipt, Stage, StageKind};
pub use feed::ReceiptEvent;

use crate::api::wire::{Priority, SendMessageRequest};
use crate::registry::AgentRecord;
use crate::state::AppState;
use book::Book;

/// Messages whose receipts are kept; the oldest is forgotten first.
pub const RECEIPTS_MAX: usize = 100_000;
/// Stages kept per receipt (a message nacked over and over would otherwise grow without end).
pub const STAGES_PER_RECEIPT_MAX: usize = 64;
/// Stages room is made for up front: queued, delivered, acked.
const RECEIPT_STAGES_USUAL: usize = 3;
/// Feed events buffered for a slow listener before it misses some (and is told how many).
pub const FEED_EVENTS_BUFFERED_MAX: usize = 4096;
/// Longest content preview carried by a `queued` feed event, in characters.
pub const PREVIEW_CHARS_MAX: usize = 200;
/// How often the background task looks for dead letters, expiries and abandoned asks.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);
/// Open receipts checked against the engine per maintenance round.
pub const WATCH_MESSAGES_PER_ROUND_MAX: usize = 2000;

/// How a delivery reached its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Leased by a request (`GET /api/v1/messages/{agent}`).
    Rest,
    /// Pushed over the agent's WebSocket.
    WebSocket,
    /// Taken by a waiting `ask` from the reply queue.
    Ask,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Rest => "rest",
            Via::WebSocket => "websocket",
            Via::Ask => "ask",
        }
    }

    /// Reads [`Via::as_str`] back.
    fn parse(text: &str) -> Option<Via> {
        [Via::Rest, Via::WebSocket, Via::Ask]
            .into_iter()
            .find(|via| via.as_str() == text)
    }
}

/// What a receipt needs from a send request, taken before the request is consumed.
#[derive(Debug, Clone)]
pub struct Sent {
    priority: Priority,
    preview: String,
    reply_to: Option<String>,
    expires_in_hours: Option<u64>,
    expects_reply: bool,
}

impl Sent {
    /// True when the message is a question whose sender waits for the reply (it opens an ask).
    pub fn expects_reply(&self) -> bool {
        self.expects_reply
    }

    /// Notes what the receipt of `request` will need.
    pub fn of(request: &SendMessageRequest) -> Self {
        Self {
            priority: request.priority,
            preview: preview(&request.content),
            reply_to: request.reply_to.clone(),
            expires_in_hours: request.expires_in_hours,
            expects_reply: asks::expects_reply(&request.metadata),
        }
    }
}

fn preview(content: &str) -> String {
    let mut chars = content.chars();
    let mut text: String = chars.by_ref().take(PREVIEW_CHARS_MAX).collect();
    if chars.next().is_some() {
        text.push('…');
    }
    text
}

/// The receipts of recent messages, the live feed, and the open asks. Cheap to clone.
#[derive(Clone, Default)]
pub struct Receipts {
    inner: Arc<Inner>,
}

struct Inner {
    /// Shared with the writer that saves it (see [`persist`]).
    book: Arc<Mutex<Book>>,
    feed: broadcast::Sender<ReceiptEvent>,
    asks: asks::AskBook,
    maintenance_started: AtomicBool,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            book: Arc::new(Mutex::new(Book::default())),
            feed: broadcast::channel(FEED_EVENTS_BUFFERED_MAX).0,
            asks: asks::AskBook::default(),
            maintenance_started: AtomicBool::new(false),
        }
    }
}

impl Receipts {
    /// Records that message `id` from `sender` was stored for `recipient`, and publishes it.
    pub fn queued(&self, id: MessageId, sender: &str, recipient: &str, sent: Sent, at: UnixMillis) {
        let mut receipt = Receipt {
            sender: sender.to_string(),
            recipient: recipient.to_string(),
            expires_at: sent
                .expires_in_hours
                .map(|hours| at.saturating_add(hours.saturating_mul(3_600_000))),
            reply_to: sent.reply_to.clone(),
            stages: Vec::with_capacity(RECEIPT_STAGES_USUAL),
            stages_dropped: 0,
        };
        let stage = Stage::new(StageKind::Queued, at);
        receipt.stages.push(stage.clone());
        self.inner.book.lock().open(id, receipt);
        if self.listened() {
            let mut event = ReceiptEvent::new(id, sender, recipient, stage);
            event.priority = Some(sent.priority);
            event.preview = Some(sent.preview);
            event.reply_to = sent.reply_to;
            event.expects_reply = sent.expects_reply;
            let _ = self.inner.feed.send(event);
        }
    }

    /// Records the leases just handed to `agent`.
    pub fn delivered(&self, deliveries: &[Delivery], agent: &str, via: Via, at: UnixMillis) {
        for delivery in deliveries {
            let mut stage = Stage::new(StageKind::Delivered, at);
            stage.agent = Some(agent.to_string());
            stage.attempt = Some(delivery.message.attempts);
            stage.via = Some(via.as_str());
            self.add(delivery.message.id, stage);
        }
    }

    /// Records an ack by `agent`.
    pub fn acked(&self, id: MessageId, agent: Option<&str>, at: UnixMillis) {
        let mut stage = Stage::new(StageKind::Acked, at);
        stage.agent = agent.map(str::to_string);
        self.add(id, stage);
    }

    /// Records a nack by `agent`.
    pub fn nacked(&self, id: MessageId, agent: Option<&str>, at: UnixMillis) {
        let mut stage = Stage::new(StageKind::Nacked, at);
        stage.agent = agent.map(str::to_string);
        self.add(id, stage);
    }

    /// Records that the message died (once: a second report is ignored). `attempts` and
    /// `max_attempts` explain a dead letter.
    pub fn died(&self, id: MessageId, reason: DeadReason, at: UnixMillis, attempts: u32) {
        let (kind, why) = match reason {
            DeadReason::MaxAttempts => (
                StageKind::DeadLettered,
                format!(
                    "max_attempts: delivered {attempts} times without an ack; redrive it from \
                     the dead letters to deliver it again"
                ),
            ),
            DeadReason::Expired => (
                StageKind::Expired,
                "expired: its time to live ran out before it was acked".to_string(),
            ),
        };
        let mut stage = Stage::new(kind, at);
        stage.reason = Some(why);
        self.add_if(id, stage, |receipt| !receipt.is_final());
    }

    /// Records that `reply` answers `question`.
    pub fn replied(&self, question: MessageId, reply: MessageId, by: &str, at: UnixMillis) {
        let mut stage = Stage::new(StageKind::Replied, at);
        stage.agent = Some(by.to_string());
        stage.related_message_id = Some(reply.to_string());
        self.add(question, stage);
    }

    /// Records that `id` was moved into its recipient's inbox as `copy`.
    pub fn rerouted(&self, id: MessageId, copy: MessageId, at: UnixMillis) {
        let mut stage = Stage::new(StageKind::Rerouted, at);
        stage.related_message_id = Some(copy.to_string());
        stage.reason = Some("the asker stopped waiting; moved to its inbox".into());
        self.add(id, stage);
    }

    /// Records that the pane copy of `id` for `agent` was refused for `reason` (nothing typed;
    /// the message stays in the queue).
    pub fn pane_refused(&self, id: MessageId, agent: &str, reason: &str, at: UnixMillis) {
        let mut stage = Stage::new(StageKind::PaneRefused, at);
        stage.agent = Some(agent.to_string());
        stage.reason = Some(format!("refused: {reason}; the message stays in the queue"));
        self.add(id, stage);
    }

    /// A copy of a message's receipt, if it is still kept.
    pub fn get(&self, id: MessageId) -> Option<Receipt> {
        self.inner.book.lock().get(id)
    }

    /// Whether message `id` was for `agent` (see [`Receipt::delivered_to`]); `None` when its
    /// receipt is not kept (any more).
    pub fn delivered_to(&self, id: MessageId, agent: &str) -> Option<bool> {
        self.inner
            .book
            .lock()
            .get_ref(id)
            .map(|receipt| receipt.delivered_to(agent))
    }

    /// Listens to every stage of every message from now on, and makes sure the watcher that
    /// notices dead letters and expiry runs.
    pub fn subscribe(&self, state: &AppState) -> broadcast::Receiver<ReceiptEvent> {
        self.start_maintenance(state);
        self.inner.feed.subscribe()
    }

    /// The open asks.
    pub fn asks(&self) -> &asks::AskBook {
        &self.inner.asks
    }

    /// The book, for the writer that saves it.
    fn book(&self) -> Arc<Mutex<Book>> {
        self.inner.book.clone()
    }

    /// Starts the background task once (see [`maintenance`]).
    pub fn start_maintenance(&self, state: &AppState) {
        if !self.inner.maintenance_started.swap(true, Ordering::SeqCst) {
            tokio::spawn(maintenance::run(state.clone()));
        }
    }

    fn listened(&self) -> bool {
        self.inner.feed.receiver_count() > 0
    }

    fn add(&self, id: MessageId, stage: Stage) {
        self.add_if(id, stage, |_| true);
    }

    /// Adds a stage when the receipt is kept and `wanted` says yes, in one critical section.
    fn add_if(&self, id: MessageId, stage: Stage, wanted: impl FnOnce(&Receipt) -> bool) {
        let listened = self.listened();
        let event = {
            let mut book = self.inner.book.lock();
            let Some(receipt) = book.get_ref(id) else {
                return;
            };
            if !wanted(receipt) {
                return;
            }
            // Only the recipient settles its messages: it is the one who acked or nacked.
            let mut stage = stage;
            if matches!(stage.stage, StageKind::Acked | StageKind::Nacked) && stage.agent.is_none()
            {
                stage.agent = Some(receipt.recipient.clone());
            }
            let published = listened.then(|| stage.clone());
            let Some(receipt) = book.push(id, stage) else {
                return;
            };
            published.map(|stage| {
                let mut event = ReceiptEvent::new(id, &receipt.sender, &receipt.recipient, stage);
                event.reply_to = receipt.reply_to.clone();
                event
            })
        };
        if let Some(event) = event {
            let _ = self.inner.feed.send(event);
        }
    }

    /// Open receipts to check against the engine (see [`book::Book::open_ids`]).
    fn open_ids(&self, from: usize, limit: usize) -> (Vec<MessageId>, usize) {
        self.inner.book.lock().open_ids(from, limit)
    }
}

/// The queue a message from `sender` for `recipient` goes to: its reply queue when the message
/// answers a question the recipient is waiting on and `sender` is an agent the question was
/// for (see [`answers`]), else its inbox. A message with that `reply_to` from anyone else is an
/// ordinary message: message ids are guessable, and the asker must not take a stranger's
/// message as the answer.
pub async fn queue_for(
    state: &AppState,
    reply_to: Option<&str>,
    sender: &str,
    recipient: &AgentRecord,
) -> String {
    let now = state.engine.now_ms();
    let Some(reply_queue) = state
        .receipts
        .asks()
        .reply_queue(reply_to, &recipient.id, now)
    else {
        return recipient.inbox();
    };
    let question = reply_to.and_then(|text| text.parse::<MessageId>().ok());
    match question {
        Some(question) if answers(state, question, sender).await => reply_queue,
        _ => recipient.inbox(),
    }
}

/// True when `sender` may answer message `question`: the question was for it (its receipt
/// says so) or, once the receipt is gone (past the book's limit), the question is
/// still in `sender`'s inbox. Unknown means no.
pub async fn answers(state: &AppState, question: MessageId, sender: &str) -> bool {
    if let Some(delivered) = state.receipts.delivered_to(question, sender) {
        return delivered;
    }
    let Some(agent) = state.registry.resolve(sender) else {
        return false;
    };
    match state.engine.message(question).await {
        Ok(Some((message, _))) => *message.queue == agent.inbox(),
        _ => false,
    }
}

/// Records a message just stored: its receipt, the ask it opens when its sender waits for a
/// reply, and the reply stage of the question it answers (only when `sender` was one the
/// question was for: anyone else's `reply_to` is no answer).
pub fn on_sent(state: &AppState, id: MessageId, sender: &str, recipient: &AgentRecord, sent: Sent) {
    let now = state.engine.now_ms();
    let expects_reply = sent.expects_reply;
    let reply_to = sent.reply_to.clone();
    let answered = reply_to
        .as_deref()
        .and_then(|text| text.parse::<MessageId>().ok())
        .filter(|question| state.receipts.delivered_to(*question, sender) == Some(true));
    state
        .receipts
        .queued(id, sender, &recipient.name, sent, now);
    if expects_reply {
        if let Some(asker) = state.registry.resolve(sender) {
            state.receipts.asks().open(id, &asker.id, now);
            state.receipts.start_maintenance(state);
        }
    }
    if let Some(question) = answered {
        state.receipts.replied(question, id, sender, now);
    }
}

/// Records the death of message `id` if the engine holds it as a dead letter. Best effort: a
/// failed read only delays the news until the next status query or watcher round.
pub async fn note_death(state: &AppState, id: MessageId) {
    if let Err(error) = maintenance::check(state, id).await {
        tracing::debug!(%id, %error, "could not check whether a message died");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent() -> Sent {
        Sent {
            priority: Priority::High,
            preview: "hello".into(),
            reply_to: None,
            expires_in_hours: Some(1),
            expects_reply: false,
        }
    }

    #[test]
    fn stages_are_recorded_in_order_and_published_to_listeners() {
        let receipts = Receipts::default();
        let mut feed = receipts.inner.feed.subscribe();
        receipts.queued(MessageId(1), "alice", "bob", sent(), 1000);
        receipts.nacked(MessageId(1), Some("bob"), 2000);
        receipts.acked(MessageId(1), Some("bob"), 3000);
        let receipt = receipts.get(MessageId(1)).unwrap();
        let kinds: Vec<StageKind> = receipt.stages.iter().map(|s| s.stage).collect();
        assert_eq!(
            kinds,
            [StageKind::Queued, StageKind::Nacked, StageKind::Acked]
        );
        assert_eq!(receipt.expires_at, Some(1000 + 3_600_000));
        let first = feed.try_recv().unwrap();
        assert_eq!(first.preview.as_deref(), Some("hello"));
        assert_eq!(feed.try_recv().unwrap().stage.stage, StageKind::Nacked);
    }

    #[test]
    fn death_is_recorded_once_and_never_after_an_ack() {
        let receipts = Receipts::default();
        receipts.queued(MessageId(1), "alice", "bob", sent(), 1000);
        receipts.died(MessageId(1), DeadReason::MaxAttempts, 2000, 3);
        receipts.died(MessageId(1), DeadReason::MaxAttempts, 2500, 3);
        let receipt = receipts.get(MessageId(1)).unwrap();
        assert_eq!(receipt.stages.len(), 2);
        assert!(receipt.stages[1]
            .reason
            .as_ref()
            .unwrap()
            .contains("3 times"));
        receipts.queued(MessageId(2), "alice", "bob", sent(), 1000);
        receipts.acked(MessageId(2), Some("bob"), 1500);
        receipts.died(MessageId(2), DeadReason::Expired, 2000, 1);
        assert_eq!(receipts.get(MessageId(2)).unwrap().stages.len(), 2);
    }

    #[test]
    fn preview_is_cut_at_the_limit() {
        let long = "x".repeat(PREVIEW_CHARS_MAX + 5);
        assert_eq!(preview(&long).chars().count(), PREVIEW_CHARS_MAX + 1);
        assert_eq!(preview("short"), "short");
    }
}
