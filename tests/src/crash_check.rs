//! The crash test's parent side: runs the `crash_worker` binary on a store, kills it with
//! SIGKILL at random moments, and after every kill checks the store against what the worker
//! had reported as acknowledged (see the worker's doc for its line protocol):
//!
//! - no acknowledged enqueue is lost: it is still stored, or an ack of it was sent;
//! - nothing is stored that the worker did not enqueue (every payload carries the run's tag);
//! - no message whose ack was acknowledged is stored or delivered again.
//!
//! Messages delivered again after a crash (leased when the worker died) are counted.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use switchboard_engine::{MessageId, Snapshot};

use crate::conformance::TestRng;

/// Shortest time a worker runs before it is killed, in milliseconds.
pub const KILL_AFTER_MS_MIN: u64 = 50;
/// Longest time a worker runs before it is killed, in milliseconds.
pub const KILL_AFTER_MS_MAX: u64 = 400;

/// What the worker reported in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Ready,
    Enqueued(MessageId, String),
    Delivered(MessageId),
    AckSent(MessageId),
    Acked(MessageId),
}

/// Reads the worker's complete lines; a line cut off by the kill is dropped, since the worker
/// had not finished saying it.
fn parse_events(output: &[u8]) -> Result<Vec<Event>, String> {
    let text = String::from_utf8_lossy(output);
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete.lines().map(parse_line).collect()
}

fn parse_line(line: &str) -> Result<Event, String> {
    let mut parts = line.splitn(3, ' ');
    let kind = parts.next().unwrap_or_default();
    let id = |text: Option<&str>| -> Result<MessageId, String> {
        text.unwrap_or_default()
            .parse()
            .map_err(|error| format!("worker line {line:?}: {error}"))
    };
    Ok(match kind {
        "R" => Event::Ready,
        "E" => {
            let id = id(parts.next())?;
            let payload = parts
                .next()
                .ok_or_else(|| format!("worker line {line:?} has no payload"))?;
            Event::Enqueued(id, payload.to_string())
        }
        "D" => Event::Delivered(id(parts.next())?),
        "a" => Event::AckSent(id(parts.next())?),
        "A" => Event::Acked(id(parts.next())?),
        _ => return Err(format!("worker printed an unknown line {line:?}")),
    })
}

/// Everything the workers have reported so far, and the counts the test prints.
#[derive(Debug, Default)]
pub struct Ledger {
    tag: String,
    enqueued: HashMap<MessageId, String>,
    delivered_in_cycle: HashMap<MessageId, usize>,
    ack_sent: HashSet<MessageId>,
    acked: HashSet<MessageId>,
    /// Cycles in which the worker got as far as opening the store.
    pub cycles_started: usize,
    /// Deliveries of a message that was delivered before, in an earlier worker.
    pub duplicates: u64,
}

impl Ledger {
    /// A ledger for a run whose payloads start with `tag`.
    pub fn new(tag: &str) -> Self {
        Self {
            tag: tag.to_string(),
            ..Self::default()
        }
    }

    /// Takes in one worker's report.
    fn absorb(&mut self, cycle: usize, events: Vec<Event>) -> Result<(), String> {
        for event in events {
            match event {
                Event::Ready => self.cycles_started += 1,
                Event::Enqueued(id, payload) => {
                    if let Some(earlier) = self.enqueued.insert(id, payload.clone()) {
                        return Err(format!(
                            "id {id} acknowledged for two enqueues: {earlier:?} and {payload:?}"
                        ));
                    }
                }
                Event::Delivered(id) => {
                    if self.acked.contains(&id) {
                        return Err(format!(
                            "message {id} delivered after its ack was acknowledged"
                        ));
                    }
                    if let Some(earlier) = self.delivered_in_cycle.insert(id, cycle) {
                        if earlier < cycle {
                            self.duplicates += 1;
                        }
                    }
                }
                Event::AckSent(id) => {
                    self.ack_sent.insert(id);
                }
                Event::Acked(id) => {
                    self.acked.insert(id);
                }
            }
        }
        Ok(())
    }

