//! `/api/v1/queues`: the engine for any producer or consumer. Queues are created by their
//! first enqueue or PUT. Names starting with `_` and agent inboxes (`inbox:…`) are the
//! server's own and refused here (agents use `/api/v1/messages`).

pub mod wire;

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde_json::Value;
use switchboard_engine::{
    Delivery, EngineError, LeaseToken, MessageId, NewMessage, QueueStats, QUEUE_NAME_BYTES_MAX,
};

use self::wire::{
    DeadLetterQuery, EnqueueResponse, EnqueuedOut, LeaseRequest, LeasedMessage, QueueConfigWire,
    QueueDeadLetter, QueueInfo, QueueMessageIn, SettleRequest, SettleResponse, SettleResult,
    TokenRef,
};
use super::wire::{RedriveRequest, RedriveResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, OptionalJson};
use crate::limits;
use crate::state::AppState;
use crate::time::iso8601;

/// Sender key of the rate limit for the queue API, which has no sender names.
const QUEUE_API_SENDER_PREFIX: &str = "queue:";

/// Checks a queue name of the queue API.
fn check_name(name: &str) -> ApiResult<()> {
    if name.is_empty() || name.len() > QUEUE_NAME_BYTES_MAX {
        return Err(ApiError::invalid(format!(
            "queue name must be 1 to {QUEUE_NAME_BYTES_MAX} bytes"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ApiError::invalid(
            "queue name may hold only ASCII letters, digits, '-', '_' and '.'",
        ));
    }
    if name.starts_with('_') {
        return Err(ApiError::Forbidden(format!(
            "queue {name:?} is reserved for the server (names starting with '_')"
        )));
    }
    Ok(())
}

fn require_stats(state: &AppState, name: &str) -> ApiResult<QueueStats> {
    check_name(name)?;
    state
        .engine
        .queue_stats(name)
        .ok_or_else(|| ApiError::NotFound(format!("no queue named {name:?}")))
}

/// Parses message ids of a request body; `None` stays `None` (all).
pub(crate) fn parse_ids(ids: Option<&[String]>) -> ApiResult<Option<Vec<MessageId>>> {
    ids.map(|ids| {
        ids.iter()
            .map(|text| {
                text.parse::<MessageId>()
                    .map_err(|error| ApiError::invalid(error.to_string()))
            })
            .collect()
    })
    .transpose()
}

/// Deserializes a message, naming the field at fault in the error.
fn from_value(value: Value) -> Result<QueueMessageIn, String> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        format!("{path}: {}", error.into_inner())
    })
}

fn new_message(input: QueueMessageIn) -> ApiResult<NewMessage> {
    let delay_seconds = input.delay_seconds.unwrap_or(0);
    if delay_seconds > limits::DELAY_SECONDS_MAX {
        return Err(ApiError::invalid(format!(
            "delay_seconds is {delay_seconds}, the limit is {}",
            limits::DELAY_SECONDS_MAX
        )));
    }
    let ttl_ms = input
        .ttl_seconds
        .map(|seconds| {
            seconds
                .checked_mul(1000)
                .ok_or_else(|| ApiError::invalid(format!("ttl_seconds {seconds} is out of range")))
        })
        .transpose()?;
    Ok(NewMessage {
        payload: input.payload.into_bytes(),
        priority: input.priority,
        headers: input.headers,
        delay_ms: delay_seconds * 1000,
        ttl_ms,
        max_attempts: input.max_attempts,
        dedup_key: input.dedup_key,
    })
}

/// Enqueues one message (an object) or a batch (an array), all or nothing.
#[utoipa::path(post, path = "/api/v1/queues/{queue}/messages", tag = "queues",
    params(("queue" = String, Path, description = "Queue name")),
    request_body(content = QueueMessageIn, description = "One message, or an array of them"),
    responses((status = 200, body = EnqueueResponse), (status = 422, description = "Invalid body"),
              (status = 507, description = "Queue full")))]
