//! Agent inboxes: sending into one, leasing from one, and settling (ack, nack, extend) a
//! message of one. The REST handlers and the WebSocket share these, so both enforce the same
//! rules: a message can only be settled by the agent whose inbox holds it.

use serde::{Deserialize, Serialize};
use switchboard_engine::{
    Delivery, Enqueued, MessageId, MessageState, NewMessage, StoredMessage, UnixMillis,
};

use crate::api::wire::{InboxDeadMessage, InboxMessage, Metadata, Priority, SendMessageRequest};
use crate::error::{ApiError, ApiResult};
use crate::limits;
use crate::receipts;
use crate::registry::{validate_name, AgentRecord};
use crate::state::AppState;
use crate::time::iso8601;

/// What an inbox message's engine payload holds (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InboxPayload {
    /// Who sent it.
    pub sender: String,
    /// The text.
    pub content: String,
    /// The named priority it was sent with.
    pub priority: Priority,
    /// Send time, Unix milliseconds.
    pub created_at: UnixMillis,
    /// The sender's metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// The message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

impl InboxPayload {
    /// Reads a stored message's payload; a payload that is not ours (e.g. enqueued through the
    /// queue API) is shown as text from an unknown sender rather than hidden.
    pub fn of(message: &StoredMessage) -> Self {
        serde_json::from_slice(&message.payload).unwrap_or_else(|_| InboxPayload {
            sender: "unknown".into(),
            content: String::from_utf8_lossy(&message.payload).into_owned(),
            priority: Priority::from_engine(message.priority),
            created_at: message.enqueued_at,
            metadata: Metadata::new(),
            reply_to: None,
        })
    }
}

/// Checks a send request and turns it into the engine message for `sender`.
pub fn new_message(
    sender: &str,
    request: SendMessageRequest,
    now: UnixMillis,
) -> ApiResult<NewMessage> {
    validate_name("sender", sender)?;
    validate_name("recipient", &request.recipient)?;
    if request.content.trim().is_empty() {
        return Err(ApiError::invalid("content must not be empty"));
    }
    let ttl_ms = match request.expires_in_hours {
        None => Some(0),
        Some(0) => {
            return Err(ApiError::invalid(
                "expires_in_hours must be at least 1, or null for no expiry",
            ))
        }
        Some(hours) if hours > limits::EXPIRES_IN_HOURS_MAX => {
            return Err(ApiError::invalid(format!(
                "expires_in_hours is {hours}, the limit is {}",
                limits::EXPIRES_IN_HOURS_MAX
            )))
        }
        Some(hours) => Some(hours * 3_600_000),
    };
    let delay_seconds = request.delay_seconds.unwrap_or(0);
    if delay_seconds > limits::DELAY_SECONDS_MAX {
        return Err(ApiError::invalid(format!(
            "delay_seconds is {delay_seconds}, the limit is {}",
            limits::DELAY_SECONDS_MAX
        )));
    }
    if let Some(attempts) = request.max_attempts {
        if attempts == 0 || attempts > limits::MAX_ATTEMPTS_MAX {
            return Err(ApiError::invalid(format!(
                "max_attempts must be between 1 and {}",
                limits::MAX_ATTEMPTS_MAX
            )));
        }
    }
    if let Some(reply_to) = &request.reply_to {
        reply_to
            .parse::<MessageId>()
            .map_err(|error| ApiError::invalid(format!("reply_to: {error}")))?;
    }
    let dedup_key = request
        .dedup_key
        .as_deref()
        .map(|key| sender_dedup_key(sender, key))
        .transpose()?;
    let payload = InboxPayload {
        sender: sender.to_string(),
        content: request.content,
        priority: request.priority,
        created_at: now,
        metadata: request.metadata,
        reply_to: request.reply_to,
    };
    Ok(NewMessage {
        payload: serde_json::to_vec(&payload).expect("a payload always serializes"),
        priority: request.priority.engine(),
        delay_ms: delay_seconds * 1000,
        ttl_ms,
        max_attempts: request.max_attempts,
        dedup_key,
        ..NewMessage::default()
    })
}

