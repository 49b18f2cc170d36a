//! Which agent has a socket open now. A new socket for an agent *replaces* the old one: the old
//! one is told to close, and its later close cannot remove the new one's entry, because removal
//! names the connection number it was given (the original's defect was removing by agent).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

struct Current {
    connection: u64,
    replaced: Arc<Notify>,
}

/// Open agent sockets.
#[derive(Default)]
pub struct Sockets {
    by_agent: Mutex<HashMap<String, Current>>,
    next_connection: AtomicU64,
    open: AtomicUsize,
    all_closed: Notify,
}

impl Sockets {
    /// Numbers a connection while its upgrade request is answered, before the client learns
    /// it is open: numbers grow in the order clients were told "connected", which is the
    /// order "newest wins" must follow (the upgraded sockets' tasks may start in any order).
    pub fn number(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Makes `connection` (from [`Sockets::number`]) the agent's current socket, telling the
    /// previous one (if any) to close. A connection attached after a newer one of the same
    /// agent is itself replaced at once, so the newest connection wins whatever the order in
    /// which their tasks started.
    pub fn attach(&self, agent_id: &str, connection: u64) -> Arc<Notify> {
        let replaced = Arc::new(Notify::new());
        {
            let mut by_agent = self.by_agent.lock();
            match by_agent.get_mut(agent_id) {
                Some(current) if current.connection > connection => {
                    // notify_one keeps a permit: the reader sees it when it starts waiting.
                    replaced.notify_one();
                }
                Some(current) => {
                    current.replaced.notify_one();
                    *current = Current {
                        connection,
                        replaced: replaced.clone(),
                    };
                }
                None => {
                    by_agent.insert(
                        agent_id.to_string(),
                        Current {
                            connection,
                            replaced: replaced.clone(),
                        },
                    );
                }
            }
        }
        self.open.fetch_add(1, Ordering::SeqCst);
        replaced
    }

    /// Forgets `connection`; true when it was still the agent's current socket (then the agent
    /// has no socket left).
    pub fn detach(&self, agent_id: &str, connection: u64) -> bool {
        let was_current = {
            let mut by_agent = self.by_agent.lock();
            let current = by_agent
                .get(agent_id)
                .is_some_and(|entry| entry.connection == connection);
            if current {
                by_agent.remove(agent_id);
            }
            current
        };
        if self.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.all_closed.notify_waiters();
        }
        was_current
    }

    /// True while the agent has a socket open.
    pub fn is_connected(&self, agent_id: &str) -> bool {
        self.by_agent.lock().contains_key(agent_id)
    }

    /// Agents with a socket open.
    pub fn agent_count(&self) -> usize {
        self.by_agent.lock().len()
    }

    /// Sockets open (a replaced socket counts until it has closed).
    pub fn open_count(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Waits until every socket has closed, or `grace` has passed; true when all closed.
    pub async fn wait_all_closed(&self, grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let notified = self.all_closed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.open_count() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.open_count() == 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The connection answered last stays the agent's socket even when the older one's task
    /// attaches after it (the upgraded sockets' tasks start in any order under load).
    #[tokio::test]
    async fn the_newest_connection_wins_whatever_order_they_attach_in() {
        let sockets = Sockets::default();
        let older = sockets.number();
        let newer = sockets.number();
        let newer_replaced = sockets.attach("alice", newer);
        let older_replaced = sockets.attach("alice", older);
        // The older one is told to close at once; the newer one is not.
        tokio::time::timeout(Duration::from_secs(1), older_replaced.notified())
            .await
            .expect("the older connection is replaced");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), newer_replaced.notified())
                .await
                .is_err(),
            "the newer connection must not be replaced"
        );
        // The older one's close leaves the newer one in place.
        assert!(!sockets.detach("alice", older));
        assert!(sockets.is_connected("alice"));
        assert!(sockets.detach("alice", newer));
        assert!(!sockets.is_connected("alice"));
    }

    /// In the usual order, a new connection replaces the one before it.
    #[tokio::test]
    async fn a_new_connection_replaces_the_previous_one() {
        let sockets = Sockets::default();
        let first = sockets.number();
        let first_replaced = sockets.attach("alice", first);
        let second = sockets.number();
        let _second_replaced = sockets.attach("alice", second);
        tokio::time::timeout(Duration::from_secs(1), first_replaced.notified())
            .await
            .expect("the first connection is replaced");
        assert!(!sockets.detach("alice", first));
        assert!(sockets.is_connected("alice"));
    }
}
