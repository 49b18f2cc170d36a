//! `GET /api/v1/stats`: the original's shape, with numbers taken from the engine's counters of
//! the agents' inboxes.

use axum::extract::State;
use axum::Json;

use super::wire::{AgentStatus, AgentsSection, QueueSection, StatsResponse, WebsocketsSection};
use crate::state::AppState;
use crate::time::iso8601;

/// Numbers of the inboxes, the registry and the sockets.
#[utoipa::path(get, path = "/api/v1/stats", tag = "stats",
    responses((status = 200, body = StatsResponse)))]
pub async fn stats(State(state): State<AppState>) -> Json<StatsResponse> {
    let mut queue = QueueSection {
        total_messages: 0,
        pending_messages: 0,
        delivered_messages: 0,
        queue_size: 0,
        average_delivery_time: state.deliveries.average_seconds(),
    };
    for stats in state.engine.all_queue_stats() {
        if !stats.name.starts_with("inbox:") {
            continue;
        }
        queue.total_messages += stats.counters.enqueued;
        queue.pending_messages += stats.ready + stats.delayed + stats.leased;
        queue.delivered_messages += stats.counters.acked;
        queue.queue_size += stats.ready + stats.delayed + stats.leased + stats.dead;
    }
    let views = state.registry.list();
    let online = views
        .iter()
        .filter(|v| v.status == AgentStatus::Online || state.sockets.is_connected(&v.record.id))
        .count();
    Json(StatsResponse {
        queue,
        agents: AgentsSection {
            total_agents: views.len(),
            online_agents: online,
            offline_agents: views.len() - online,
            capabilities: state.registry.capability_counts(),
            last_updated: iso8601(state.engine.now_ms()),
        },
        websockets: WebsocketsSection {
            active_connections: state.sockets.open_count(),
            agent_connections: state.sockets.agent_count(),
        },
        routing: crate::routing::stats(&state),
    })
}
