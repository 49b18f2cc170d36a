//! The operations on [`State`]: each validates, changes the indices, and pushes the WAL records
//! it implies onto `out`. An operation that fails pushes nothing and changes nothing.

use std::cmp::Reverse;
use std::sync::Arc;

use super::{Entry, Queue, State, Status};
use crate::clock::UnixMillis;
use crate::config::{self, QueueConfig};
use crate::error::{EngineError, Result};
use crate::message::{
    DeadLetter, DeadReason, Delivery, Enqueued, LeaseToken, MessageId, NewMessage, StoredMessage,
};
use crate::wal::Record;

fn invalid(text: String) -> EngineError {
    EngineError::InvalidArgument(text)
}

/// Checks a queue name against its limits.
pub fn validate_queue_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > config::QUEUE_NAME_BYTES_MAX {
        return Err(invalid(format!(
            "queue name must be 1 to {} bytes",
            config::QUEUE_NAME_BYTES_MAX
        )));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(invalid(
            "queue name must not contain control characters".into(),
        ));
    }
    Ok(())
}

fn validate_new_message(message: &NewMessage) -> Result<()> {
    if message.payload.len() > config::PAYLOAD_BYTES_MAX {
        return Err(invalid(format!(
            "payload is {} bytes, the limit is {} bytes",
            message.payload.len(),
            config::PAYLOAD_BYTES_MAX
        )));
    }
    if message.headers.len() > config::HEADERS_COUNT_MAX {
        return Err(invalid(format!(
            "{} headers, the limit is {}",
            message.headers.len(),
            config::HEADERS_COUNT_MAX
        )));
    }
    let header_bytes: usize = message.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    if header_bytes > config::HEADERS_BYTES_MAX {
        return Err(invalid(format!(
            "headers are {header_bytes} bytes, the limit is {} bytes",
            config::HEADERS_BYTES_MAX
        )));
    }
    if message.delay_ms > config::DELAY_MS_MAX {
        return Err(invalid(format!(
            "delay is {} ms, the limit is {} ms",
            message.delay_ms,
            config::DELAY_MS_MAX
        )));
    }
    if message.max_attempts == Some(0) {
        return Err(invalid("max_attempts must be at least 1".into()));
    }
    if let Some(key) = &message.dedup_key {
        if key.is_empty() || key.len() > config::DEDUP_KEY_BYTES_MAX {
            return Err(invalid(format!(
                "dedup key must be 1 to {} bytes",
                config::DEDUP_KEY_BYTES_MAX
            )));
        }
    }
    Ok(())
}

fn validate_lease_ms(lease_ms: u64) -> Result<()> {
    if !(config::LEASE_MS_MIN..=config::LEASE_MS_MAX).contains(&lease_ms) {
        return Err(invalid(format!(
            "lease must be {} to {} ms, got {lease_ms}",
            config::LEASE_MS_MIN,
            config::LEASE_MS_MAX
        )));
    }
    Ok(())
}

impl State {
    /// Creates `queue` with `config`, or changes the config of an existing queue.
    pub fn configure(
        &mut self,
        queue: &str,
        config: QueueConfig,
        out: &mut Vec<Record>,
    ) -> Result<()> {
        validate_queue_name(queue)?;
        config.validate().map_err(invalid)?;
        let name = self.queue_or_create(queue, out).name.clone();
        let entry = self.queues.get_mut(&name).expect("queue just ensured");
        entry.config = config.clone();
        out.push(Record::QueueConfigured {
            queue: name,
            config,
        });
        Ok(())
    }

    /// The queue, created with the default config (and a record saying so) when missing.
    fn queue_or_create(&mut self, queue: &str, out: &mut Vec<Record>) -> &mut Queue {
        if !self.queues.contains_key(queue) {
            let name: Arc<str> = Arc::from(queue);
            out.push(Record::QueueConfigured {
                queue: name.clone(),
                config: QueueConfig::default(),
            });
            self.queues
                .insert(name.clone(), Queue::new(name, QueueConfig::default()));
        }
        self.queues.get_mut(queue).expect("queue just ensured")
    }