/// Separates the sender from its key in the engine's dedup key; agent names hold no control
/// characters, so `alice` + `x` never equals `alic` + `ex`.
const DEDUP_KEY_SEPARATOR: char = '\u{1f}';

/// The engine dedup key of `sender`'s idempotency key `key`. The engine deduplicates per
/// queue (the recipient's inbox), so a key must name its sender too: another sender's send
/// with the same key is another message, not a retry.
pub fn sender_dedup_key(sender: &str, key: &str) -> ApiResult<String> {
    let key_bytes_max = switchboard_engine::DEDUP_KEY_BYTES_MAX
        .saturating_sub(sender.len() + DEDUP_KEY_SEPARATOR.len_utf8());
    if key.is_empty() || key.len() > key_bytes_max {
        return Err(ApiError::invalid(format!(
            "dedup_key is {} bytes; it must be 1 to {key_bytes_max} bytes for sender {sender:?} \
             (the sender's name and the key together take at most {} bytes)",
            key.len(),
            switchboard_engine::DEDUP_KEY_BYTES_MAX - DEDUP_KEY_SEPARATOR.len_utf8()
        )));
    }
    Ok(format!("{sender}{DEDUP_KEY_SEPARATOR}{key}"))
}

/// Sends `request` from `sender` into its recipient's inbox (after the sender's rate check).
pub async fn send(
    state: &AppState,
    sender: &str,
    request: SendMessageRequest,
) -> ApiResult<(Enqueued, std::sync::Arc<AgentRecord>)> {
    validate_name("recipient", &request.recipient)?;
    let started = std::time::Instant::now();
    let recipient = state
        .registry
        .require(request.recipient.trim())
        .inspect_err(|_| state.monitor.routing_failed())?;
    send_to(state, sender, request, recipient, started).await
}

/// Sends `request` from `sender` into `recipient`'s inbox: the recipient named, or the one
/// routing chose for `auto` / `capability:NAME` (see [`crate::routing`]). `started` is when
/// handling the send began, for the routing-latency metric.
pub async fn send_to(
    state: &AppState,
    sender: &str,
    request: SendMessageRequest,
    recipient: std::sync::Arc<AgentRecord>,
    started: std::time::Instant,
) -> ApiResult<(Enqueued, std::sync::Arc<AgentRecord>)> {
    let sent = receipts::Sent::of(&request);
    // A reply its asker is waiting for goes to the asker's reply queue (see `receipts::asks`).
    let queue = receipts::queue_for(state, request.reply_to.as_deref(), sender, &recipient).await;
    // Dual mode: the recipient's pane gets a copy too (see `migrate::dual_mode`).
    let pane_copy = (crate::migrate::wants_pane_copy(state, &recipient.id)
        && queue == recipient.inbox())
    .then(|| request.content.clone());
    let keyed = request
        .dedup_key
        .clone()
        .map(|key| (key, request.content.clone()));
    let message = new_message(sender, request, state.engine.now_ms())?;
    state.limits.check(sender, 1)?;
    let enqueued = state
        .engine
        .enqueue(&queue, message)
        .await
        .inspect_err(|_| state.monitor.routing_failed())?;
    if let (true, Some((key, content))) = (enqueued.deduplicated, keyed) {
        refuse_other_content(state, enqueued.id, &key, &content).await?;
    }
    if !enqueued.deduplicated {
        let opens_ask = sent.expects_reply();
        receipts::on_sent(state, enqueued.id, sender, &recipient, sent);
        if let Some(content) = pane_copy {
            crate::migrate::copy_to_pane(state, &recipient, sender, &content, enqueued.id);
        }
        if opens_ask {
            // The answer to this question must find its ask after a restart or a failover.
            receipts::asks_persist::wait_saved(state).await;
        }
    }
    let placed = u64::from(!enqueued.deduplicated);
    state
        .monitor
        .sent(placed, started.elapsed(), state.engine.now_ms());
    Ok((enqueued, recipient))
}

