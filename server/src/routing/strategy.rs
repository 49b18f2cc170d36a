//! Picking one agent among the candidates of a routing decision.
//!
//! - Round robin: a cursor *per key* (the capability, the rule, or `*`), so traffic for one
//!   capability does not move the turn of another.
//! - Least loaded: the fewest messages leased and not yet settled (the engine's `leased`
//!   count of the inbox, which falls again on ack, nack and lease expiry); ties go to the
//!   fewest waiting in the inbox, then take turns by the key's cursor.
//! - Sticky: messages carrying the same `metadata.thread_id` go to the agent that got the
//!   thread first, while it is a candidate (online, matching); otherwise round robin picks a
//!   new agent and the thread moves to it.
//!
//! Pure bookkeeping: no I/O and no clock, so every strategy is unit-tested directly. The
//! memory (cursors, thread bindings) is saved in the background by `strategy_persist`, which
//! takes the changes noted here.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::strategy_persist::Change;
use crate::durable::journal::Pending;

/// Threads remembered by the sticky strategy; the oldest binding is forgotten beyond it.
pub const STICKY_THREADS_MAX: usize = 100_000;
/// Round-robin cursors kept; beyond it they are all reset (they only spread load).
pub const CURSORS_MAX: usize = 100_000;

/// A strategy's name, as rules write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// Take turns.
    #[default]
    RoundRobin,
    /// Fewest unsettled leases.
    LeastLoaded,
    /// Same thread, same agent.
    Sticky,
}

impl StrategyKind {
    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::RoundRobin => "round_robin",
            StrategyKind::LeastLoaded => "least_loaded",
            StrategyKind::Sticky => "sticky",
        }
    }

    /// Reads a name as written.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "round_robin" => Some(StrategyKind::RoundRobin),
            "least_loaded" => Some(StrategyKind::LeastLoaded),
            "sticky" => Some(StrategyKind::Sticky),
            _ => None,
        }
    }
}

/// An agent that may receive the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Agent id.
    pub id: String,
    /// Agent name (candidates are ordered by it, so turns are predictable).
    pub name: String,
    /// Messages leased from its inbox and not yet settled.
    pub leased: u64,
    /// Messages ready or delayed in its inbox.
    pub queued: u64,
}

/// The strategies' memory: cursors and thread bindings.
#[derive(Default)]
pub struct Strategies {
    cursors: HashMap<String, u64>,
    threads: HashMap<String, String>,
    /// Binding order, oldest first, to forget the oldest beyond [`STICKY_THREADS_MAX`].
    thread_order: VecDeque<String>,
    /// Cursors moved since they were last saved: only their latest value is saved.
    pub(super) moved_cursors: HashSet<String>,
    /// Bindings not saved yet.
    pub(super) pending: Pending<Change>,
}

