//! One writer task per pane, so that texts for the same pane (dual-mode copies, instructions,
//! notices) are typed one after the other, never interleaved, in the order they were asked
//! for; different panes are written in parallel.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use super::tmux::{deliver, DeliveryOptions, DeliveryOutcome, PaneId, Tmux};

/// Texts waiting for one pane; beyond it a copy fails at once rather than piling up.
pub const PANE_BACKLOG_MAX: usize = 64;
/// A writer with nothing to do for this long stops (a new one starts on demand).
const WRITER_IDLE: Duration = Duration::from_secs(30);

struct PaneJob {
    tmux: Tmux,
    text: String,
    options: DeliveryOptions,
    reply: oneshot::Sender<DeliveryOutcome>,
}

/// The writers, by pane.
#[derive(Default)]
pub struct PaneWriters {
    writers: std::sync::Arc<Mutex<HashMap<PaneId, mpsc::Sender<PaneJob>>>>,
}

impl PaneWriters {
    /// Types `text` into `pane` after whatever is already queued for it.
    pub async fn deliver(
        &self,
        tmux: &Tmux,
        pane: &PaneId,
        text: String,
        options: &DeliveryOptions,
    ) -> DeliveryOutcome {
        let (reply, outcome) = oneshot::channel();
        let mut job = PaneJob {
            tmux: tmux.clone(),
            text,
            options: options.clone(),
            reply,
        };
        // A writer may stop between our lookup and our send: then start another, once.
        for _ in 0..2 {
            let sender = self.writer(pane);
            match sender.try_send(job) {
                Ok(()) => {
                    return outcome.await.unwrap_or_else(|_| DeliveryOutcome::Failed {
                        reason: "the pane writer stopped".into(),
                    })
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return DeliveryOutcome::Failed {
                        reason: format!(
                            "{PANE_BACKLOG_MAX} texts are already waiting for pane {pane}"
                        ),
                    }
                }
                Err(mpsc::error::TrySendError::Closed(returned)) => {
                    job = returned;
                    self.writers.lock().remove(pane);
                }
            }
        }
        DeliveryOutcome::Failed {
            reason: format!("no writer could be started for pane {pane}"),
        }
    }

    fn writer(&self, pane: &PaneId) -> mpsc::Sender<PaneJob> {
        let mut writers = self.writers.lock();
        if let Some(sender) = writers.get(pane) {
            if !sender.is_closed() {
                return sender.clone();
            }
        }
        let (sender, receiver) = mpsc::channel(PANE_BACKLOG_MAX);
        writers.insert(pane.clone(), sender.clone());
        let own = sender.downgrade();
        tokio::spawn(write_pane(
            pane.clone(),
            receiver,
            own,
            self.writers.clone(),
        ));
        sender
    }
}

async fn write_pane(
    pane: PaneId,
    mut jobs: mpsc::Receiver<PaneJob>,
    own: mpsc::WeakSender<PaneJob>,
    writers: std::sync::Arc<Mutex<HashMap<PaneId, mpsc::Sender<PaneJob>>>>,
) {
    loop {
        match tokio::time::timeout(WRITER_IDLE, jobs.recv()).await {
            Ok(Some(job)) => {
                let outcome = deliver(&job.tmux, &pane, &job.text, &job.options).await;
                let _ = job.reply.send(outcome);
            }
            Ok(None) => return,
            Err(_idle) => {
                // Under the map's lock no new sender can be handed out; a sender handed out
                // before finds the channel closed and starts a new writer.
                let stopping = {
                    let mut map = writers.lock();
                    let idle = jobs.is_empty();
                    if idle {
                        let ours = own.upgrade().is_some_and(|own| {
                            map.get(&pane)
                                .is_some_and(|listed| listed.same_channel(&own))
                        });
                        if ours {
                            map.remove(&pane);
                        }
                        jobs.close();
                    }
                    idle
                };
                if stopping {
                    // Anything that slipped in before the close is still delivered.
                    while let Some(job) = jobs.recv().await {
                        let outcome = deliver(&job.tmux, &pane, &job.text, &job.options).await;
                        let _ = job.reply.send(outcome);
                    }
                    return;
                }
            }
        }
    }
}