    /// Checks the store's recovered contents against the reports so far.
    pub fn check(&self, snapshot: &Snapshot) -> Result<(), String> {
        let mut stored = HashSet::new();
        let prefix = format!("{}:", self.tag);
        for message in &snapshot.messages {
            let payload = String::from_utf8_lossy(&message.payload);
            if !payload.starts_with(&prefix) {
                return Err(format!(
                    "message {} has a payload never enqueued: {payload:?}",
                    message.id
                ));
            }
            if let Some(expected) = self.enqueued.get(&message.id) {
                if *expected != payload {
                    return Err(format!(
                        "message {} holds {payload:?}, enqueued as {expected:?}",
                        message.id
                    ));
                }
            }
            if self.acked.contains(&message.id) {
                return Err(format!(
                    "message {} is stored after its ack was acknowledged",
                    message.id
                ));
            }
            stored.insert(message.id);
        }
        let lost: Vec<_> = self
            .enqueued
            .keys()
            .filter(|id| !stored.contains(id) && !self.ack_sent.contains(id))
            .collect();
        if let Some(id) = lost.first() {
            return Err(format!(
                "{} acknowledged enqueues are lost (neither stored nor acked), e.g. {id}",
                lost.len()
            ));
        }
        Ok(())
    }

    /// Enqueues the workers reported as acknowledged.
    pub fn enqueued(&self) -> usize {
        self.enqueued.len()
    }

    /// Acks the workers reported as acknowledged.
    pub fn acked(&self) -> usize {
        self.acked.len()
    }
}

/// Reads a child's pipe to its end on a thread (the pipe ends when the child dies).
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error ends the capture; what was read before it is still checked.
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Runs `cycles` workers on the store at `url`, each killed after a random 50–400 ms, and
/// checks the store after every kill with `recover` (which opens the store, reads it and
/// closes it). Returns the ledger of everything reported.
pub fn run_crash_cycles(
    worker: &Path,
    url: &str,
    cycles: usize,
    seed: u64,
    recover: impl Fn() -> Result<Snapshot, String>,
) -> Result<Ledger, String> {
    let mut rng = TestRng::new(seed);
    let tag = format!("run{seed:x}");
    let mut ledger = Ledger::new(&tag);
    for cycle in 0..cycles {
        let mut child = Command::new(worker)
            .args([url, tag.as_str(), &cycle.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", worker.display()))?;
        let stdout = drain(child.stdout.take().ok_or("worker has no stdout pipe")?);
        let stderr = drain(child.stderr.take().ok_or("worker has no stderr pipe")?);
        let kill_after = Duration::from_millis(rng.range(KILL_AFTER_MS_MIN, KILL_AFTER_MS_MAX + 1));
        let started = Instant::now();
        let mut exited_early = None;
        while started.elapsed() < kill_after {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| format!("cannot poll the worker: {e}"))?
            {
                exited_early = Some(status);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // `kill` sends SIGKILL on Unix: no destructor or flush runs in the worker.
        child
            .kill()
            .map_err(|error| format!("cannot kill the worker: {error}"))?;
        child
            .wait()
            .map_err(|error| format!("cannot reap the worker: {error}"))?;
        let output = stdout.join().map_err(|_| "stdout reader panicked")?;
        let errors = stderr.join().map_err(|_| "stderr reader panicked")?;
        if let Some(status) = exited_early {
            return Err(format!(
                "cycle {cycle}: the worker exited by itself ({status}): {}",
                String::from_utf8_lossy(&errors)
            ));
        }
        ledger.absorb(cycle, parse_events(&output)?)?;
        let snapshot = recover().map_err(|error| format!("cycle {cycle}: {error}"))?;
        ledger
            .check(&snapshot)
            .map_err(|error| format!("cycle {cycle} (seed {seed}): {error}"))?;
    }
    Ok(ledger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_cut_off_by_the_kill_is_dropped() -> Result<(), String> {
        let id = MessageId(7);
        let output = format!("R\nE {id} t:0:1\nA {id}\nD 0000");
        let events = parse_events(output.as_bytes())?;
        assert_eq!(
            events,
            vec![
                Event::Ready,
                Event::Enqueued(id, "t:0:1".to_string()),
                Event::Acked(id)
            ]
        );
        Ok(())
    }
}