pub async fn enqueue(
    State(state): State<AppState>,
    ApiPath(queue): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<EnqueueResponse>> {
    check_name(&queue)?;
    let inputs: Vec<QueueMessageIn> = match body {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                from_value(item)
                    .map_err(|error| ApiError::invalid(format!("message {index}: {error}")))
            })
            .collect::<ApiResult<_>>()?,
        other => vec![from_value(other).map_err(ApiError::invalid)?],
    };
    if inputs.is_empty() {
        return Err(ApiError::invalid("the batch holds no message"));
    }
    let messages = inputs
        .into_iter()
        .map(new_message)
        .collect::<ApiResult<Vec<_>>>()?;
    let key = format!("{QUEUE_API_SENDER_PREFIX}{queue}");
    state.limits.check(&key, messages.len() as u32)?;
    let results = state.engine.enqueue_batch(&queue, messages).await?;
    Ok(Json(EnqueueResponse {
        messages: results
            .into_iter()
            .map(|enqueued| EnqueuedOut {
                message_id: enqueued.id.to_string(),
                deduplicated: enqueued.deduplicated,
            })
            .collect(),
    }))
}

fn leased(delivery: &Delivery) -> LeasedMessage {
    let message = &delivery.message;
    LeasedMessage {
        id: message.id.to_string(),
        lease_token: delivery.token.to_string(),
        payload: String::from_utf8_lossy(&message.payload).into_owned(),
        priority: message.priority,
        headers: message.headers.clone(),
        attempts: message.attempts,
        max_attempts: message.max_attempts,
        enqueued_at: iso8601(message.enqueued_at),
        lease_expires_at: iso8601(delivery.lease_deadline),
    }
}

/// Leases up to `max` ready messages, long-polling up to `wait_seconds`.
#[utoipa::path(post, path = "/api/v1/queues/{queue}/lease", tag = "queues",
    params(("queue" = String, Path, description = "Queue name")),
    request_body(content = LeaseRequest, description = "Optional"),
    responses((status = 200, body = Vec<LeasedMessage>), (status = 422, description = "Invalid body")))]
pub async fn lease(
    State(state): State<AppState>,
    ApiPath(queue): ApiPath<String>,
    OptionalJson(request): OptionalJson<LeaseRequest>,
) -> ApiResult<Json<Vec<LeasedMessage>>> {
    check_name(&queue)?;
    if request.max == 0 || request.max > limits::LEASE_MESSAGES_MAX {
        return Err(ApiError::invalid(format!(
            "max must be between 1 and {}",
            limits::LEASE_MESSAGES_MAX
        )));
    }
    if request.wait_seconds > limits::WAIT_SECONDS_MAX {
        return Err(ApiError::invalid(format!(
            "wait_seconds is {}, the limit is {}",
            request.wait_seconds,
            limits::WAIT_SECONDS_MAX
        )));
    }
    let lease_ms = match request.lease_seconds {
        None => None,
        Some(seconds) => Some(crate::inbox::lease_ms(Some(seconds))?),
    };
    let wait = std::time::Duration::from_secs(request.wait_seconds);
    let waiting = state.engine.lease_wait(&queue, request.max, lease_ms, wait);
    let deliveries =
        crate::shutdown::unless_stopping(&state.shutdown, waiting, || Ok(Vec::new())).await?;
    Ok(Json(deliveries.iter().map(leased).collect()))
}

fn token_ref(reference: &TokenRef) -> ApiResult<(MessageId, LeaseToken)> {
    let id = reference
        .id
        .parse::<MessageId>()
        .map_err(|error| ApiError::invalid(error.to_string()))?;
    let token = reference
        .lease_token
        .parse::<LeaseToken>()
        .map_err(ApiError::invalid)?;
    Ok((id, token))
}

