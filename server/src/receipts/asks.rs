//! Request/reply: a question sent with `metadata.expects_reply = true` by a registered agent
//! opens an *ask*; while the asker waits (`GET /api/v1/messages/{id}/reply`), replies to the
//! question (`reply_to` = its id) go to the asker's reply queue `replies:<agent id>` instead of
//! its inbox. `ask` then takes its answer from there and leaves the inbox alone: leasing the
//! inbox to look for the answer would spend a delivery attempt of every message ahead of it.
//!
//! An ask ends when its answer is taken, when the asker gives up (`DELETE .../reply`), or
//! [`ASK_IDLE_MS`] after its last poll (the asker died). Replies that arrive for an ask that
//! ended, or that one poll leased for another ask of the same agent and nobody took, are moved
//! into the asker's inbox, so a reply is never lost because its asker stopped waiting.
//!
//! Open asks are saved in the engine ([`super::asks_persist`]) before the question's send is
//! answered, so after a restart (or a failover to another server on the same storage) they
//! are open again, each for a fresh [`ASK_IDLE_MS`] in which its asker reconnects: replies
//! sent meanwhile still go to the reply queue, where the reconnected `ask` takes them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use switchboard_engine::{Delivery, MessageId, NewMessage, UnixMillis};

use super::{Sent, Via};
use crate::api::wire::{InboxMessage, Metadata, Priority};
use crate::durable::journal::{Pending, Ticket};
use crate::error::ApiResult;
use crate::inbox::{inbox_message, InboxPayload};
use crate::registry::AgentRecord;
use crate::state::AppState;

/// The metadata key that marks a question whose sender waits for a reply.
pub const EXPECTS_REPLY_KEY: &str = "expects_reply";
/// Asks open at once; beyond it new questions get no reply queue (replies go to the inbox).
pub const ASKS_OPEN_MAX: usize = 10_000;
/// How long an ask stays open after its last poll ends, in milliseconds.
pub const ASK_IDLE_MS: u64 = 30_000;
/// Lease on a reply taken from a reply queue, in milliseconds: long enough for the asker's
/// next poll to collect a reply that another poll of the same agent picked up.
pub const REPLY_LEASE_MS: u64 = 10 * 60 * 1000;
/// Replies leased from a reply queue at once.
pub const REPLIES_PER_LEASE_MAX: usize = 100;
/// Longest single wait on the reply queue inside a poll, so a reply held for this ask by
/// another poll is noticed soon.
const POLL_SLICE: Duration = Duration::from_secs(1);

/// True when the metadata marks a question that expects a reply.
pub fn expects_reply(metadata: &Metadata) -> bool {
    metadata
        .get(EXPECTS_REPLY_KEY)
        .and_then(serde_json::Value::as_bool)
        == Some(true)
}

/// Prefix of the reply queues (internal: monitoring does not list them as the user's).
pub const REPLY_QUEUE_PREFIX: &str = "replies:";

/// The engine queue holding the replies for asks of the agent with this id.
pub fn replies_queue(agent_id: &str) -> String {
    format!("{REPLY_QUEUE_PREFIX}{agent_id}")
}

struct Waiter {
    asker_id: String,
    idle_deadline: UnixMillis,
    /// Replies to this question that a poll for another question leased.
    held: Vec<Delivery>,
}

/// The open asks, by question id.
#[derive(Default)]
pub struct AskBook {
    /// A parking_lot mutex: held for map operations only, never across an `.await`. Shared
    /// with the writer that saves the asks (see [`super::asks_persist`]).
    asks: Arc<Mutex<Asks>>,
}

/// What the [`AskBook`]'s lock guards.
#[derive(Default)]
pub struct Asks {
    waiters: HashMap<MessageId, Waiter>,
    /// Opened and closed asks not saved yet.
    pub(super) pending: Pending<super::asks_persist::Change>,
}

impl Asks {
    /// The open asks: question and asker id.
    pub(super) fn iter(&self) -> impl Iterator<Item = (MessageId, &str)> {
        self.waiters
            .iter()
            .map(|(question, waiter)| (*question, waiter.asker_id.as_str()))
    }

