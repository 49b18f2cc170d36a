//! The one table saying who may call each route. Every route of [`crate::app::app`] is listed;
//! a route missing here is refused to everyone but the admin (deny by default), and a unit test
//! checks that every documented route has an entry.

use axum::http::Method;

/// Who may call a route (in `--auth token` mode; with `--auth none` everyone may).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, no token: health, the OpenAPI document, Prometheus metrics, the dashboard page.
    Open,
    /// Any valid token, an agent's or the admin's: read-only views of the whole system.
    AnyToken,
    /// The admin token only: system operations.
    Admin,
    /// The token of the agent the request acts as (found as [`Subject`] says), or the admin's.
    Agent(Subject),
    /// Registration: open for a new name; the handler checks re-registrations (the name's own
    /// token keeps it, the admin token re-issues it).
    Register,
    /// Any valid token; the handler checks that it belongs to the agent named in the body
    /// (batch ack names its agent in the body, which a middleware cannot read).
    AgentInBody,
}

/// Where a request names the agent it acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The `{agent}` path segment.
    Path,
    /// This query parameter (e.g. `agent_id`).
    Query(&'static str),
    /// The `sender` query parameter, `system` when absent (as the send handlers read it).
    Sender,
    /// This query parameter when present; when absent the request is about everyone, which
    /// only the admin may see (the live feed without `?agent=`).
    QueryOrAdmin(&'static str),
}

/// The rule of `method` on the route pattern `path` (axum's matched path, e.g.
/// `/api/v1/messages/{agent}`).
pub fn rule(method: &Method, path: &str) -> Rule {
    explicit_rule(method, path).unwrap_or(Rule::Admin)
}

/// Whether a route accepts its token as `?token=`: the ones browsers open with `WebSocket` or
/// `EventSource`, which cannot carry an `Authorization` header. Elsewhere a token in a URL
/// would only end up in logs and histories.
pub fn accepts_query_token(path: &str) -> bool {
    matches!(
        path,
        "/ws/{agent}" | "/api/v1/monitor/events" | "/api/v1/feed"
    )
}

fn explicit_rule(method: &Method, path: &str) -> Option<Rule> {
    let get = *method == Method::GET || *method == Method::HEAD;
    let rule = match path {
        "/health" | "/openapi.json" | "/metrics" | "/" | "/dashboard" if get => Rule::Open,
        // The registry, numbers and monitoring: anyone who holds a token may look.
        "/api/v1/agents"
        | "/api/v1/agents/{agent}"
        | "/api/v1/stats"
        | "/api/v1/monitor/events"
        | "/api/v1/health/detailed"
        | "/api/v1/alerts"
        | "/api/v1/metrics/export"
        | "/api/v1/metrics/current"
        | "/api/v1/messages/{id}/status"
        | "/api/v1/routing/rules"
            if get =>
        {
            Rule::AnyToken
        }
        "/api/v1/agents/register" => Rule::Register,
        // An agent's own things: deleting itself, presence, dead letters, its inbox.
        "/api/v1/agents/{agent}"
        | "/api/v1/agents/{agent}/heartbeat"
        | "/api/v1/agents/{agent}/dead-letters"
        | "/api/v1/agents/{agent}/dead-letters/redrive"
        | "/api/v1/agents/{agent}/leased"
        | "/api/v1/messages/{agent}"
        | "/ws/{agent}" => Rule::Agent(Subject::Path),
        "/api/v1/messages/{id}/ack"
        | "/api/v1/messages/{id}/nack"
        | "/api/v1/messages/{id}/extend"
        | "/api/v1/messages/{id}/reply" => Rule::Agent(Subject::Query("agent_id")),
        "/api/v1/messages" | "/api/v1/broadcast" => Rule::Agent(Subject::Sender),
        "/api/v1/messages/ack" => Rule::AgentInBody,
        "/api/v1/feed" => Rule::Agent(Subject::QueryOrAdmin("agent")),
        // System operations: the raw engine, rules, discovery, migration.
        "/api/v1/routing/rules" | "/api/v1/agents/discover" => Rule::Admin,
        _ if path.starts_with("/api/v1/queues") || path.starts_with("/api/v1/migration/") => {
            Rule::Admin
        }
        _ => return None,
    };
    Some(rule)
}

/// Every method and path the OpenAPI document lists (the routes the tests hold to the rules).
#[cfg(test)]
pub(super) fn documented_routes() -> Vec<(Method, String)> {
    use utoipa::OpenApi;
    let document = crate::api::openapi::ApiDoc::openapi();
    let mut routes = Vec::new();
    for (path, item) in &document.paths.paths {
        let methods = [
            (Method::GET, item.get.is_some()),
            (Method::POST, item.post.is_some()),
            (Method::PUT, item.put.is_some()),
            (Method::DELETE, item.delete.is_some()),
        ];
        for (method, present) in methods {
            if present {
                routes.push((method, path.clone()));
            }
        }
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_route_has_an_explicit_rule() {
        for (method, path) in documented_routes() {
            assert!(
                explicit_rule(&method, &path).is_some(),
                "{method} {path} has no rule in auth/rules.rs"
            );
        }
    }

    #[test]
    fn agent_resources_need_that_agents_token() {
        assert_eq!(
            rule(&Method::GET, "/api/v1/messages/{agent}"),
            Rule::Agent(Subject::Path)
        );
        assert_eq!(
            rule(&Method::POST, "/api/v1/messages"),
            Rule::Agent(Subject::Sender)
        );
        assert_eq!(
            rule(&Method::DELETE, "/api/v1/agents/{agent}"),
            Rule::Agent(Subject::Path)
        );
        assert_eq!(rule(&Method::GET, "/api/v1/agents/{agent}"), Rule::AnyToken);
    }

    #[test]
    fn system_operations_need_the_admin_token() {
        assert_eq!(
            rule(&Method::POST, "/api/v1/queues/{queue}/lease"),
            Rule::Admin
        );
        assert_eq!(rule(&Method::PUT, "/api/v1/routing/rules"), Rule::Admin);
        assert_eq!(rule(&Method::POST, "/api/v1/agents/discover"), Rule::Admin);
        assert_eq!(rule(&Method::POST, "/api/v1/migration/start"), Rule::Admin);
        assert_eq!(rule(&Method::PATCH, "/somewhere/new"), Rule::Admin);
    }
}
