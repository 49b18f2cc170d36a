//! The test plays the agents: one task per agent reads its inbox through the REST API and
//! acknowledges what it reads (or, for an agent that never acks, only reads).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// Agents played until dropped.
pub struct Players {
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<HashMap<String, Vec<Value>>>>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Players {
    /// Plays `acking` (which ack everything) and `silent` (which read and never ack) against
    /// the server at `base`.
    pub fn start(base: &str, acking: &[&str], silent: &[&str]) -> Players {
        let stop = Arc::new(AtomicBool::new(false));
        let received: Arc<Mutex<HashMap<String, Vec<Value>>>> = Default::default();
        let mut handles = Vec::new();
        let agents = acking
            .iter()
            .map(|name| (*name, true))
            .chain(silent.iter().map(|name| (*name, false)));
        for (name, acks) in agents {
            handles.push(tokio::spawn(play(
                base.to_string(),
                name.to_string(),
                acks,
                stop.clone(),
                received.clone(),
            )));
        }
        Players {
            stop,
            received,
            handles,
        }
    }

    /// Every message `name` has read so far.
    pub fn received(&self, name: &str) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Players {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for handle in &self.handles {
            handle.abort();
        }
    }
}

async fn play(
    base: String,
    name: String,
    acks: bool,
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<HashMap<String, Vec<Value>>>>,
) {
    let client = reqwest::Client::new();
    while !stop.load(Ordering::Relaxed) {
        // 404 until discovery registers the agent: keep asking.
        let url = format!("{base}/api/v1/messages/{name}?wait_seconds=1&limit=10");
        let Ok(response) = client.get(&url).send().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if !response.status().is_success() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let messages: Vec<Value> = response.json().await.unwrap_or_default();
        for message in messages {
            if acks {
                let id = message["id"].as_str().unwrap_or_default().to_string();
                let ack = format!("{base}/api/v1/messages/{id}/ack?agent_id={name}");
                let _ = client.post(&ack).send().await;
            }
            received
                .lock()
                .unwrap()
                .entry(name.clone())
                .or_default()
                .push(message);
        }
    }
}
