//! The broker: turns `auto` and `capability:NAME` recipients into an agent's inbox, or into
//! a waiting queue when no candidate is online, and keeps the rule set and its strategies'
//! memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use serde_json::json;
use switchboard_engine::{Engine, Enqueued};

use super::advice;
use super::candidates::{candidates, Target};
use super::idempotency::RoutedSends;
use super::metrics::RoutingMetrics;
use super::persist::{self, RuleStore};
use super::rules::{self, RuleSet, RuleSetSpec};
use super::strategy::{Strategies, StrategyKind};
use super::waiting::{self, WAITING_MOVE_ATTEMPTS};
use super::{RECIPIENT_AUTO, RECIPIENT_CAPABILITY_PREFIX};
use crate::api::wire::SendMessageRequest;
use crate::error::{ApiError, ApiResult};
use crate::inbox;
use crate::registry::{validate_name, AgentRecord};
use crate::state::AppState;

/// What happened to a sent message: where it went and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The recipient as the send response names it: the agent's name, or the waiting queue.
    pub name: String,
    /// The agent that got it, by name; `None` while it waits.
    pub routed_to: Option<String>,
    /// The rule that matched (`auto` only).
    pub rule: Option<String>,
    /// The strategy that picked the agent (or will, for a waiting message).
    pub strategy: Option<StrategyKind>,
    /// The capability aimed at, if any.
    pub capability: Option<String>,
    /// The waiting queue holding it until a candidate comes online.
    pub waiting_queue: Option<String>,
    /// The capability it waits for, when it waits in a capability's queue.
    pub waiting_for_capability: Option<String>,
    /// For people: why it waits (no agent has the capability, with a "did you mean"), or
    /// which rule `auto` fell back to.
    pub note: Option<String>,
}

impl Routed {
    /// A message sent to a named agent, no routing involved.
    pub fn direct(agent: &AgentRecord) -> Self {
        Self {
            name: agent.name.clone(),
            routed_to: Some(agent.name.clone()),
            rule: None,
            strategy: None,
            capability: None,
            waiting_queue: None,
            waiting_for_capability: None,
            note: None,
        }
    }
}

/// Where the rules in force came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesSource {
    /// Built in.
    Defaults,
    /// `--routing-rules FILE` (also rewritten by PUT).
    File(std::path::PathBuf),
    /// Set over the API, kept in the engine.
    Api,
}

impl std::fmt::Display for RulesSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RulesSource::Defaults => write!(f, "defaults"),
            RulesSource::File(path) => write!(f, "file:{}", path.display()),
            RulesSource::Api => write!(f, "api"),
        }
    }
}

/// The routing state of a server.
pub struct Router {
    rules: RwLock<(Arc<RuleSet>, RulesSource)>,
    store: RuleStore,
    /// Version of the last rule set kept in the engine.
    version: Mutex<u64>,
    /// One rule update at a time, so versions and file writes do not interleave.
    updating: tokio::sync::Mutex<()>,
    /// Cursors and thread bindings. Held only for the pick, never across an `.await`.
    /// Shared with the writer that saves them (see `strategy_persist`).
    pub(super) strategies: Arc<Mutex<Strategies>>,
    /// Counters for `/api/v1/stats`.
    pub metrics: RoutingMetrics,
    /// Answers of routed sends by idempotency key, for their retries.
    sends: RoutedSends,
    /// Set once the claims' queue is configured (see `claims`); until then keyed routed
    /// sends are not claimed (unit tests that never restore).
    claims_kept: AtomicBool,
}

impl Router {
    /// A router with the default rules that keeps updates in `rules_file`, or in the engine
    /// when there is none. [`Router::load`] reads what was kept.
    pub fn new(rules_file: Option<std::path::PathBuf>) -> Self {
        Self {
            rules: RwLock::new((Arc::new(RuleSet::defaults()), RulesSource::Defaults)),
            store: rules_file.map_or(RuleStore::Engine, RuleStore::File),
            version: Mutex::new(0),
            updating: tokio::sync::Mutex::new(()),
            strategies: Arc::new(Mutex::new(Strategies::default())),
            metrics: RoutingMetrics::default(),
            sends: RoutedSends::default(),
            claims_kept: AtomicBool::new(false),
        }
    }