/// The deliveries a settle request names: `items`, or the single `id` + `lease_token`.
fn references(request: &SettleRequest) -> ApiResult<Vec<TokenRef>> {
    match (&request.items, &request.id, &request.lease_token) {
        (Some(items), None, None) => {
            if items.is_empty() || items.len() > limits::BATCH_ACK_IDS_MAX {
                return Err(ApiError::invalid(format!(
                    "items must hold 1 to {} deliveries",
                    limits::BATCH_ACK_IDS_MAX
                )));
            }
            Ok(items.clone())
        }
        (None, Some(id), Some(token)) => Ok(vec![TokenRef {
            id: id.clone(),
            lease_token: token.clone(),
        }]),
        (None, _, _) => Err(ApiError::invalid(
            "give both id and lease_token, or items: [{id, lease_token}, ...]",
        )),
        (Some(_), _, _) => Err(ApiError::invalid(
            "give either items or id and lease_token, not both",
        )),
    }
}

/// Splits deliveries into those of `queue` and the rest: a message leased from another queue
/// is unknown here, whatever its token (a path names the queue it acts on). Returns the
/// deliveries to settle, and per delivery `None` (settle it) or its error.
fn in_queue(
    state: &AppState,
    queue: &str,
    items: Vec<(MessageId, LeaseToken)>,
) -> (Vec<(MessageId, LeaseToken)>, Vec<Option<EngineError>>) {
    let mut mine = Vec::with_capacity(items.len());
    let verdicts = items
        .into_iter()
        .map(|(id, token)| match state.engine.current_lease(id) {
            Some((leased_from, _, _)) if *leased_from != *queue => {
                Some(EngineError::UnknownMessage(id))
            }
            _ => {
                mine.push((id, token));
                None
            }
        })
        .collect();
    (mine, verdicts)
}

/// The results of every delivery, in request order: those of another queue with their error,
/// the rest with the engine's results for them (in the same order).
fn merge(
    verdicts: Vec<Option<EngineError>>,
    settled: Vec<Result<(), EngineError>>,
) -> Vec<Result<(), EngineError>> {
    let mut settled = settled.into_iter();
    verdicts
        .into_iter()
        .map(|verdict| match verdict {
            Some(error) => Err(error),
            None => settled
                .next()
                .expect("one engine result per delivery settled"),
        })
        .collect()
}

fn settle_result(id: String, status: &str, result: Result<(), EngineError>) -> SettleResult {
    match result {
        Ok(()) => SettleResult {
            id,
            status: status.into(),
            lease_expires_at: None,
            detail: None,
        },
        Err(error) => SettleResult {
            id,
            status: match error {
                EngineError::LeaseLost(_) => "lease_lost",
                _ => "not_found",
            }
            .into(),
            lease_expires_at: None,
            detail: Some(error.to_string()),
        },
    }
}

/// One delivery settled: its error becomes the response's status; many: per-item results.
/// Pairs each reference with its engine result and answers as one item or as a batch, the way
/// the request was shaped.
fn answer(
    request: &SettleRequest,
    references: Vec<TokenRef>,
    results: Vec<Result<(), EngineError>>,
    status: &str,
) -> ApiResult<Json<SettleResponse>> {
    let results = references
        .into_iter()
        .zip(results)
        .map(|(reference, result)| settle_result(reference.id, status, result))
        .collect();
    single_or_batch(request.items.is_none(), results)
}

fn single_or_batch(single: bool, results: Vec<SettleResult>) -> ApiResult<Json<SettleResponse>> {
    if single {
        if let Some(detail) = &results[0].detail {
            return Err(match results[0].status.as_str() {
                "lease_lost" => ApiError::Conflict(detail.clone()),
                _ => ApiError::NotFound(detail.clone()),
            });
        }
    }
    Ok(Json(SettleResponse { results }))
}

/// Acknowledges deliveries (deletes the messages).
#[utoipa::path(post, path = "/api/v1/queues/{queue}/ack", tag = "queues",
    params(("queue" = String, Path, description = "Queue name")), request_body = SettleRequest,
    responses((status = 200, body = SettleResponse), (status = 404, description = "Unknown message"),
              (status = 409, description = "Lease no longer current")))]