    /// Accepts a batch of messages into `queue`, all or nothing: if any is invalid, or the
    /// queue cannot hold them all, none is stored.
    pub fn enqueue(
        &mut self,
        queue: &str,
        messages: Vec<NewMessage>,
        now: UnixMillis,
        out: &mut Vec<Record>,
    ) -> Result<Vec<Enqueued>> {
        validate_queue_name(queue)?;
        if messages.len() > config::BATCH_MESSAGES_MAX {
            return Err(invalid(format!(
                "batch of {} messages, the limit is {}",
                messages.len(),
                config::BATCH_MESSAGES_MAX
            )));
        }
        messages.iter().try_for_each(validate_new_message)?;
        let records_before = out.len();
        self.expire_dedup_keys(queue, now, out);
        let existing = self.queues.get(queue);
        let fresh = messages
            .iter()
            .filter(|m| !Self::dedup_hit(existing, m, now))
            .count() as u64;
        if let Some(q) = existing {
            if q.size() + fresh > q.config.max_size {
                out.truncate(records_before);
                return Err(EngineError::QueueFull {
                    queue: queue.to_string(),
                    max_size: q.config.max_size,
                });
            }
        } else if fresh > QueueConfig::default().max_size {
            return Err(EngineError::QueueFull {
                queue: queue.to_string(),
                max_size: QueueConfig::default().max_size,
            });
        }
        let mut results = Vec::with_capacity(messages.len());
        for message in messages {
            results.push(self.enqueue_one(queue, message, now, out));
        }
        Ok(results)
    }

    fn dedup_hit(queue: Option<&Queue>, message: &NewMessage, now: UnixMillis) -> bool {
        match (queue, &message.dedup_key) {
            (Some(q), Some(key)) => q.dedup.get(key).is_some_and(|(_, until)| *until > now),
            _ => false,
        }
    }

    fn enqueue_one(
        &mut self,
        queue: &str,
        message: NewMessage,
        now: UnixMillis,
        out: &mut Vec<Record>,
    ) -> Enqueued {
        let id = self.ids.next(now, out);
        let seq = self.next_seq;
        let q = self.queue_or_create(queue, out);
        if let Some(key) = &message.dedup_key {
            if let Some((existing, until)) = q.dedup.get(key) {
                if *until > now {
                    q.counters.deduplicated += 1;
                    return Enqueued {
                        id: *existing,
                        deduplicated: true,
                    };
                }
            }
        }
        let ttl_ms = message.ttl_ms.unwrap_or(q.config.message_ttl_ms);
        let stored = StoredMessage {
            id,
            queue: q.name.clone(),
            seq,
            priority: message.priority,
            payload: Arc::from(message.payload),
            headers: message.headers,
            enqueued_at: now,
            not_before: now + message.delay_ms,
            expires_at: (ttl_ms > 0).then(|| now.saturating_add(ttl_ms)),
            max_attempts: message.max_attempts.unwrap_or(q.config.max_attempts),
            attempts: 0,
            dedup_key: message.dedup_key,
            dead: None,
        };
        let dedup_until = match &stored.dedup_key {
            Some(key) if q.config.dedup_window_ms > 0 => {
                let until = now.saturating_add(q.config.dedup_window_ms);
                q.dedup.insert(key.clone(), (id, until));
                q.dedup_expiry.insert((until, key.clone()));
                Some(until)
            }
            _ => None,
        };
        q.counters.enqueued += 1;
        let status = if stored.not_before > now {
            q.delayed.insert((stored.not_before, id));
            Status::Delayed
        } else {
            q.ready.insert((Reverse(stored.priority), seq, id));
            Status::Ready
        };
        if let Some(expires_at) = stored.expires_at {
            q.expiring.insert((expires_at, id));
        }
        self.next_seq += 1;
        out.push(Record::Enqueued {
            message: stored.clone(),
            dedup_until,
        });
        self.entries.insert(
            id,
            Entry {
                message: stored,
                status,
            },
        );
        Enqueued {
            id,
            deduplicated: false,
        }
    }