    /// True once keyed routed sends are claimed in the engine.
    pub fn claims_kept(&self) -> bool {
        self.claims_kept.load(Ordering::Acquire)
    }

    /// Turns claiming on (its queue is configured).
    pub(super) fn keep_claims(&self) {
        self.claims_kept.store(true, Ordering::Release);
    }

    /// Loads the kept rules: the file (an error names what is wrong with it), else the
    /// engine's, else keeps the defaults.
    pub async fn load(&self, engine: &Engine) -> Result<(), String> {
        match &self.store {
            RuleStore::File(path) => {
                let set = rules::load_file(path)
                    .map_err(|error| format!("routing rules file {}: {error}", path.display()))?;
                *self.rules.write() = (Arc::new(set), RulesSource::File(path.clone()));
            }
            RuleStore::Engine => {
                let kept = persist::load_from_engine(engine)
                    .await
                    .map_err(|error| format!("cannot read routing rules: {error}"))?;
                if let Some((spec, version)) = kept {
                    let set = RuleSet::compile(spec)
                        .map_err(|error| format!("kept routing rules are invalid: {error}"))?;
                    *self.rules.write() = (Arc::new(set), RulesSource::Api);
                    *self.version.lock() = version;
                }
            }
        }
        Ok(())
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().0.clone()
    }

    /// The rules in force and where they came from.
    pub fn rules_with_source(&self) -> (Arc<RuleSet>, RulesSource) {
        self.rules.read().clone()
    }

    /// Checks, keeps and puts `spec` in force.
    pub async fn replace_rules(
        &self,
        engine: &Engine,
        spec: RuleSetSpec,
    ) -> ApiResult<Arc<RuleSet>> {
        let set = Arc::new(RuleSet::compile(spec).map_err(ApiError::invalid)?);
        let _one_at_a_time = self.updating.lock().await;
        let spec = set.spec();
        let source = match &self.store {
            RuleStore::File(path) => {
                let path = path.clone();
                let target = path.clone();
                tokio::task::spawn_blocking(move || persist::save_to_file(&target, &spec))
                    .await
                    .map_err(|error| ApiError::Internal(error.to_string()))?
                    .map_err(|error| {
                        ApiError::Unavailable(format!(
                            "cannot write the routing rules file {}: {error}; the rules in force did not change",
                            path.display()
                        ))
                    })?;
                RulesSource::File(path)
            }
            RuleStore::Engine => {
                let version = *self.version.lock() + 1;
                persist::save_to_engine(engine, &spec, version).await?;
                *self.version.lock() = version;
                RulesSource::Api
            }
        };
        *self.rules.write() = (set.clone(), source);
        Ok(set)
    }
}