/// Answers 409 when the message `key` was first used for (`first`) holds other content than
/// this send's: a key reused for a new message would otherwise drop it silently. A first
/// message already acked (gone) cannot be compared, and the first message wins.
async fn refuse_other_content(
    state: &AppState,
    first: MessageId,
    key: &str,
    content: &str,
) -> ApiResult<()> {
    let Some((stored, _)) = state.engine.message(first).await? else {
        return Ok(());
    };
    if InboxPayload::of(&stored).content == content {
        return Ok(());
    }
    Err(ApiError::Conflict(format!(
        "idempotency key {key} was used for a different message ({first}) within the last \
         {} minutes; use a new key",
        switchboard_engine::QueueConfig::default().dedup_window_ms / 60_000
    )))
}

/// Leases up to `limit` messages of `agent`'s inbox, long-polling up to `wait_seconds`.
pub async fn lease(
    state: &AppState,
    agent: &AgentRecord,
    limit: usize,
    lease_seconds: Option<u64>,
    wait_seconds: u64,
) -> ApiResult<Vec<InboxMessage>> {
    if limit == 0 || limit > limits::LEASE_MESSAGES_MAX {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {}",
            limits::LEASE_MESSAGES_MAX
        )));
    }
    if wait_seconds > limits::WAIT_SECONDS_MAX {
        return Err(ApiError::invalid(format!(
            "wait_seconds is {wait_seconds}, the limit is {}",
            limits::WAIT_SECONDS_MAX
        )));
    }
    let lease_ms = lease_ms(lease_seconds)?;
    if state.registry.touch(&agent.id, None) {
        // It just came online: hand it what waits for it before reading its inbox.
        crate::routing::waiting::sweep(state).await;
    }
    let wait = std::time::Duration::from_secs(wait_seconds);
    let inbox = agent.inbox();
    let waiting = state.engine.lease_wait(&inbox, limit, Some(lease_ms), wait);
    let deliveries =
        crate::shutdown::unless_stopping(&state.shutdown, waiting, || Ok(Vec::new())).await?;
    let now = state.engine.now_ms();
    state.lease_book.insert(&deliveries, now);
    state.monitor.delivered(&deliveries, now);
    state
        .receipts
        .delivered(&deliveries, &agent.name, receipts::Via::Rest, now);
    Ok(deliveries.iter().map(inbox_message).collect())
}

/// Leased messages listed at most by [`leased`].
pub const LEASED_LISTED_MAX: usize = 100;

/// Messages of `agent`'s inbox that are leased (delivered) and not settled yet, with their
/// lease deadlines, soonest first (at most [`LEASED_LISTED_MAX`]): what `switchboard inbox`
/// reminds an agent of, since each comes back when its lease runs out.
pub fn leased(state: &AppState, agent: &AgentRecord) -> Vec<(MessageId, UnixMillis)> {
    let now = state.engine.now_ms();
    let mut held = state.engine.leased(&agent.inbox(), LEASED_LISTED_MAX);
    // A lease past its deadline is returned at the engine's next tick: it is not held.
    held.retain(|(_, deadline)| *deadline > now);
    held
}

/// Checks a lease length in seconds (default [`limits::LEASE_SECONDS_DEFAULT`]) and gives it
/// in milliseconds.
pub fn lease_ms(lease_seconds: Option<u64>) -> ApiResult<u64> {
    let seconds = lease_seconds.unwrap_or(limits::LEASE_SECONDS_DEFAULT);
    if seconds == 0 || seconds > limits::LEASE_SECONDS_MAX {
        return Err(ApiError::invalid(format!(
            "lease_seconds must be between 1 and {}",
            limits::LEASE_SECONDS_MAX
        )));
    }
    Ok(seconds * 1000)
}

/// The wire form of a delivery.
pub fn inbox_message(delivery: &Delivery) -> InboxMessage {
    let message = &delivery.message;
    let payload = InboxPayload::of(message);
    InboxMessage {
        id: message.id.to_text(),
        sender: payload.sender,
        content: payload.content,
        priority: payload.priority,
        created_at: iso8601(payload.created_at),
        metadata: payload.metadata,
        reply_to: payload.reply_to,
        attempts: message.attempts,
        max_attempts: message.max_attempts,
        lease_expires_at: iso8601(delivery.lease_deadline),
    }
}