    /// Hands out up to `max` ready messages of `queue` under leases of `lease_ms`, first
    /// settling everything in the queue that fell due by `now`.
    pub fn lease(
        &mut self,
        queue: &str,
        max: usize,
        lease_ms: Option<u64>,
        now: UnixMillis,
        out: &mut Vec<Record>,
    ) -> Result<Vec<Delivery>> {
        if max > config::BATCH_MESSAGES_MAX {
            return Err(invalid(format!(
                "lease of {max} messages, the limit is {}",
                config::BATCH_MESSAGES_MAX
            )));
        }
        let Some(q) = self.queues.get(queue) else {
            return Ok(Vec::new());
        };
        let lease_ms = lease_ms.unwrap_or(q.config.default_lease_ms);
        validate_lease_ms(lease_ms)?;
        self.settle_due(queue, now, out);
        let mut deliveries = Vec::new();
        while deliveries.len() < max {
            let q = self.queues.get_mut(queue).expect("queue exists");
            let Some((_, _, id)) = q.ready.pop_first() else {
                break;
            };
            let entry = self.entries.get_mut(&id).expect("ready id has an entry");
            if let Some(expires_at) = entry.message.expires_at {
                q.expiring.remove(&(expires_at, id));
                if expires_at <= now {
                    self.expire(id, now, out);
                    continue;
                }
            }
            if entry.message.attempts >= entry.message.max_attempts {
                // Leased for its last attempt when the process stopped: its attempts are used up.
                self.kill(id, DeadReason::MaxAttempts, now, out);
                continue;
            }
            let token = self.tokens.next();
            let deadline = now.saturating_add(lease_ms);
            entry.message.attempts += 1;
            entry.status = Status::Leased { token, deadline };
            q.leased.insert((deadline, id));
            q.counters.delivered += 1;
            out.push(Record::Delivered {
                queue: q.name.clone(),
                id,
                attempts: entry.message.attempts,
            });
            deliveries.push(Delivery {
                message: entry.message.clone(),
                token,
                lease_deadline: deadline,
            });
        }
        Ok(deliveries)
    }

    /// Finds the entry for a lease operation, settling its queue first so that a lease past
    /// its deadline is treated as lost.
    fn leased_entry(
        &mut self,
        id: MessageId,
        token: LeaseToken,
        now: UnixMillis,
        out: &mut Vec<Record>,
    ) -> Result<Arc<str>> {
        let queue = match self.entries.get(&id) {
            Some(entry) => entry.message.queue.clone(),
            None => return Err(EngineError::UnknownMessage(id)),
        };
        self.settle_due(&queue, now, out);
        match self.entries.get(&id).map(|e| e.status) {
            None => Err(EngineError::UnknownMessage(id)),
            Some(Status::Leased { token: current, .. }) if current == token => Ok(queue),
            Some(_) => Err(EngineError::LeaseLost(id)),
        }
    }

    fn take_lease(&mut self, queue: &str, id: MessageId) {
        let entry = self.entries.get_mut(&id).expect("leased entry");
        let Status::Leased { deadline, .. } = entry.status else {
            unreachable!("take_lease on a message that is not leased")
        };
        let q = self
            .queues
            .get_mut(queue)
            .expect("queue of a leased message");
        assert!(q.leased.remove(&(deadline, id)), "leased index out of step");
    }

    /// Acknowledges a delivery: the message is gone for good.
    pub fn ack(
        &mut self,
        id: MessageId,
        token: LeaseToken,
        now: UnixMillis,
        out: &mut Vec<Record>,
    ) -> Result<()> {
        let queue = self.leased_entry(id, token, now, out)?;
        self.take_lease(&queue, id);
        self.entries.remove(&id);
        let q = self.queues.get_mut(&*queue).expect("queue exists");
        q.counters.acked += 1;
        out.push(Record::Removed {
            queue: q.name.clone(),
            id,
        });
        Ok(())
    }

    /// Gives a delivery back: retried after `delay_ms`, or after the queue's backoff when
    /// `None`; dead-lettered instead when its attempts are used up.
    pub fn nack(
        &mut self,
        id: MessageId,
        token: LeaseToken,
        delay_ms: Option<u64>,
        now: UnixMillis,
        out: &mut Vec<Record>,
    ) -> Result<()> {
        if let Some(delay) = delay_ms {
            if delay > config::DELAY_MS_MAX {
                return Err(invalid(format!(
                    "delay is {delay} ms, the limit is {} ms",
                    config::DELAY_MS_MAX
                )));
            }
        }
        let queue = self.leased_entry(id, token, now, out)?;
        self.take_lease(&queue, id);
        let delay = delay_ms.unwrap_or_else(|| {
            let attempts = self.entries[&id].message.attempts;
            self.queues[&*queue].config.retry_delay_for(attempts)
        });
        self.requeue(id, now, delay, out);
        Ok(())
    }

