//! Extractors that turn axum's rejections into [`ApiError`]s, so malformed JSON, a missing
//! field, an oversize body or a bad query value is a 4xx with a JSON detail naming the problem
//! instead of axum's plain-text body.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::Json` with JSON errors.
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query` with JSON errors.
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` with JSON errors.
pub struct ApiPath<T>(pub T);

fn rejection(status: StatusCode, text: String) -> ApiError {
    // axum answers an unreadable body with 400 and a body that does not match with 422; the
    // original answered both with 422, which existing clients expect.
    let status = if status == StatusCode::BAD_REQUEST {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        status
    };
    ApiError::Invalid {
        status,
        detail: text,
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    /// Reads the body as JSON whatever its `Content-Type` says: the original's clients do not
    /// all send one, and a wrong header is no reason to refuse a well-formed body.
    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request, state).await?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(error) => Err(rejection(error.status(), error.body_text())),
        }
    }
}

/// The request body, within [`crate::limits::BODY_BYTES_MAX`].
async fn read_body<S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(request, state)
        .await
        .map_err(|error| {
            let status = error.status();
            let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "request body is larger than {} bytes",
                    crate::limits::BODY_BYTES_MAX
                )
            } else {
                error.body_text()
            };
            rejection(status, detail)
        })
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|query| ApiQuery(query.0))
            .map_err(|error: QueryRejection| rejection(error.status(), error.body_text()))
    }
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|path| ApiPath(path.0))
            .map_err(|error: PathRejection| rejection(error.status(), error.body_text()))
    }
}

/// A JSON body that may be absent: an empty body gives `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(OptionalJson)
            .map_err(|error| ApiError::invalid(format!("invalid JSON body: {error}")))
    }
}
