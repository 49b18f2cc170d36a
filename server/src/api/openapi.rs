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
        super::receipts::send_reply,
        super::leased::leased,
        super::receipts::feed,
        super::migration::status,
        super::migration::report,
        super::migration::start,
        super::migration::proceed,
        super::migration::rollback,
    ),
    modifiers(&BearerSecurity),
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

/// Declares the bearer token scheme of `--auth token`. Security is optional at the document
/// level (`{}` or `bearer`) because a server in `--auth none` mode checks nothing; which token
/// each route needs is in `docs/security.md` and `server/src/auth/rules.rs`.
struct BearerSecurity;

impl utoipa::Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "With `serve --auth token`: an agent's token (returned by registering \
                         a new name) or the admin token.",
                    ))
                    .build(),
            ),
        );
        openapi.security = Some(vec![
            SecurityRequirement::default(),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
        ]);
    }
}

/// Serves this document.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI document")))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