/// Routes `request` from `sender`; its recipient is `auto` or `capability:NAME`.
pub async fn route(
    state: &AppState,
    sender: &str,
    mut request: SendMessageRequest,
) -> ApiResult<(Enqueued, Routed)> {
    let started = Instant::now();
    validate_name("sender", sender)?;
    if request.content.trim().is_empty() {
        return Err(ApiError::invalid("content must not be empty"));
    }
    let metrics = &state.routing.metrics;
    let decision = decide(state, &request).inspect_err(|_| {
        metrics.failed();
        state.monitor.routing_failed();
    })?;
    if let Some(rule) = &decision.rule {
        metrics.rule_hit(rule);
    }
    if let Some(boost) = decision.boost {
        if boost.engine() > request.priority.engine() {
            request.priority = boost;
        }
    }
    let thread = thread_of(&request);
    let key = decision.target.turn_key(decision.rule.as_deref());
    let candidates = candidates(state, &decision.target);
    let chosen = state
        .routing
        .strategies
        .lock()
        .choose(decision.strategy, &key, &candidates, thread.as_deref())
        .map(|agent| agent.id.clone());
    metrics.decision(started.elapsed());
    // A retry of a keyed send goes where its first try went, even on another server.
    let chosen = match request.dedup_key.as_deref() {
        Some(dedup_key) => {
            super::claims::claim(state, sender, &request.recipient, dedup_key, chosen).await?
        }
        None => chosen,
    };
    let waiting_queue = chosen
        .is_none()
        .then(|| waiting::queue_for(&decision.target, decision.rule.as_deref()));
    request.metadata.insert(
        "routing".into(),
        json!({
            "requested": request.recipient.trim(),
            "rule": decision.rule,
            "strategy": decision.strategy.as_str(),
            "capability": decision.target.capability,
            "waiting_queue": waiting_queue,
        }),
    );
    let mut routed = Routed {
        name: String::new(),
        routed_to: None,
        rule: decision.rule.clone(),
        strategy: Some(decision.strategy),
        capability: decision.target.capability.clone(),
        waiting_queue: waiting_queue.clone(),
        waiting_for_capability: None,
        note: decision.note.clone(),
    };
    // The chosen agent may have been removed since the candidates were listed: then wait.
    let chosen = chosen.and_then(|agent_id| state.registry.resolve(&agent_id));
    let waiting_queue = waiting_queue
        .unwrap_or_else(|| waiting::queue_for(&decision.target, decision.rule.as_deref()));
    let enqueued = match chosen {
        Some(agent) => {
            let (enqueued, agent) = inbox::send_to(state, sender, request, agent, started)
                .await
                .inspect_err(|_| metrics.failed())?;
            metrics.routed();
            routed.name = agent.name.clone();
            routed.routed_to = Some(agent.name.clone());
            routed.waiting_queue = None;
            enqueued
        }
        None => {
            let requested_attempts = request.max_attempts;
            let mut message = inbox::new_message(sender, request, state.engine.now_ms())?;
            state.limits.check(sender, 1)?;
            message.headers =
                waiting::headers(decision.strategy, thread.as_deref(), requested_attempts);
            message.max_attempts = Some(WAITING_MOVE_ATTEMPTS);
            let enqueued = state
                .engine
                .enqueue(&waiting_queue, message)
                .await
                .inspect_err(|_| {
                    metrics.failed();
                    state.monitor.routing_failed();
                })?;
            metrics.queued();
            // An agent may have come online between the candidate check and the enqueue,
            // and its arrival's sweep may have run before the message was there.
            if let Err(error) = waiting::drain_queue(state, &waiting_queue).await {
                tracing::warn!(queue = %waiting_queue, %error, "could not drain waiting queue");
            }
            routed.name = waiting_queue.clone();
            routed.waiting_queue = Some(waiting_queue);
            if let Some(capability) = &decision.target.capability {
                let waiting = advice::waiting_note(capability, &state.registry.capabilities());
                routed.note = Some(match routed.note.take() {
                    Some(fallback) => format!("{fallback}; {waiting}"),
                    None => waiting,
                });
                routed.waiting_for_capability = Some(capability.clone());
            }
            enqueued
        }
    };
    Ok((enqueued, routed))
}

/// Sends `request` from `sender`: to the named agent, or routed when the recipient is `auto`
/// or `capability:NAME`. The one entry point of REST and WebSocket sends.
pub async fn send(
    state: &AppState,
    sender: &str,
    request: SendMessageRequest,
) -> ApiResult<(Enqueued, Routed)> {
    if super::is_routed(&request.recipient) {
        return route_once(state, sender, request).await;
    }
    let (enqueued, agent) = inbox::send(state, sender, request).await?;
    Ok((enqueued, Routed::direct(&agent)))
}

/// Routes `request` once per idempotency key: a retry with the `dedup_key` of an earlier try
/// (within the dedup window) gets that try's answer, deduplicated, and is not routed again
/// (see `idempotency`). A retry arriving while the first try is routed waits for its answer.
async fn route_once(
    state: &AppState,
    sender: &str,
    request: SendMessageRequest,
) -> ApiResult<(Enqueued, Routed)> {
    let Some(slot) = request.dedup_key.as_deref().and_then(|key| {
        state
            .routing
            .sends
            .slot(sender, &request.recipient, key, state.engine.now_ms())
    }) else {
        return route(state, sender, request).await;
    };
    // Routed on a task of its own: a client that gives up (and retries) drops this request,
    // and a route cut short after storing the message but before filling the slot would let
    // the retry route and store it again.
    let (state, sender) = (state.clone(), sender.to_string());
    let first_try = tokio::spawn(async move {
        let mut routed_now = false;
        let answer = slot
            .get_or_try_init(|| {
                routed_now = true;
                route(&state, &sender, request)
            })
            .await?
            .clone();
        ApiResult::Ok((answer, routed_now))
    });
    let ((enqueued, routed), routed_now) = first_try
        .await
        .map_err(|error| ApiError::Internal(format!("routing a send failed: {error}")))??;
    Ok(if routed_now {
        (enqueued, routed)
    } else {
        let first = Enqueued {
            id: enqueued.id,
            deduplicated: true,
        };
        (first, routed)
    })
}