impl Strategies {
    /// Picks one of `candidates` (sorted by name) for a message routed under `key`; `thread`
    /// is its `metadata.thread_id`. `None` only when there are no candidates.
    pub fn choose<'c>(
        &mut self,
        kind: StrategyKind,
        key: &str,
        candidates: &'c [Candidate],
        thread: Option<&str>,
    ) -> Option<&'c Candidate> {
        if candidates.is_empty() {
            return None;
        }
        match (kind, thread) {
            (StrategyKind::RoundRobin, _) | (StrategyKind::Sticky, None) => {
                Some(&candidates[self.turn(key, candidates.len())])
            }
            (StrategyKind::LeastLoaded, _) => {
                let least = candidates
                    .iter()
                    .map(|c| (c.leased, c.queued))
                    .min()
                    .expect("not empty");
                let tied: Vec<&Candidate> = candidates
                    .iter()
                    .filter(|c| (c.leased, c.queued) == least)
                    .collect();
                Some(tied[self.turn(key, tied.len())])
            }
            (StrategyKind::Sticky, Some(thread)) => {
                if let Some(bound) = self.threads.get(thread) {
                    if let Some(agent) = candidates.iter().find(|c| &c.id == bound) {
                        return Some(agent);
                    }
                }
                let agent = &candidates[self.turn(key, candidates.len())];
                self.bind(thread, &agent.id);
                Some(agent)
            }
        }
    }

    /// The agent a thread is bound to, if any.
    #[cfg(test)]
    pub fn thread_agent(&self, thread: &str) -> Option<&str> {
        self.threads.get(thread).map(String::as_str)
    }

    fn turn(&mut self, key: &str, len: usize) -> usize {
        let cursor = self.cursor_entry(key);
        let index = (*cursor % len as u64) as usize;
        *cursor = cursor.wrapping_add(1);
        if self.moved_cursors.insert(key.to_string()) {
            self.pending.touch();
        }
        index
    }

    /// The cursor of `key`, made when missing (all are reset past [`CURSORS_MAX`]).
    fn cursor_entry(&mut self, key: &str) -> &mut u64 {
        if !self.cursors.contains_key(key) && self.cursors.len() >= CURSORS_MAX {
            self.cursors.clear();
            self.moved_cursors.clear();
            // The saved cursors are reset too: the next save is a whole snapshot.
            self.pending.need_snapshot();
        }
        self.cursors.entry(key.to_string()).or_insert(0)
    }

    /// Sets a cursor read back from storage.
    pub(super) fn restore_cursor(&mut self, key: &str, next: u64) {
        *self.cursor_entry(key) = next;
    }

    /// The cursors, by key: the turn each takes next.
    pub(super) fn cursors(&self) -> &HashMap<String, u64> {
        &self.cursors
    }

    /// The thread bindings (thread, agent id), oldest first.
    pub(super) fn threads(&self) -> impl Iterator<Item = (&str, &str)> {
        self.thread_order.iter().filter_map(|thread| {
            self.threads
                .get(thread)
                .map(|agent| (thread.as_str(), agent.as_str()))
        })
    }

    /// Binds `thread` to `agent_id` (a sticky pick, or one read back from storage).
    pub(super) fn bind(&mut self, thread: &str, agent_id: &str) {
        self.pending.push(|| Change::Thread {
            thread: thread.to_string(),
            agent_id: agent_id.to_string(),
        });
        let previous = self
            .threads
            .insert(thread.to_string(), agent_id.to_string());
        if previous.is_none() {
            self.thread_order.push_back(thread.to_string());
        }
        while self.threads.len() > STICKY_THREADS_MAX {
            match self.thread_order.pop_front() {
                Some(oldest) => {
                    self.threads.remove(&oldest);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str, leased: u64, queued: u64) -> Candidate {
        Candidate {
            id: format!("id-{name}"),
            name: name.into(),
            leased,
            queued,
        }
    }

    fn names<'a>(picks: impl Iterator<Item = &'a Candidate>) -> Vec<&'a str> {
        picks.map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn round_robin_takes_turns_per_key() {
        let mut strategies = Strategies::default();
        let quality = [agent("a", 0, 0), agent("b", 0, 0), agent("c", 0, 0)];
        let docs = [agent("d", 0, 0), agent("e", 0, 0)];
        let mut picks = Vec::new();
        for _ in 0..4 {
            picks.push(
                strategies
                    .choose(StrategyKind::RoundRobin, "quality", &quality, None)
                    .unwrap(),
            );
            // Another capability's traffic in between does not move quality's turn.
            strategies.choose(StrategyKind::RoundRobin, "docs", &docs, None);
        }
        assert_eq!(names(picks.into_iter()), ["a", "b", "c", "a"]);
    }

    #[test]
    fn least_loaded_picks_the_fewest_leases() {
        let mut strategies = Strategies::default();
        let candidates = [agent("a", 3, 0), agent("b", 1, 5), agent("c", 2, 0)];
        let pick = strategies.choose(StrategyKind::LeastLoaded, "k", &candidates, None);
        assert_eq!(pick.unwrap().name, "b");
    }

    #[test]
    fn least_loaded_breaks_ties_by_queue_then_turns() {
        let mut strategies = Strategies::default();
        let candidates = [agent("a", 0, 2), agent("b", 0, 0), agent("c", 0, 0)];
        let picks: Vec<&Candidate> = (0..3)
            .map(|_| {
                strategies
                    .choose(StrategyKind::LeastLoaded, "k", &candidates, None)
                    .unwrap()
            })
            .collect();
        assert_eq!(names(picks.into_iter()), ["b", "c", "b"]);
    }

    #[test]
    fn sticky_keeps_a_thread_on_its_agent_while_it_is_a_candidate() {
        let mut strategies = Strategies::default();
        let all = [agent("a", 0, 0), agent("b", 0, 0)];
        let first = strategies
            .choose(StrategyKind::Sticky, "k", &all, Some("t1"))
            .unwrap()
            .name
            .clone();
        let other = strategies
            .choose(StrategyKind::Sticky, "k", &all, Some("t2"))
            .unwrap()
            .name
            .clone();
        assert_ne!(first, other, "new threads still take turns");
        for _ in 0..5 {
            let again = strategies.choose(StrategyKind::Sticky, "k", &all, Some("t1"));
            assert_eq!(again.unwrap().name, first);
        }
        // Its agent went offline: the thread moves, and stays on the new agent.
        let remaining: Vec<Candidate> = all.iter().filter(|c| c.name != first).cloned().collect();
        let moved = strategies
            .choose(StrategyKind::Sticky, "k", &remaining, Some("t1"))
            .unwrap();
        assert_eq!(moved.name, other);
        assert_eq!(strategies.thread_agent("t1"), Some(moved.id.as_str()));
    }

    #[test]
    fn sticky_without_a_thread_is_round_robin() {
        let mut strategies = Strategies::default();
        let all = [agent("a", 0, 0), agent("b", 0, 0)];
        let picks: Vec<&Candidate> = (0..2)
            .map(|_| {
                strategies
                    .choose(StrategyKind::Sticky, "k", &all, None)
                    .unwrap()
            })
            .collect();
        assert_eq!(names(picks.into_iter()), ["a", "b"]);
    }

    #[test]
    fn no_candidates_means_no_pick() {
        let mut strategies = Strategies::default();
        for kind in [
            StrategyKind::RoundRobin,
            StrategyKind::LeastLoaded,
            StrategyKind::Sticky,
        ] {
            assert!(strategies.choose(kind, "k", &[], Some("t")).is_none());
        }
    }

    #[test]
    fn the_oldest_thread_is_forgotten_beyond_the_limit() {
        let mut strategies = Strategies::default();
        let all = [agent("a", 0, 0)];
        for thread in 0..=STICKY_THREADS_MAX {
            strategies.choose(StrategyKind::Sticky, "k", &all, Some(&thread.to_string()));
        }
        assert_eq!(strategies.thread_agent("0"), None);
        assert_eq!(strategies.thread_agent("1"), Some("id-a"));
    }
}