    fn close(&mut self, question: MessageId) -> Option<Waiter> {
        let waiter = self.waiters.remove(&question)?;
        self.pending
            .push(|| super::asks_persist::Change::Closed { question });
        Some(waiter)
    }
}

impl AskBook {
    /// Opens (or keeps open) the ask of `question` by the agent `asker_id` until
    /// `until` plus [`ASK_IDLE_MS`]; false when [`ASKS_OPEN_MAX`] asks are open.
    pub fn open(&self, question: MessageId, asker_id: &str, until: UnixMillis) -> bool {
        let mut asks = self.asks.lock();
        let idle_deadline = until.saturating_add(ASK_IDLE_MS);
        if let Some(waiter) = asks.waiters.get_mut(&question) {
            waiter.idle_deadline = waiter.idle_deadline.max(idle_deadline);
            return true;
        }
        if asks.waiters.len() >= ASKS_OPEN_MAX {
            return false;
        }
        asks.waiters.insert(
            question,
            Waiter {
                asker_id: asker_id.to_string(),
                idle_deadline,
                held: Vec::new(),
            },
        );
        asks.pending.push(|| super::asks_persist::Change::Opened {
            question,
            asker_id: asker_id.to_string(),
        });
        true
    }

    /// The queue a reply to `reply_to` for the agent `recipient_id` goes to, when that agent
    /// is waiting for it; `None` means the recipient's inbox.
    pub fn reply_queue(
        &self,
        reply_to: Option<&str>,
        recipient_id: &str,
        now: UnixMillis,
    ) -> Option<String> {
        let question: MessageId = reply_to?.parse().ok()?;
        let asks = self.asks.lock();
        let waiter = asks.waiters.get(&question)?;
        (waiter.asker_id == recipient_id && waiter.idle_deadline > now)
            .then(|| replies_queue(recipient_id))
    }

    /// Open asks.
    pub fn len(&self) -> usize {
        self.asks.lock().waiters.len()
    }

    /// What to wait on for the asks opened so far to be saved (`None`: they are not saved).
    pub fn saved(&self) -> Option<Ticket> {
        self.asks.lock().pending.ticket()
    }

    /// The asks, for the writer that saves them.
    pub(super) fn shared(&self) -> Arc<Mutex<Asks>> {
        self.asks.clone()
    }

    fn take_held(&self, question: MessageId) -> Option<Delivery> {
        let mut asks = self.asks.lock();
        let held = &mut asks.waiters.get_mut(&question)?.held;
        (!held.is_empty()).then(|| held.remove(0))
    }

    /// Keeps a leased reply for the open ask it answers; gives it back when there is none.
    fn hold(&self, question: MessageId, asker_id: &str, reply: Delivery) -> Option<Delivery> {
        match self.asks.lock().waiters.get_mut(&question) {
            Some(waiter) if waiter.asker_id == asker_id => {
                waiter.held.push(reply);
                None
            }
            _ => Some(reply),
        }
    }

    /// Ends an ask; returns the replies it still held.
    fn close(&self, question: MessageId) -> Vec<Delivery> {
        self.asks
            .lock()
            .close(question)
            .map(|waiter| waiter.held)
            .unwrap_or_default()
    }

    /// Ends the asks idle past their deadline; returns each asker with the replies it held.
    fn close_idle(&self, now: UnixMillis) -> Vec<(String, Vec<Delivery>)> {
        let mut asks = self.asks.lock();
        let idle: Vec<MessageId> = asks
            .waiters
            .iter()
            .filter(|(_, waiter)| waiter.idle_deadline <= now)
            .map(|(question, _)| *question)
            .collect();
        idle.into_iter()
            .filter_map(|question| asks.close(question))
            .map(|waiter| (waiter.asker_id, waiter.held))
            .collect()
    }
}