pub async fn ack(
    State(state): State<AppState>,
    ApiPath(queue): ApiPath<String>,
    ApiJson(request): ApiJson<SettleRequest>,
) -> ApiResult<Json<SettleResponse>> {
    check_name(&queue)?;
    let references = references(&request)?;
    let items = references
        .iter()
        .map(token_ref)
        .collect::<ApiResult<Vec<_>>>()?;
    let (items, elsewhere) = in_queue(&state, &queue, items);
    let results = merge(elsewhere, state.engine.ack_batch(&items).await?);
    answer(&request, references, results, "acknowledged")
}

/// Gives deliveries back for a retry after `delay_seconds` (default: the queue's backoff).
#[utoipa::path(post, path = "/api/v1/queues/{queue}/nack", tag = "queues",
    params(("queue" = String, Path, description = "Queue name")), request_body = SettleRequest,
    responses((status = 200, body = SettleResponse), (status = 404, description = "Unknown message"),
              (status = 409, description = "Lease no longer current")))]
pub async fn nack(
    State(state): State<AppState>,
    ApiPath(queue): ApiPath<String>,
    ApiJson(request): ApiJson<SettleRequest>,
) -> ApiResult<Json<SettleResponse>> {
    check_name(&queue)?;
    let references = references(&request)?;
    let items = references
        .iter()
        .map(token_ref)
        .collect::<ApiResult<Vec<_>>>()?;
    let delay_ms = match request.delay_seconds {
        Some(seconds) if seconds > limits::DELAY_SECONDS_MAX => {
            return Err(ApiError::invalid(format!(
                "delay_seconds is {seconds}, the limit is {}",
                limits::DELAY_SECONDS_MAX
            )))
        }
        other => other.map(|seconds| seconds * 1000),
    };
    let (items, elsewhere) = in_queue(&state, &queue, items);
    let results = merge(elsewhere, state.engine.nack_batch(&items, delay_ms).await?);
    answer(&request, references, results, "requeued")
}

/// Extends one delivery's lease to `lease_seconds` from now.
#[utoipa::path(post, path = "/api/v1/queues/{queue}/extend", tag = "queues",
    params(("queue" = String, Path, description = "Queue name")), request_body = SettleRequest,
    responses((status = 200, body = SettleResponse), (status = 404, description = "Unknown message"),
              (status = 409, description = "Lease no longer current")))]
pub async fn extend(
    State(state): State<AppState>,
    ApiPath(queue): ApiPath<String>,
    ApiJson(request): ApiJson<SettleRequest>,
) -> ApiResult<Json<SettleResponse>> {
    check_name(&queue)?;
    if request.items.is_some() {
        return Err(ApiError::invalid(
            "extend takes one delivery: id and lease_token",
        ));
    }
    let Some(seconds) = request.lease_seconds else {
        return Err(ApiError::invalid("lease_seconds is required"));
    };
    let lease_ms = crate::inbox::lease_ms(Some(seconds))?;
    let reference = references(&request)?.remove(0);
    let (id, token) = token_ref(&reference)?;
    if let [Some(error)] = in_queue(&state, &queue, vec![(id, token)]).1.as_slice() {
        return Err(ApiError::NotFound(error.to_string()));
    }
    let deadline = state.engine.extend(id, token, lease_ms).await?;
    Ok(Json(SettleResponse {
        results: vec![SettleResult {
            id: reference.id,
            status: "extended".into(),
            lease_expires_at: Some(iso8601(deadline)),
            detail: None,
        }],
    }))
}

fn info(stats: QueueStats) -> QueueInfo {
    let c = stats.counters;
    let counters = BTreeMap::from([
        ("enqueued".to_string(), c.enqueued),
        ("deduplicated".to_string(), c.deduplicated),
        ("delivered".to_string(), c.delivered),
        ("acked".to_string(), c.acked),
        ("retried".to_string(), c.retried),
        ("dead_lettered".to_string(), c.dead_lettered),
        ("expired".to_string(), c.expired),
        ("dropped".to_string(), c.dropped),
    ]);
    QueueInfo {
        name: stats.name.to_string(),
        ready: stats.ready,
        delayed: stats.delayed,
        leased: stats.leased,
        dead: stats.dead,
        counters,
        config: stats.config.into(),
    }
}