    /// Moves a lease's deadline to `now + lease_ms`; returns the new deadline. Leases are not
    /// durable (a restart makes leased messages ready), so this writes no record.
    pub fn extend(
        &mut self,
        id: MessageId,
        token: LeaseToken,
        lease_ms: u64,
        now: UnixMillis,
        out: &mut Vec<Record>,
    ) -> Result<UnixMillis> {
        validate_lease_ms(lease_ms)?;
        let queue = self.leased_entry(id, token, now, out)?;
        self.take_lease(&queue, id);
        let deadline = now.saturating_add(lease_ms);
        let entry = self.entries.get_mut(&id).expect("leased entry");
        entry.status = Status::Leased { token, deadline };
        let q = self.queues.get_mut(&*queue).expect("queue exists");
        q.leased.insert((deadline, id));
        Ok(deadline)
    }

    /// A message back from a lease (already out of the leased index): expired, dead, or
    /// waiting for its next attempt.
    fn requeue(&mut self, id: MessageId, now: UnixMillis, delay_ms: u64, out: &mut Vec<Record>) {
        let entry = self.entries.get_mut(&id).expect("requeued entry");
        let message = &mut entry.message;
        if message.expires_at.is_some_and(|at| at <= now) {
            self.expire(id, now, out);
            return;
        }
        if message.attempts >= message.max_attempts {
            self.kill(id, DeadReason::MaxAttempts, now, out);
            return;
        }
        let q = self.queues.get_mut(&*message.queue).expect("queue exists");
        message.not_before = now.saturating_add(delay_ms);
        entry.status = if delay_ms == 0 {
            q.ready.insert((Reverse(message.priority), message.seq, id));
            Status::Ready
        } else {
            q.delayed.insert((message.not_before, id));
            Status::Delayed
        };
        if let Some(expires_at) = message.expires_at {
            q.expiring.insert((expires_at, id));
        }
        q.counters.retried += 1;
        out.push(Record::Requeued {
            queue: q.name.clone(),
            id,
            priority: message.priority,
            seq: message.seq,
            not_before: message.not_before,
        });
    }

    /// Ends a message that is in no index: dead letter or, with dead letters off, removed.
    fn kill(&mut self, id: MessageId, reason: DeadReason, now: UnixMillis, out: &mut Vec<Record>) {
        let entry = self.entries.get_mut(&id).expect("killed entry");
        let q = self
            .queues
            .get_mut(&*entry.message.queue)
            .expect("queue exists");
        if let Some(expires_at) = entry.message.expires_at {
            q.expiring.remove(&(expires_at, id));
        }
        if reason == DeadReason::Expired {
            q.counters.expired += 1;
        }
        if q.config.dead_letters {
            q.counters.dead_lettered += 1;
            entry.status = Status::Dead;
            entry.message.dead = Some((reason, now));
            q.dead.insert((now, id));
            out.push(Record::DeadLettered {
                queue: q.name.clone(),
                id,
                reason,
                at: now,
            });
        } else {
            q.counters.dropped += 1;
            out.push(Record::Removed {
                queue: q.name.clone(),
                id,
            });
            self.entries.remove(&id);
        }
    }

    fn expire(&mut self, id: MessageId, now: UnixMillis, out: &mut Vec<Record>) {
        self.kill(id, DeadReason::Expired, now, out);
    }