/// Waits up to `wait` for the reply to `question` asked by `asker`, keeping the ask open;
/// takes (acks) the reply and ends the ask when it comes.
pub async fn poll(
    state: &AppState,
    question: MessageId,
    asker: &AgentRecord,
    wait: Duration,
) -> ApiResult<Option<InboxMessage>> {
    let asks = state.receipts.asks();
    let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    asks.open(
        question,
        &asker.id,
        state.engine.now_ms().saturating_add(wait_ms),
    );
    state.receipts.start_maintenance(state);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(reply) = asks.take_held(question) {
            return take(state, question, asker, reply).await.map(Some);
        }
        let slice = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .min(POLL_SLICE);
        let replies = replies_queue(&asker.id);
        let waiting =
            state
                .engine
                .lease_wait(&replies, REPLIES_PER_LEASE_MAX, Some(REPLY_LEASE_MS), slice);
        let deliveries =
            crate::shutdown::unless_stopping(&state.shutdown, waiting, || Ok(Vec::new())).await?;
        let now = state.engine.now_ms();
        state
            .receipts
            .delivered(&deliveries, &asker.name, Via::Ask, now);
        if let Some(reply) = sort(state, asker, deliveries, Some(question)).await? {
            return take(state, question, asker, reply).await.map(Some);
        }
        // On shutdown the poll ends as if its wait had (see `unless_stopping`).
        if tokio::time::Instant::now() >= deadline || *state.shutdown.borrow() {
            return Ok(None);
        }
    }
}

/// Ends the ask of `question` by `asker` (it stopped waiting): replies already there move to
/// its inbox. Returns how many replies were sorted.
pub async fn cancel(
    state: &AppState,
    question: MessageId,
    asker: &AgentRecord,
) -> ApiResult<usize> {
    let held = state.receipts.asks().close(question);
    let mut moved = held.len();
    for reply in held {
        move_to_inbox(state, asker, reply).await?;
    }
    moved += drain(state, asker).await?;
    Ok(moved)
}

/// Ends the asks whose askers stopped polling, moving their replies into the inboxes.
pub async fn close_idle(state: &AppState) {
    let idle = state.receipts.asks().close_idle(state.engine.now_ms());
    for (asker_id, held) in idle {
        let Some(asker) = state.registry.resolve(&asker_id) else {
            continue; // the agent was removed; its queues went with it
        };
        for reply in held {
            if let Err(error) = move_to_inbox(state, &asker, reply).await {
                tracing::warn!(agent = %asker.name, %error, "could not move a reply to the inbox");
            }
        }
        if let Err(error) = drain(state, &asker).await {
            tracing::warn!(agent = %asker.name, %error, "could not drain a reply queue");
        }
    }
}

/// Acks the answer, records it, ends the ask (moving duplicate answers to the inbox).
async fn take(
    state: &AppState,
    question: MessageId,
    asker: &AgentRecord,
    reply: Delivery,
) -> ApiResult<InboxMessage> {
    state.engine.ack(reply.message.id, reply.token).await?;
    let now = state.engine.now_ms();
    // The answer reaches its asker here, not through the inbox paths that count the rest.
    state.monitor.delivered(std::slice::from_ref(&reply), now);
    state.monitor.acked(reply.message.enqueued_at, now);
    state
        .receipts
        .acked(reply.message.id, Some(&asker.name), now);
    for duplicate in state.receipts.asks().close(question) {
        move_to_inbox(state, asker, duplicate).await?;
    }
    Ok(inbox_message(&reply))
}

/// Empties `asker`'s reply queue: replies for its open asks are held for them, the rest move
/// to its inbox. Returns how many replies it sorted.
async fn drain(state: &AppState, asker: &AgentRecord) -> ApiResult<usize> {
    let queue = replies_queue(&asker.id);
    let mut sorted = 0;
    loop {
        // Held replies stay leased and moved ones are acked, so each round takes new ones.
        let deliveries = state
            .engine
            .lease(&queue, REPLIES_PER_LEASE_MAX, Some(REPLY_LEASE_MS))
            .await?;
        if deliveries.is_empty() {
            return Ok(sorted);
        }
        sorted += deliveries.len();
        sort(state, asker, deliveries, None).await?;
    }
}

