//! The middleware that applies [`super::rules`] to every request before its handler runs, and
//! [`Caller`], the extractor that tells a handler who called (for the two rules a middleware
//! cannot finish: registration and batch ack).

use std::collections::HashMap;

use axum::extract::{FromRequestParts, MatchedPath, Query, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::rules::{self, Rule, Subject};
use super::tokens::{presented, Presented};
use super::AuthMode;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Who is calling, as the guard found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// `--auth none`: nobody is checked.
    AuthOff,
    /// No token was presented.
    Anonymous,
    /// The admin token.
    Admin,
    /// An agent's token.
    Agent {
        /// The agent's id.
        id: String,
        /// Its name, for error messages.
        name: String,
    },
}

/// What to send, said in every 401.
const SEND_A_TOKEN: &str = "send `Authorization: Bearer TOKEN` with the token that registering \
                            the agent returned, or the admin token";

impl Caller {
    /// Allowed to act as agent `key` (a name or id): its own token, the admin's, or auth off.
    pub fn may_act_as(&self, state: &AppState, key: &str) -> ApiResult<()> {
        match self {
            Caller::AuthOff | Caller::Admin => Ok(()),
            Caller::Anonymous => Err(ApiError::Unauthorized(format!(
                "acting as agent {key:?} needs a token: {SEND_A_TOKEN}"
            ))),
            // An agent stored before `system` was reserved must not send as the admin.
            Caller::Agent { name, .. } if crate::registry::reserved_name(key).is_some() => {
                Err(ApiError::Forbidden(format!(
                    "{key:?} is a reserved name that only the admin token acts as; the token of \
                     agent {name:?} cannot"
                )))
            }
            Caller::Agent { id, name } => {
                let record = state.registry.resolve(key);
                if record.as_deref().is_some_and(|record| &record.id == id) {
                    Ok(())
                } else {
                    Err(ApiError::Forbidden(format!(
                        "the token of agent {name:?} cannot act as agent {key:?}; use \
                         {key:?}'s own token or the admin token"
                    )))
                }
            }
        }
    }

    fn require_token(&self) -> ApiResult<()> {
        match self {
            Caller::Anonymous => Err(ApiError::Unauthorized(format!(
                "this endpoint needs a token: {SEND_A_TOKEN}"
            ))),
            _ => Ok(()),
        }
    }

    fn require_admin(&self, what: &str) -> ApiResult<()> {
        match self {
            Caller::AuthOff | Caller::Admin => Ok(()),
            Caller::Anonymous => Err(ApiError::Unauthorized(format!(
                "{what} is a system operation: send `Authorization: Bearer ADMIN_TOKEN`"
            ))),
            Caller::Agent { name, .. } => Err(ApiError::Forbidden(format!(
                "{what} is a system operation that needs the admin token; the token of agent \
                 {name:?} cannot do it"
            ))),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::Internal("the auth guard did not run before this handler".into())
        })
    }
}

/// Runs before every handler: finds the caller and applies the route's [`Rule`]; refuses with
/// 401 (no usable token) or 403 (a valid token acting on someone else's resources).
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match authorize(&state, request).await {
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

async fn authorize(state: &AppState, request: Request) -> ApiResult<Request> {
    let (mut parts, body) = request.into_parts();
    let caller = if state.settings.auth.mode == AuthMode::None {
        Caller::AuthOff
    } else {
        match parts.extensions.get::<MatchedPath>() {
            // No route matched: the fallback answers 404 and touches nothing.
            None => Caller::Anonymous,
            // Open routes ignore credentials: a probe with a stale token still gets its health.
            Some(matched) if rules::rule(&parts.method, matched.as_str()) == Rule::Open => {
                Caller::Anonymous
            }
            Some(matched) => {
                let path = matched.as_str().to_string();
                let query: HashMap<String, String> = Query::try_from_uri(&parts.uri)
                    .map(|query| query.0)
                    .unwrap_or_default();
                let query_token = rules::accepts_query_token(&path)
                    .then(|| query.get("token").map(String::as_str))
                    .flatten();
                let caller = identify(state, presented(&parts.headers, query_token))?;
                let params = RawPathParams::from_request_parts(&mut parts, &())
                    .await
                    .ok();
                let agent_param = params.as_ref().and_then(|params| {
                    params
                        .iter()
                        .find(|(name, _)| *name == "agent")
                        .map(|(_, value)| value.to_string())
                });
                let what = format!("{} {path}", parts.method);
                let rule = rules::rule(&parts.method, &path);
                check(state, rule, &caller, agent_param.as_deref(), &query, &what)?;
                caller
            }
        }
    };
    parts.extensions.insert(caller);
    Ok(Request::from_parts(parts, body))
}

/// Whose token was presented; a token that is nobody's is a 401.
fn identify(state: &AppState, presented: Presented) -> ApiResult<Caller> {
    match presented {
        Presented::Nothing => Ok(Caller::Anonymous),
        Presented::Malformed(reason) => {
            Err(ApiError::Unauthorized(format!("{reason}; {SEND_A_TOKEN}")))
        }
        Presented::Token(hash) => {
            if let Some(admin) = &state.settings.auth.admin {
                if admin.matches(&hash) {
                    return Ok(Caller::Admin);
                }
            }
            match state.registry.agent_by_token(&hash) {
                Some(record) => Ok(Caller::Agent {
                    id: record.id.clone(),
                    name: record.name.clone(),
                }),
                None => Err(ApiError::Unauthorized(format!(
                    "the token is not valid: it is neither an agent's current token (was it \
                     re-issued, or the agent deleted?) nor the admin token; {SEND_A_TOKEN}"
                ))),
            }
        }
    }
}

fn check(
    state: &AppState,
    rule: Rule,
    caller: &Caller,
    agent_param: Option<&str>,
    query: &HashMap<String, String>,
    what: &str,
) -> ApiResult<()> {
    let subject = match rule {
        Rule::Open | Rule::Register => return Ok(()),
        Rule::AnyToken | Rule::AgentInBody => return caller.require_token(),
        Rule::Admin => return caller.require_admin(what),
        Rule::Agent(Subject::Path) => agent_param.map(str::to_string),
        Rule::Agent(Subject::Query(name)) => query.get(name).cloned(),
        Rule::Agent(Subject::Sender) => Some(
            query
                .get("sender")
                .cloned()
                .unwrap_or_else(|| "system".into()),
        ),
        Rule::Agent(Subject::QueryOrAdmin(name)) => match query.get(name) {
            Some(key) => Some(key.clone()),
            None => return caller.require_admin(&format!("{what} without ?{name}=")),
        },
    };
    match subject {
        Some(key) => caller.may_act_as(state, &key),
        // The handler refuses the request for the missing parameter; it still needs a token.
        None => caller.require_token(),
    }
}