    fn expire_dedup_keys(&mut self, queue: &str, now: UnixMillis, out: &mut Vec<Record>) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        while let Some((until, _)) = q.dedup_expiry.first() {
            if *until > now {
                break;
            }
            let (until, key) = q.dedup_expiry.pop_first().expect("first exists");
            if q.dedup.get(&key).is_some_and(|(_, u)| *u == until) {
                q.dedup.remove(&key);
                out.push(Record::DedupForgotten {
                    queue: q.name.clone(),
                    key,
                });
            }
        }
    }

    /// Settles everything in `queue` due by `now`: leases that ran out go back (ready at once),
    /// delays that ended become ready, expired messages die, old dedup keys are forgotten.
    /// Returns true when messages became ready.
    pub fn settle_due(&mut self, queue: &str, now: UnixMillis, out: &mut Vec<Record>) -> bool {
        let Some(q) = self.queues.get_mut(queue) else {
            return false;
        };
        let ready_before = q.ready.len();
        let mut lapsed = Vec::new();
        while q
            .leased
            .first()
            .is_some_and(|(deadline, _)| *deadline <= now)
        {
            lapsed.push(q.leased.pop_first().expect("first exists").1);
        }
        let mut due = Vec::new();
        while q.delayed.first().is_some_and(|(at, _)| *at <= now) {
            due.push(q.delayed.pop_first().expect("first exists").1);
        }
        for id in due {
            let entry = self.entries.get_mut(&id).expect("delayed entry");
            entry.status = Status::Ready;
            q.ready
                .insert((Reverse(entry.message.priority), entry.message.seq, id));
        }
        let mut expired = Vec::new();
        while q.expiring.first().is_some_and(|(at, _)| *at <= now) {
            let (at, id) = q.expiring.pop_first().expect("first exists");
            expired.push((at, id));
        }
        for (_, id) in &expired {
            let entry = &self.entries[id];
            match entry.status {
                Status::Ready => {
                    q.ready
                        .remove(&(Reverse(entry.message.priority), entry.message.seq, *id));
                }
                Status::Delayed => {
                    q.delayed.remove(&(entry.message.not_before, *id));
                }
                Status::Leased { .. } | Status::Dead => {
                    unreachable!("expiring index holds only ready and delayed messages")
                }
            }
        }
        for id in lapsed {
            self.requeue(id, now, 0, out);
        }
        for (_, id) in expired {
            self.expire(id, now, out);
        }
        self.expire_dedup_keys(queue, now, out);
        self.queues[queue].ready.len() > ready_before
    }

    /// Settles every queue; returns the queues where messages became ready.
    pub fn settle_all(&mut self, now: UnixMillis, out: &mut Vec<Record>) -> Vec<Arc<str>> {
        let due: Vec<Arc<str>> = self
            .queues
            .values()
            .filter(|q| q.next_due().is_some_and(|at| at <= now))
            .map(|q| q.name.clone())
            .collect();
        due.into_iter()
            .filter(|queue| self.settle_due(queue, now, out))
            .collect()
    }

    /// Dead letters of `queue`, oldest death first, at most `limit`.
    pub fn dead_letters(&self, queue: &str, limit: usize) -> Vec<DeadLetter> {
        let Some(q) = self.queues.get(queue) else {
            return Vec::new();
        };
        q.dead
            .iter()
            .take(limit)
            .map(|(_, id)| {
                let message = self.entries[id].message.clone();
                let (reason, died_at) = message.dead.expect("dead letter records its reason");
                DeadLetter {
                    message,
                    reason,
                    died_at,
                }
            })
            .collect()
    }

    fn chosen_dead(&self, queue: &str, ids: Option<&[MessageId]>) -> Vec<MessageId> {
        let Some(q) = self.queues.get(queue) else {
            return Vec::new();
        };
        match ids {
            None => q.dead.iter().map(|(_, id)| *id).collect(),
            Some(ids) => ids
                .iter()
                .copied()
                .filter(|id| {
                    self.entries
                        .get(id)
                        .is_some_and(|e| e.status == Status::Dead && *e.message.queue == *queue)
                })
                .collect(),
        }
    }

    /// Sends dead letters (all, or those named) back to ready with attempts reset, a fresh
    /// sequence number (behind what is queued now) and a fresh time to live. Returns how many.
    pub fn redrive(
        &mut self,
        queue: &str,
        ids: Option<&[MessageId]>,
        now: UnixMillis,
        out: &mut Vec<Record>,
    ) -> usize {
        let chosen = self.chosen_dead(queue, ids);
        let Some(q) = self.queues.get_mut(queue) else {
            return 0;
        };
        for id in &chosen {
            let entry = self.entries.get_mut(id).expect("dead entry");
            let (_, died_at) = entry.message.dead.take().expect("dead letter has a reason");
            q.dead.remove(&(died_at, *id));
            let seq = self.next_seq;
            self.next_seq += 1;
            let ttl_ms = q.config.message_ttl_ms;
            entry.message.seq = seq;
            entry.message.attempts = 0;
            entry.message.not_before = now;
            entry.message.expires_at = (ttl_ms > 0).then(|| now.saturating_add(ttl_ms));
            entry.status = Status::Ready;
            q.ready.insert((Reverse(entry.message.priority), seq, *id));
            if let Some(expires_at) = entry.message.expires_at {
                q.expiring.insert((expires_at, *id));
            }
            out.push(Record::Redriven {
                queue: q.name.clone(),
                id: *id,
                priority: entry.message.priority,
                seq,
                now,
                expires_at: entry.message.expires_at,
            });
        }
        chosen.len()
    }

    /// Deletes dead letters (all, or those named) for good. Returns how many.
    pub fn purge_dead_letters(
        &mut self,
        queue: &str,
        ids: Option<&[MessageId]>,
        out: &mut Vec<Record>,
    ) -> usize {
        let chosen = self.chosen_dead(queue, ids);
        let Some(q) = self.queues.get_mut(queue) else {
            return 0;
        };
        for id in &chosen {
            let entry = self.entries.remove(id).expect("dead entry");
            let (_, died_at) = entry.message.dead.expect("dead letter has a reason");
            q.dead.remove(&(died_at, *id));
            out.push(Record::Removed {
                queue: q.name.clone(),
                id: *id,
            });
        }
        chosen.len()
    }
}