/// Sorts leased replies: the first answer to `question` is returned, answers to other open
/// asks of `asker` are held for them, everything else moves to the inbox.
async fn sort(
    state: &AppState,
    asker: &AgentRecord,
    deliveries: Vec<Delivery>,
    question: Option<MessageId>,
) -> ApiResult<Option<Delivery>> {
    let mut answer = None;
    for delivery in deliveries {
        let answers: Option<MessageId> = InboxPayload::of(&delivery.message)
            .reply_to
            .and_then(|text| text.parse().ok());
        match answers {
            Some(id) if Some(id) == question && answer.is_none() => answer = Some(delivery),
            Some(id) => {
                if let Some(orphan) = state.receipts.asks().hold(id, &asker.id, delivery) {
                    move_to_inbox(state, asker, orphan).await?;
                }
            }
            None => move_to_inbox(state, asker, delivery).await?,
        }
    }
    Ok(answer)
}

/// Moves a leased reply into `asker`'s inbox: a copy is stored there (same content, priority,
/// remaining lifetime and attempts allowed), then the original is acked.
async fn move_to_inbox(state: &AppState, asker: &AgentRecord, reply: Delivery) -> ApiResult<()> {
    let message = &reply.message;
    let now = state.engine.now_ms();
    let ttl_ms = match message.expires_at {
        // Already expired: one millisecond, so the engine expires it as usual.
        Some(at) => Some(at.saturating_sub(now).max(1)),
        None => Some(0),
    };
    let copy = NewMessage {
        payload: message.payload.to_vec(),
        priority: message.priority,
        ttl_ms,
        max_attempts: Some(message.max_attempts),
        ..NewMessage::default()
    };
    let stored = state.engine.enqueue(&asker.inbox(), copy).await?;
    if let Err(error) = state.engine.ack(message.id, reply.token).await {
        // The copy is stored; at worst the original comes back and moves again (a duplicate,
        // never a loss).
        tracing::warn!(id = %message.id, %error, "moved reply: could not ack the original");
    }
    let payload = InboxPayload::of(message);
    state.receipts.rerouted(message.id, stored.id, now);
    let sent = Sent {
        priority: Priority::from_engine(message.priority),
        preview: super::preview(&payload.content),
        reply_to: payload.reply_to,
        expires_in_hours: None,
        expects_reply: false,
    };
    state
        .receipts
        .queued(stored.id, &payload.sender, &asker.name, sent, now);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_go_to_the_reply_queue_only_while_the_asker_waits() {
        let asks = AskBook::default();
        let question = MessageId(42);
        assert!(asks.open(question, "agent-a", 1_000));
        let text = question.to_string();
        assert_eq!(
            asks.reply_queue(Some(&text), "agent-a", 1_000),
            Some("replies:agent-a".into())
        );
        // Another agent's reply to the same id goes to that agent's inbox.
        assert_eq!(asks.reply_queue(Some(&text), "agent-b", 1_000), None);
        // After the idle deadline the ask no longer counts.
        assert_eq!(
            asks.reply_queue(Some(&text), "agent-a", 1_000 + ASK_IDLE_MS),
            None
        );
        assert_eq!(asks.reply_queue(Some("not an id"), "agent-a", 1_000), None);
        assert_eq!(asks.reply_queue(None, "agent-a", 1_000), None);
    }

    #[test]
    fn idle_asks_are_closed_and_fresh_ones_kept() {
        let asks = AskBook::default();
        asks.open(MessageId(1), "a", 0);
        asks.open(MessageId(2), "a", 10 * ASK_IDLE_MS);
        let closed = asks.close_idle(ASK_IDLE_MS);
        assert_eq!(closed.len(), 1);
        assert_eq!(asks.len(), 1);
    }

    #[test]
    fn expects_reply_needs_a_true_boolean() {
        let mut metadata = Metadata::new();
        assert!(!expects_reply(&metadata));
        metadata.insert(EXPECTS_REPLY_KEY.into(), "yes".into());
        assert!(!expects_reply(&metadata));
        metadata.insert(EXPECTS_REPLY_KEY.into(), true.into());
        assert!(expects_reply(&metadata));
    }
}
