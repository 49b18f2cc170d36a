//! `GET /openapi.json`: the OpenAPI 3.1 document of every route, generated from the handlers'
//! `#[utoipa::path]` attributes (schemas are collected from them).

use axum::Json;
use utoipa::OpenApi;

use super::{agents, broadcast, health, messages, queues, stats};

/// The API's OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "switchboard",
        description = "Message bus for AI coding agents: REST and WebSocket API, wire-compatible \
                       with the original Message Queue Communication System."
    ),
    paths(
        health::health,
        openapi,
        agents::register,
        agents::list,
        agents::show,
        agents::heartbeat,
        agents::delete,
        agents::dead_letters,
        agents::redrive,
        messages::send,
        messages::receive,
        messages::ack,
        messages::nack,
        messages::extend,
        messages::ack_batch,
        broadcast::broadcast,
        stats::stats,
        queues::enqueue,
        queues::lease,
        queues::ack,
        queues::nack,
        queues::extend,
        queues::list,
        queues::show,
        queues::configure,
        queues::dead_letters,
        queues::redrive,
        crate::ws::handler,
        crate::monitor::routes::health_detailed,
        crate::monitor::routes::alerts,
        crate::monitor::routes::export,
        crate::monitor::routes::current,
        crate::monitor::prometheus::metrics,
        crate::monitor::dashboard::page,
        crate::monitor::dashboard::events,
        super::discovery::discover,
        super::routing::show,
        super::routing::replace,
        super::receipts::message_status,
        super::receipts::wait_reply,
        super::receipts::cancel_reply,
        super::receipts::feed,
        super::migration::status,
        super::migration::report,
        super::migration::start,
        super::migration::proceed,
        super::migration::rollback,
    ),
    tags(
        (name = "agents", description = "Registry and presence"),
        (name = "messages", description = "Agent inboxes"),
        (name = "queues", description = "The engine for any producer or consumer"),
        (name = "websocket", description = "Agent sockets: pushes with leases"),
        (name = "monitoring", description = "Health score, alerts, history, Prometheus, dashboard"),
        (name = "routing", description = "Rules for `auto` recipients"),
        (name = "migration", description = "Moving agents from tmux messaging to the queue"),
    )
)]
pub struct ApiDoc;

/// Serves this document.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI document")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