struct Decision {
    rule: Option<String>,
    target: Target,
    boost: Option<crate::api::wire::Priority>,
    strategy: StrategyKind,
    /// Set when `auto` fell back past a rule whose capability is no agent's.
    note: Option<String>,
}

fn decide(state: &AppState, request: &SendMessageRequest) -> ApiResult<Decision> {
    let recipient = request.recipient.trim();
    let rules = state.routing.rules();
    if recipient.eq_ignore_ascii_case(RECIPIENT_AUTO) {
        let (rule, note) = choose_rule(state, &rules, &request.content).ok_or_else(|| {
            ApiError::invalid(
                "no routing rule matches this content: name a recipient, or add a catch-all \
                 rule (one without keywords or regex) with PUT /api/v1/routing/rules",
            )
        })?;
        return Ok(Decision {
            note,
            rule: Some(rule.spec.name.clone()),
            target: Target {
                capability: rule.capability.clone(),
                agents: rule.spec.agents.clone(),
                any: rule.targets_any(),
            },
            boost: rule.spec.priority_boost,
            strategy: rule.spec.strategy,
        });
    }
    let capability = recipient
        .get(RECIPIENT_CAPABILITY_PREFIX.len()..)
        .filter(|_| is_capability_recipient(recipient))
        .map(|name| name.trim().to_lowercase())
        .ok_or_else(|| ApiError::Internal(format!("not a routed recipient: {recipient}")))?;
    if capability.is_empty() {
        return Err(ApiError::invalid(
            "recipient `capability:` needs a capability name, e.g. `capability:quality`",
        ));
    }
    let any = capability == "*";
    Ok(Decision {
        rule: None,
        target: Target {
            capability: (!any).then_some(capability),
            agents: Vec::new(),
            any,
        },
        boost: None,
        strategy: rules.capability_strategy,
        note: None,
    })
}

/// The rule `auto` follows for `content`: the first matching rule that some agent can serve,
/// falling back past rules whose capability no agent has (as the original fell back to any
/// agent), with a note saying so; the first matching rule when none can be served (its
/// message then waits). `None` when no rule matches.
fn choose_rule<'a>(
    state: &AppState,
    rules: &'a RuleSet,
    content: &str,
) -> Option<(&'a rules::Rule, Option<String>)> {
    let matching = rules.matching(content);
    let first = *matching.first()?;
    let known = state.registry.capabilities();
    let servable = |rule: &rules::Rule| match &rule.capability {
        None => true,
        Some(capability) => {
            known.contains(capability)
                || rule
                    .spec
                    .agents
                    .iter()
                    .any(|agent| state.registry.resolve(agent).is_some())
        }
    };
    if servable(first) {
        return Some((first, None));
    }
    let Some(fallback) = matching.into_iter().find(|rule| servable(rule)) else {
        return Some((first, None));
    };
    let note = advice::fallback_note(
        &first.spec.name,
        first.capability.as_deref().unwrap_or_default(),
        &fallback.spec.name,
    );
    Some((fallback, Some(note)))
}

/// True when `recipient` is `capability:NAME` (prefix without case).
pub fn is_capability_recipient(recipient: &str) -> bool {
    recipient
        .get(..RECIPIENT_CAPABILITY_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(RECIPIENT_CAPABILITY_PREFIX))
}

/// `metadata.thread_id` as text (strings and numbers).
fn thread_of(request: &SendMessageRequest) -> Option<String> {
    match request.metadata.get("thread_id")? {
        serde_json::Value::String(thread) if !thread.is_empty() => Some(thread.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}
