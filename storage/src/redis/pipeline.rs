//! Commits in flight: each batch's request is written to the connection as soon as it is
//! planned, and its reply read later, so Redis applies one batch while the next is planned and
//! sent. Requests are kept until their reply arrives; after a reconnect every one still
//! unanswered is sent again, in order, and the commit script's batch numbers make Redis skip
//! those it applied already (see `scripts::COMMIT`).

use std::collections::VecDeque;

use redis::{Connection, RedisError, Value};

use super::encode::EncodedBatch;
use super::keys::Keys;
use super::link::Conn;
use super::ownership::{staging_key, Ownership};
use super::scripts;

/// A staged batch's list is deleted after this long if no script consumed it (its server
/// died mid-commit), in milliseconds.
const STAGING_TTL_MS: u64 = 5 * 60 * 1000;

/// One batch whose reply has not been read.
struct InFlight {
    /// The request as written to the connection (written again after a reconnect).
    request: Vec<u8>,
    /// Replies that precede the commit script's (the staging commands').
    replies_before_script: usize,
    /// Commands the script must report having run.
    commands: usize,
    /// Replicas the `WAIT` after the script must report (0: no `WAIT` was sent).
    replicas: u32,
    /// The connection it was last written to.
    sent_on: Option<u64>,
}

/// What reading a batch's reply found.
pub(crate) enum Outcome {
    /// The batch is applied (now, or by an earlier send of it).
    Applied,
    /// The script ran a different number of commands than the batch holds.
    Miscounted { ran: i64, expected: usize },
    /// The script replied something it never replies.
    Unexpected(String),
    /// The batch is applied on the master, but fewer replicas than asked confirmed it in time.
    NotReplicated { confirmed: i64, wanted: u32 },
}

/// The batches written to Redis and not yet answered, oldest first.
#[derive(Default)]
pub(crate) struct Pipeline {
    in_flight: VecDeque<InFlight>,
    /// The number the next batch gets (from 1; 0 means "no batch" to the script).
    next_number: u64,
    /// The connection the commit script was last loaded on.
    script_loaded_on: Option<u64>,
}

/// How one batch is to be sent.
pub(crate) struct Request<'a> {
    pub keys: &'a Keys,
    pub ownership: &'a Ownership,
    pub batch: &'a EncodedBatch,
    /// Stage the chunks in a list first (a batch too large for one request).
    pub staged: bool,
    /// Renew the owner lease with this commit.
    pub renew: bool,
    /// Replicas that must confirm the batch (`WAIT`), and how long to wait in ms (0: none).
    pub replicas: (u32, u64),
}

impl Pipeline {
    pub(crate) fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// Queues a batch's request (not yet written).
    pub(crate) fn push(&mut self, request: &Request<'_>) {
        self.next_number += 1;
        let (bytes, replies_before_script) = encode_request(request, self.next_number);
        self.in_flight.push_back(InFlight {
            request: bytes,
            replies_before_script,
            commands: request.batch.commands,
            replicas: request.replicas.0,
            sent_on: None,
        });
    }

    /// Writes every queued request not yet written to `connection` (number `generation`),
    /// loading the commit script first on a new connection.
    pub(crate) fn send(
        &mut self,
        connection: &mut Conn,
        generation: u64,
    ) -> Result<(), RedisError> {
        let connection = plain(connection)?;
        if self.script_loaded_on != Some(generation) {
            scripts::COMMIT.load(connection)?;
            self.script_loaded_on = Some(generation);
        }
        for batch in &mut self.in_flight {
            if batch.sent_on != Some(generation) {
                connection.send_packed_command(&batch.request)?;
                batch.sent_on = Some(generation);
            }
        }
        Ok(())
    }

    /// Sends what is unsent, then reads the oldest batch's reply. On success the batch leaves
    /// the pipeline; on an error it stays, to be sent again on a new connection.
    pub(crate) fn finish_oldest(
        &mut self,
        connection: &mut Conn,
        generation: u64,
    ) -> Result<Outcome, RedisError> {
        self.send(connection, generation)?;
        let connection = plain(connection)?;
        let oldest = self
            .in_flight
            .front()
            .expect("finish_oldest is called with a batch in flight");
        for _ in 0..oldest.replies_before_script {
            reply(connection)?;
        }
        let script_reply = reply(connection);
        // The WAIT's reply follows the script's even when the script failed: read it so that
        // the next reply read is the next batch's.
        let wait_reply = (oldest.replicas > 0).then(|| reply(connection));
        let outcome = match script_reply? {
            Value::Int(-1) => Outcome::Applied,
            Value::Int(ran) if ran == oldest.commands as i64 => Outcome::Applied,
            Value::Int(ran) => Outcome::Miscounted {
                ran,
                expected: oldest.commands,
            },
            other => Outcome::Unexpected(format!("{other:?}")),
        };
        let outcome = match (outcome, wait_reply.transpose()?) {
            (Outcome::Applied, Some(Value::Int(confirmed)))
                if confirmed < i64::from(oldest.replicas) =>
            {
                Outcome::NotReplicated {
                    confirmed,
                    wanted: oldest.replicas,
                }
            }
            (Outcome::Applied, Some(Value::Int(_)) | None) => Outcome::Applied,
            (Outcome::Applied, Some(other)) => Outcome::Unexpected(format!("{other:?} to WAIT")),
            (outcome, _) => outcome,
        };
        if !matches!(outcome, Outcome::NotReplicated { .. }) {
            // A batch not yet confirmed by replicas stays: it is sent again (skipped as
            // applied, then waited for again) once the caller reconnects.
            self.in_flight.pop_front();
        }
        Ok(outcome)
    }
}