impl State {
    /// Undoes a delivery nobody received (its receiver went away before the lease reached
    /// it): the message is ready again at once and the attempt is not counted.
    pub fn release(
        &mut self,
        id: MessageId,
        token: LeaseToken,
        now: UnixMillis,
        out: &mut Vec<Record>,
    ) -> Result<()> {
        let queue = self.leased_entry(id, token, now, out)?;
        self.take_lease(&queue, id);
        let entry = self.entries.get_mut(&id).expect("leased entry");
        let q = self.queues.get_mut(&*queue).expect("queue exists");
        let message = &mut entry.message;
        message.attempts -= 1;
        message.not_before = message.not_before.min(now);
        entry.status = Status::Ready;
        q.ready.insert((Reverse(message.priority), message.seq, id));
        if let Some(expires_at) = message.expires_at {
            q.expiring.insert((expires_at, id));
        }
        q.counters.delivered -= 1;
        out.push(Record::Delivered {
            queue: q.name.clone(),
            id,
            attempts: message.attempts,
        });
        out.push(Record::Requeued {
            queue: q.name.clone(),
            id,
            priority: message.priority,
            seq: message.seq,
            not_before: message.not_before,
        });
        Ok(())
    }

    /// Up to `limit` ready messages of `queue` in delivery order, without leasing them.
    pub fn peek(&self, queue: &str, limit: usize) -> Vec<StoredMessage> {
        let Some(q) = self.queues.get(queue) else {
            return Vec::new();
        };
        q.ready
            .iter()
            .take(limit)
            .map(|(_, _, id)| self.entries[id].message.clone())
            .collect()
    }

    /// Deletes every message of `queue` (ready, delayed, leased and dead); the queue and its
    /// config stay. Returns how many.
    pub fn purge_queue(&mut self, queue: &str, out: &mut Vec<Record>) -> usize {
        let Some(q) = self.queues.get_mut(queue) else {
            return 0;
        };
        let ids: Vec<MessageId> = q
            .ready
            .iter()
            .map(|(_, _, id)| *id)
            .chain(q.delayed.iter().map(|(_, id)| *id))
            .chain(q.leased.iter().map(|(_, id)| *id))
            .chain(q.dead.iter().map(|(_, id)| *id))
            .collect();
        q.ready.clear();
        q.delayed.clear();
        q.leased.clear();
        q.dead.clear();
        q.expiring.clear();
        for id in &ids {
            self.entries.remove(id);
            out.push(Record::Removed {
                queue: q.name.clone(),
                id: *id,
            });
        }
        ids.len()
    }

    /// Up to `limit` leased messages of `queue`, soonest deadline first: (id, deadline).
    pub fn leased(&self, queue: &str, limit: usize) -> Vec<(MessageId, UnixMillis)> {
        self.queues
            .get(queue)
            .map(|q| {
                q.leased
                    .iter()
                    .take(limit)
                    .map(|&(at, id)| (id, at))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The current lease of a message: its queue, token and deadline.
    pub fn current_lease(&self, id: MessageId) -> Option<(Arc<str>, LeaseToken, UnixMillis)> {
        let entry = self.entries.get(&id)?;
        match entry.status {
            Status::Leased { token, deadline } => {
                Some((entry.message.queue.clone(), token, deadline))
            }
            _ => None,
        }
    }
}