/// Lists every queue (agent inboxes included, as `inbox:<agent id>`) with its numbers.
#[utoipa::path(get, path = "/api/v1/queues", tag = "queues",
    responses((status = 200, body = Vec<QueueInfo>)))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<QueueInfo>> {
    let mut queues: Vec<QueueInfo> = state
        .engine
        .all_queue_stats()
        .into_iter()
        .filter(|stats| !stats.name.starts_with('_'))
        .map(info)
        .collect();
    queues.sort_by(|a, b| a.name.cmp(&b.name));
    Json(queues)
}

/// One queue's numbers and configuration.
#[utoipa::path(get, path = "/api/v1/queues/{queue}", tag = "queues",
    params(("queue" = String, Path, description = "Queue name")),
    responses((status = 200, body = QueueInfo), (status = 404, description = "No such queue")))]
pub async fn show(
    State(state): State<AppState>,
    ApiPath(queue): ApiPath<String>,
) -> ApiResult<Json<QueueInfo>> {
    Ok(Json(info(require_stats(&state, &queue)?)))
}

/// Creates the queue with this configuration, or reconfigures it.
#[utoipa::path(put, path = "/api/v1/queues/{queue}", tag = "queues",
    params(("queue" = String, Path, description = "Queue name")), request_body = QueueConfigWire,
    responses((status = 200, body = QueueInfo), (status = 422, description = "Invalid configuration")))]
pub async fn configure(
    State(state): State<AppState>,
    ApiPath(queue): ApiPath<String>,
    ApiJson(config): ApiJson<QueueConfigWire>,
) -> ApiResult<Json<QueueInfo>> {
    check_name(&queue)?;
    let config: switchboard_engine::QueueConfig = config.into();
    config.validate().map_err(ApiError::invalid)?;
    state.engine.configure_queue(&queue, config).await?;
    Ok(Json(info(require_stats(&state, &queue)?)))
}

/// Lists a queue's dead letters, oldest first.
#[utoipa::path(get, path = "/api/v1/queues/{queue}/dead-letters", tag = "queues",
    params(("queue" = String, Path, description = "Queue name"), DeadLetterQuery),
    responses((status = 200, body = Vec<QueueDeadLetter>), (status = 404, description = "No such queue")))]
pub async fn dead_letters(
    State(state): State<AppState>,
    ApiPath(queue): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeadLetterQuery>,
) -> ApiResult<Json<Vec<QueueDeadLetter>>> {
    require_stats(&state, &queue)?;
    if query.limit == 0 || query.limit > limits::LEASE_MESSAGES_MAX {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {}",
            limits::LEASE_MESSAGES_MAX
        )));
    }
    let letters = state.engine.dead_letters(&queue, query.limit).await?;
    Ok(Json(
        letters
            .into_iter()
            .map(|letter| QueueDeadLetter {
                id: letter.message.id.to_string(),
                payload: String::from_utf8_lossy(&letter.message.payload).into_owned(),
                priority: letter.message.priority,
                headers: letter.message.headers.clone(),
                attempts: letter.message.attempts,
                reason: letter.reason.as_str().into(),
                died_at: iso8601(letter.died_at),
            })
            .collect(),
    ))
}

/// Sends a queue's dead letters (all, or those named) back to ready.
#[utoipa::path(post, path = "/api/v1/queues/{queue}/dead-letters/redrive", tag = "queues",
    params(("queue" = String, Path, description = "Queue name")),
    request_body(content = RedriveRequest, description = "Optional; empty body redrives all"),
    responses((status = 200, body = RedriveResponse), (status = 404, description = "No such queue")))]
pub async fn redrive(
    State(state): State<AppState>,
    ApiPath(queue): ApiPath<String>,
    OptionalJson(request): OptionalJson<RedriveRequest>,
) -> ApiResult<Json<RedriveResponse>> {
    require_stats(&state, &queue)?;
    let ids = parse_ids(request.message_ids.as_deref())?;
    let redriven = state.engine.redrive(&queue, ids.as_deref()).await?;
    Ok(Json(RedriveResponse { redriven }))
}