/// Reads one reply, turning an error reply into an error.
fn reply(connection: &mut Connection) -> Result<Value, RedisError> {
    match connection.recv_response()? {
        Value::ServerError(error) => Err(error.into()),
        value => Ok(value),
    }
}

/// The request bytes of batch `number`, and how many replies precede the script's.
fn encode_request(request: &Request<'_>, number: u64) -> (Vec<u8>, usize) {
    let Request {
        keys,
        ownership,
        batch,
        staged,
        renew,
        replicas,
    } = *request;
    let owner_id = ownership.owner_id();
    let staging = staging_key(keys, owner_id);
    let mut out = Vec::with_capacity(batch.bytes + 512);
    let mut replies_before_script = 0;
    if staged {
        write_command(&mut out, &[b"DEL", staging.as_bytes()]);
        for chunk in batch.chunks() {
            write_command(&mut out, &[b"RPUSH", staging.as_bytes(), chunk]);
        }
        let ttl = STAGING_TTL_MS.to_string();
        write_command(&mut out, &[b"PEXPIRE", staging.as_bytes(), ttl.as_bytes()]);
        replies_before_script = batch.chunks().count() + 2;
    }
    let (owner, fence) = (keys.owner(), keys.fence());
    let applied: Vec<String> = batch
        .units
        .iter()
        .map(|unit| keys.applied(&unit.unit))
        .collect();
    let key_count = (3 + applied.len()).to_string();
    let lease_ms = ownership.lease_ms().to_string();
    let number = number.to_string();
    let unit_count = batch.units.len().to_string();
    let chunk_counts: Vec<String> = batch
        .units
        .iter()
        .map(|unit| unit.chunks.len().to_string())
        .collect();
    let mut words: Vec<&[u8]> = vec![
        b"EVALSHA",
        scripts::COMMIT.get_hash().as_bytes(),
        key_count.as_bytes(),
        owner.as_bytes(),
        fence.as_bytes(),
        staging.as_bytes(),
    ];
    words.extend(applied.iter().map(String::as_bytes));
    words.extend([
        b"owner".as_slice(),
        owner_id.as_bytes(),
        ownership.fencing_token().as_bytes(),
        lease_ms.as_bytes(),
        if staged { b"staged" } else { b"inline" },
        if renew { b"renew" } else { b"keep" },
        number.as_bytes(),
        unit_count.as_bytes(),
    ]);
    words.extend(chunk_counts.iter().map(String::as_bytes));
    if !staged {
        words.extend(batch.chunks().map(Vec::as_slice));
    }
    write_command(&mut out, &words);
    let (wanted, timeout_ms) = replicas;
    if wanted > 0 {
        let (wanted, timeout_ms) = (wanted.to_string(), timeout_ms.to_string());
        write_command(
            &mut out,
            &[b"WAIT", wanted.as_bytes(), timeout_ms.as_bytes()],
        );
    }
    (out, replies_before_script)
}

/// The plain connection under `connection`: pipelined commits are for one server (a Redis
/// Cluster commits unit by unit, see `cluster_commit.rs`).
fn plain(connection: &mut Conn) -> Result<&mut Connection, RedisError> {
    match connection {
        Conn::Plain(connection) => Ok(connection),
        Conn::Cluster(_) => Err(RedisError::from((
            redis::ErrorKind::Client,
            "pipelined commits need one Redis server, not a cluster",
        ))),
    }
}

/// Appends one command in the Redis protocol (an array of bulk strings).
fn write_command(out: &mut Vec<u8>, words: &[&[u8]]) {
    use std::io::Write;
    write!(out, "*{}\r\n", words.len()).expect("writing to a Vec cannot fail");
    for word in words {
        write!(out, "${}\r\n", word.len()).expect("writing to a Vec cannot fail");
        out.extend_from_slice(word);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_written_as_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        write_command(&mut out, &[b"SET", b"k", b"\r\n"]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\r\n\r\n");
    }
}
