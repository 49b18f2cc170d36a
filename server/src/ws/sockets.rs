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
    /// Makes connection the agent's current socket, telling the previous one (if any) to close.
    pub fn attach(&self, agent_id: &str) -> (u64, Arc<Notify>) {
        let connection = self.next_connection.fetch_add(1, Ordering::Relaxed) + 1;
        let replaced = Arc::new(Notify::new());
        let previous = self.by_agent.lock().insert(
            agent_id.to_string(),
            Current {
                connection,
                replaced: replaced.clone(),
            },
        );
        if let Some(previous) = previous {
            // notify_one keeps a permit, so the old socket sees it even if not waiting yet.
            previous.replaced.notify_one();
        }
        self.open.fetch_add(1, Ordering::SeqCst);
        (connection, replaced)
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
