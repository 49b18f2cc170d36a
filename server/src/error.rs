//! The one HTTP error type. Each variant maps to a status and a JSON body `{"detail": "..."}`,
//! the original's error shape. Client errors carry a sentence a person can act on and are not
//! logged; server errors are logged in full and answered with a generic sentence.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use switchboard_engine::EngineError;

/// The body's `error` code of a [`ApiError::StorageRefused`] answer: nothing was stored.
pub const ERROR_STORAGE_UNAVAILABLE: &str = "storage_unavailable";
/// The `Retry-After` of a [`ApiError::StorageRefused`] answer, in seconds.
pub const STORAGE_RETRY_AFTER_SECONDS: u64 = 5;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a value is out of range (422 unless `status` says otherwise,
    /// e.g. 400 for unreadable JSON or 413 for an oversize body).
    #[error("{detail}")]
    Invalid {
        /// The status to answer with (a 4xx).
        status: StatusCode,
        /// What is wrong, naming the field.
        detail: String,
    },
    /// The agent, message, queue or route does not exist (or is not the caller's).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (e.g. the lease ran out).
    #[error("{0}")]
    Conflict(String),
    /// No usable token was presented (`--auth token`): answered 401 with
    /// `WWW-Authenticate: Bearer`; the text says what to send.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this: a reserved name, or a valid token acting on another
    /// agent's resources.
    #[error("{0}")]
    Forbidden(String),
    /// The sender's token bucket is empty.
    #[error("rate limit of sender {sender:?} exceeded; retry after {retry_after:?}")]
    RateLimited {
        /// Who sent too much.
        sender: String,
        /// When a token will be available.
        retry_after: Duration,
    },
    /// The queue is at its configured size.
    #[error("{0}")]
    QueueFull(String),
    /// Storage cannot be reached or the engine stopped; the operator must act.
    #[error("{0}")]
    Unavailable(String),
    /// Storage is known unreachable, so the write was refused before anything was stored:
    /// answered 503 with `Retry-After` and the body's `error` set to
    /// [`ERROR_STORAGE_UNAVAILABLE`], so a client can tell it from a timeout's 503 (after which
    /// the request may still have been carried out).
    #[error("{0}")]
    StorageRefused(String),
    /// The request took longer than the server allows.
    #[error("request took longer than {0:?}")]
    Timeout(Duration),
    /// A bug or an unexpected failure: logged, answered with a generic 500.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 naming the problem.
    pub fn invalid(detail: impl Into<String>) -> Self {
        ApiError::Invalid {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: detail.into(),
        }
    }

    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { status, .. } => *status,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::QueueFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Unavailable(_) | ApiError::StorageRefused(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text sent to the client.
    pub fn detail(&self) -> String {
        match self {
            ApiError::Internal(_) => "internal server error; the server log has the cause".into(),
            other => other.to_string(),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::QueueFull { .. } => ApiError::QueueFull(error.to_string()),
            EngineError::UnknownQueue(_) | EngineError::UnknownMessage(_) => {
                ApiError::NotFound(error.to_string())
            }
            EngineError::LeaseLost(_) => ApiError::Conflict(error.to_string()),
            EngineError::InvalidArgument(text) => ApiError::invalid(text),
            // Only raised before a write is taken: nothing was stored.
            EngineError::StorageUnavailable(_) => ApiError::StorageRefused(error.to_string()),
            EngineError::Poisoned(_) | EngineError::ShutDown => {
                ApiError::Unavailable(error.to_string())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(%status, error = %self, "request failed");
        }
        let body = match &self {
            ApiError::StorageRefused(_) => serde_json::json!({
                "detail": self.detail(),
                "error": ERROR_STORAGE_UNAVAILABLE,
            }),
            _ => serde_json::json!({ "detail": self.detail() }),
        };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::StorageRefused(_) = &self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(STORAGE_RETRY_AFTER_SECONDS),
            );
        }
        if let ApiError::Unauthorized(_) = &self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"switchboard\""),
            );
        }
        if let ApiError::RateLimited { retry_after, .. } = &self {
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;
