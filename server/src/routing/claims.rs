//! Routed sends' idempotency keys, kept in the engine, so that a send retried with the same
//! key after a restart, or against another server after a failover, is stored once.
//!
//! The slots of `idempotency` answer retries on one server and are gone after a restart; a
//! retry routed again could then pick another agent, whose inbox never saw the key (the
//! engine deduplicates per queue). So before a keyed routed message is stored, its routing
//! decision (the agent, or "waiting") is *claimed* in the reserved queue [`CLAIMS_QUEUE`]
//! under an engine dedup key made of the sender, the requested recipient and the key. The
//! first try's claim is stored; a retry's is deduplicated to it, and the retry goes where the
//! claim says with the same key, where the engine's own dedup finds the first message, or
//! stores it when the first try died between its claim and its message. The claim is durable
//! before the message is stored, so no crash lets a retry choose anew once the first try's
//! message is stored. This costs keyed routed sends one more engine commit.
//!
//! Claims last as long as the engine remembers a key ([`ROUTED_KEY_WINDOW_MS`]: the claim's
//! time to live and the queue's dedup window), so the queue holds at most the keyed routed
//! sends of that window, and at most [`CLAIMS_MAX`]; past that a send is routed unclaimed
//! (as before claims existed) and a warning is logged.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_engine::{Engine, EngineError, NewMessage, QueueConfig};

use super::idempotency::ROUTED_KEY_WINDOW_MS;
use crate::error::ApiResult;
use crate::state::AppState;

/// The reserved engine queue holding the claims.
pub const CLAIMS_QUEUE: &str = "_routed_sends";
/// Claims held at most (sends within one [`ROUTED_KEY_WINDOW_MS`]).
pub const CLAIMS_MAX: u64 = 1_000_000;

/// Where the first try of a keyed routed send went.
#[derive(Debug, Serialize, Deserialize)]
struct Claim {
    /// The agent chosen, by id; `None`: the message waits for one.
    agent_id: Option<String>,
}

/// Creates (or reconfigures) the claims' queue.
pub async fn configure(engine: &Engine) -> Result<(), EngineError> {
    let config = QueueConfig {
        max_size: CLAIMS_MAX,
        message_ttl_ms: ROUTED_KEY_WINDOW_MS,
        max_attempts: u32::MAX,
        dead_letters: false,
        dedup_window_ms: ROUTED_KEY_WINDOW_MS,
        ..QueueConfig::default()
    };
    engine.configure_queue(CLAIMS_QUEUE, config).await
}

/// Where `sender`'s send to `recipient` with idempotency key `key` must go: `chosen` (an agent
/// id, or `None` for waiting) on its first try, the first try's choice on a retry.
pub async fn claim(
    state: &AppState,
    sender: &str,
    recipient: &str,
    key: &str,
    chosen: Option<String>,
) -> ApiResult<Option<String>> {
    if !state.routing.claims_kept() {
        return Ok(chosen);
    }
    let claim = Claim {
        agent_id: chosen.clone(),
    };
    let message = NewMessage {
        payload: serde_json::to_vec(&claim).expect("a claim always serializes"),
        dedup_key: Some(claim_key(sender, recipient, key)),
        max_attempts: Some(u32::MAX),
        ..NewMessage::default()
    };
    let stored = match state.engine.enqueue(CLAIMS_QUEUE, message).await {
        Ok(stored) => stored,
        Err(EngineError::QueueFull { .. }) => {
            tracing::warn!(
                "{CLAIMS_MAX} routed sends' keys are kept already; this one is routed \
                 unclaimed, and a retry after a restart may reach another agent"
            );
            return Ok(chosen);
        }
        Err(other) => return Err(other.into()),
    };
    if !stored.deduplicated {
        return Ok(chosen);
    }
    let first = state.engine.message(stored.id).await?;
    let Some((message, _)) = first else {
        // Expired at the very end of the window: this try counts as a new send.
        return Ok(chosen);
    };
    match serde_json::from_slice::<Claim>(&message.payload) {
        Ok(first) => Ok(first.agent_id),
        Err(error) => {
            tracing::error!(id = %stored.id, %error, "unreadable routed-send claim ignored");
            Ok(chosen)
        }
    }
}

/// The engine dedup key of a routed send: a digest of its parts (each length-prefixed, so
/// no two sends share one), short enough for any sender, recipient and key.
fn claim_key(sender: &str, recipient: &str, key: &str) -> String {
    let recipient = recipient.trim().to_lowercase();
    let mut digest = Sha256::new();
    for part in [sender, recipient.as_str(), key] {
        digest.update((part.len() as u64).to_le_bytes());
        digest.update(part.as_bytes());
    }
    digest
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_key_names_the_send_and_ignores_recipient_case() {
        let key = claim_key("alice", "capability:quality", "k");
        assert_eq!(key, claim_key("alice", " Capability:Quality ", "k"));
        assert_ne!(key, claim_key("alice", "capability:quality", "j"));
        assert_ne!(key, claim_key("alic", "ecapability:quality", "k"));
        assert_eq!(key.len(), 64);
    }
}