/// The wire form of a dead letter's message.
pub fn dead_message(message: &StoredMessage) -> InboxDeadMessage {
    let payload = InboxPayload::of(message);
    InboxDeadMessage {
        id: message.id.to_string(),
        sender: payload.sender,
        content: payload.content,
        priority: payload.priority,
        created_at: iso8601(payload.created_at),
        metadata: payload.metadata,
        attempts: message.attempts,
    }
}

/// What to do with a leased message.
#[derive(Debug, Clone, Copy)]
pub enum Settle {
    /// Done with it: delete it.
    Ack,
    /// Give it back, retried after this many milliseconds (the queue's backoff when `None`).
    Nack(Option<u64>),
    /// Keep it longer: the lease ends this many milliseconds from now.
    Extend(u64),
}

/// The 404 of the original for a message that is not the agent's or is gone.
pub fn message_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Message not found or already acknowledged: {id}"))
}

/// Settles message `id_text` of `agent`'s inbox using its current lease. Returns the new
/// lease deadline for an extend. Another agent's message is reported as not found, so an agent
/// cannot learn about, let alone ack, messages of others.
pub async fn settle(
    state: &AppState,
    agent: &AgentRecord,
    id_text: &str,
    action: Settle,
) -> ApiResult<Option<UnixMillis>> {
    let id: MessageId = id_text.parse().map_err(|_| message_not_found(id_text))?;
    let inbox = agent.inbox();
    if let Some(held) = state.lease_book.get(id, &inbox, state.engine.now_ms()) {
        match settle_with(state, id, held.token, held.enqueued_at, action).await {
            // The engine no longer knows this token: find out why below.
            Err(ApiError::Conflict(_)) | Err(ApiError::NotFound(_)) => {}
            result => return result,
        }
    }
    let Some((message, where_now)) = state.engine.message(id).await? else {
        return Err(message_not_found(id_text));
    };
    if *message.queue != inbox {
        return Err(message_not_found(id_text));
    }
    let token = match where_now {
        MessageState::Leased { token, .. } => token,
        MessageState::Dead { .. } => {
            return Err(ApiError::Conflict(format!(
                "message {id_text} is a dead letter; redrive it to deliver it again"
            )))
        }
        MessageState::Ready | MessageState::Delayed { .. } => {
            return Err(ApiError::Conflict(format!(
                "message {id_text} is not leased (its lease ran out or it was given back); \
                 it will be delivered again: settle that delivery"
            )))
        }
    };
    settle_with(state, id, token, message.enqueued_at, action).await
}

/// Settles a delivery whose lease token is known (the WebSocket keeps them).
pub async fn settle_with(
    state: &AppState,
    id: MessageId,
    token: switchboard_engine::LeaseToken,
    enqueued_at: UnixMillis,
    action: Settle,
) -> ApiResult<Option<UnixMillis>> {
    match action {
        Settle::Ack => {
            state.engine.ack(id, token).await?;
            state.lease_book.remove(id, token);
            let now = state.engine.now_ms();
            state.deliveries.record(enqueued_at, now);
            state.monitor.acked(enqueued_at, now);
            state.receipts.acked(id, None, now);
            Ok(None)
        }
        Settle::Nack(delay_ms) => {
            state.engine.nack(id, token, delay_ms).await?;
            state.lease_book.remove(id, token);
            state.monitor.nacked();
            state.receipts.nacked(id, None, state.engine.now_ms());
            // A nack of the last attempt makes a dead letter: say so in the receipt now.
            receipts::note_death(state, id).await;
            Ok(None)
        }
        Settle::Extend(lease_ms) => {
            let deadline = state.engine.extend(id, token, lease_ms).await?;
            state.lease_book.extended(id, deadline);
            Ok(Some(deadline))
        }
    }
}
