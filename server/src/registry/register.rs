//! Registration over the API: a new name gets an id (and, in `--auth token` mode, the hash of
//! a fresh token); an existing name keeps its id and is updated, once the caller has shown it
//! may (its own token, or the admin's, which installs the fresh token: rotation).

use std::sync::Arc;

use super::{discovery, persist, validate_registration, AgentRecord, Agents, Presence, Registry};
use crate::api::wire::RegisterRequest;
use crate::auth::{Caller, TokenHash};
use crate::error::{ApiError, ApiResult};
use crate::limits;

/// Who registers, in `--auth token` mode, and the token to install when one is issued.
#[derive(Debug, Clone)]
pub struct TokenClaim {
    /// The caller, as the auth guard found it.
    pub caller: Caller,
    /// The hash of a freshly made token, installed for a new name or by the admin.
    pub fresh: TokenHash,
}

impl TokenClaim {
    /// The token hash `existing` gets from a re-registration by this caller, or the refusal.
    fn token_for_existing(&self, existing: &AgentRecord) -> ApiResult<Option<String>> {
        let name = &existing.name;
        match &self.caller {
            Caller::AuthOff => Ok(existing.token_sha256.clone()),
            Caller::Admin => Ok(Some(self.fresh.to_hex())),
            Caller::Agent { id, .. } if *id == existing.id => Ok(existing.token_sha256.clone()),
            Caller::Agent { name: other, .. } => Err(ApiError::Forbidden(format!(
                "agent {name:?} is registered already; the token of agent {other:?} cannot \
                 re-register it (use {name:?}'s own token, or the admin token to issue a new one)"
            ))),
            Caller::Anonymous => Err(ApiError::Unauthorized(format!(
                "agent {name:?} is registered already; re-registering it needs its token (sent \
                 as `Authorization: Bearer TOKEN`), or the admin token to issue a new one"
            ))),
        }
    }
}

impl Registry {
    /// Registers `request.name`, or updates it when the name exists (same id), without token
    /// checks (`--auth none`, and the server's own registrations). Returns the record and
    /// whether it was new.
    pub async fn register(&self, request: RegisterRequest) -> ApiResult<(Arc<AgentRecord>, bool)> {
        let (record, created, _) = self.register_as(request, None).await?;
        Ok((record, created))
    }

    /// Like [`Registry::register`], checking `claim` in `--auth token` mode: a new name gets
    /// the claim's fresh token; an existing name needs its own token (kept) or the admin token
    /// (which installs the fresh one: rotation); anyone else is refused (401 without a token,
    /// 403 with another agent's). Returns the record, whether it was new, and whether the fresh
    /// token was installed (and must be handed to the caller).
    pub async fn register_as(
        &self,
        request: RegisterRequest,
        claim: Option<TokenClaim>,
    ) -> ApiResult<(Arc<AgentRecord>, bool, bool)> {
        validate_registration(&request)?;
        let now = self.engine.now_ms();
        let presence = Presence {
            last_seen: now,
            reported: None,
        };
        let (record, created, issued, changed) = {
            let mut agents = self.agents.write();
            match agents.id_by_name.get(&request.name).cloned() {
                Some(id) => {
                    let (record, issued, changed) =
                        update(&mut agents, &id, request, claim.as_ref(), presence)?;
                    (record, false, issued, changed)
                }
                None => {
                    let (record, version) = insert(&mut agents, request, claim, presence, now)?;
                    let issued = record.token_sha256.is_some();
                    (record, true, issued, Some(version))
                }
            }
        };
        if let Some(version) = changed {
            persist::put(&self.engine, version, &record).await?;
        }
        self.arrivals.notify_one();
        Ok((record, created, issued))
    }
}

/// Re-registration of the agent with `id`: the updated record, whether a fresh token was
/// installed, and the version to persist when the record changed.
fn update(
    agents: &mut Agents,
    id: &str,
    request: RegisterRequest,
    claim: Option<&TokenClaim>,
    presence: Presence,
) -> ApiResult<(Arc<AgentRecord>, bool, Option<u64>)> {
    let old = agents
        .by_id
        .get(id)
        .expect("every name maps to a registered id")
        .record
        .clone();
    let token = match claim {
        None => old.token_sha256.clone(),
        Some(claim) => claim.token_for_existing(&old)?,
    };
    let issued = token != old.token_sha256;
    // A discovered agent keeps its discovered capabilities beside the declared.
    let registered = old
        .discovery
        .is_some()
        .then(|| request.capabilities.clone());
    let capabilities =
        discovery::effective_capabilities(&request.capabilities, old.discovery.as_deref());
    let updated = AgentRecord {
        capabilities,
        registered_capabilities: registered,
        endpoint: request.endpoint,
        metadata: request.metadata,
        token_sha256: token,
        ..(*old).clone()
    };
    let changed = updated != *old;
    agents.version += 1;
    let version = agents.version;
    if issued {
        if let Some(hash) = old.token_hash() {
            agents.id_by_token.remove(&hash);
        }
        if let Some(hash) = updated.token_hash() {
            agents.id_by_token.insert(hash, id.to_string());
        }
    }
    let entry = agents.by_id.get_mut(id).expect("looked up above");
    if changed {
        entry.record = Arc::new(updated);
        entry.version = version;
    }
    entry.presence = presence;
    Ok((entry.record.clone(), issued, changed.then_some(version)))
}

/// A new name: its record (with the claim's fresh token hash) and the version to persist.
fn insert(
    agents: &mut Agents,
    request: RegisterRequest,
    claim: Option<TokenClaim>,
    presence: Presence,
    now: switchboard_engine::UnixMillis,
) -> ApiResult<(Arc<AgentRecord>, u64)> {
    // Ids are UUIDs, which `names::refusal` already turns away; this holds whatever an id is.
    if agents.by_id.contains_key(&request.name) {
        return Err(ApiError::invalid(format!(
            "name {:?} is another agent's id; a name may not be an id: choose another",
            request.name
        )));
    }
    if agents.by_id.len() >= limits::AGENTS_MAX {
        return Err(ApiError::invalid(format!(
            "the registry holds its limit of {} agents; delete some first",
            limits::AGENTS_MAX
        )));
    }
    agents.version += 1;
    let version = agents.version;
    let record = Arc::new(AgentRecord {
        id: uuid::Uuid::new_v4().to_string(),
        name: request.name,
        capabilities: request.capabilities,
        endpoint: request.endpoint,
        metadata: request.metadata,
        registered_at: now,
        registered_capabilities: None,
        discovery: None,
        token_sha256: claim.map(|claim| claim.fresh.to_hex()),
    });
    agents.index(record.clone(), version, presence);
    Ok((record, version))
}
