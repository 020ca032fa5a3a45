//! API errors: always `{"error": {"code", "message", "field"?}}` with the HTTP status the
//! situation calls for. Internal causes are logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hookd_core::ValidationError;
use serde_json::json;

use crate::model::ErrorBody;
use crate::service::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field failed validation (422).
    #[error("{0}")]
    Invalid(ValidationError),
    /// The request could not be read: malformed JSON, a bad query parameter (400).
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    #[error("a valid API key is required: send `Authorization: Bearer <key>`")]
    Unauthorized,
    /// A request at a source's door did not verify; why is in the source's log only.
    #[error("verification failed")]
    VerificationFailed,
    #[error("this operation needs the admin key")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("this route does not take that method")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// The request's headers together exceed `api.max_header_bytes`; `header` is the largest.
    #[error("the request headers are larger than {limit} bytes together (the largest is `{header}`)")]
    HeadersTooLarge { header: String, limit: usize },
    /// Too many requests with this key; retry after this many seconds.
    #[error("too many requests with this API key; retry in {0}s")]
    RateLimited(u64),
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        Self::Invalid(err)
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Invalid(e) => Self::Invalid(e),
            ServiceError::NotFound(what) => Self::NotFound(what),
            ServiceError::Conflict { code, message } => Self::Conflict { code, message },
            ServiceError::Unavailable => Self::Unavailable,
            ServiceError::Internal(e) => Self::Internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field) = match &self {
            Self::Invalid(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                e.code,
                Some(e.field.clone()).filter(|f| !f.is_empty()),
            ),
            Self::BadRequest { code, field, .. } => (StatusCode::BAD_REQUEST, *code, field.clone()),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            Self::VerificationFailed => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden", None),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", None),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, *code, None),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None),
            Self::HeadersTooLarge { header, .. } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                Some(header.clone()),
            ),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", None),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None),
            Self::Internal(err) => {
                tracing::error!(error = ?err, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", None)
            }
        };
        let message = match &self {
            Self::Invalid(e) => e.message.clone(),
            other => other.to_string(),
        };
        let mut error = json!({ "code": code, "message": message });
        if let Some(field) = field {
            error["field"] = field.into();
        }
        if let Self::Invalid(e) = &self {
            if !e.also.is_empty() {
                let all: Vec<_> = e
                    .all()
                    .map(|p| json!({ "code": p.code, "message": p.message, "field": p.field }))
                    .collect();
                error["errors"] = all.into();
            }
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        let retry_after = match self {
            Self::Unavailable => Some(1),
            Self::RateLimited(secs) => Some(secs),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The errors any authenticated route can answer (for the OpenAPI document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses; never constructed
pub(crate) enum CommonErrors {
    /// No key, or an unknown one.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The workspace or object does not exist, or the key may not see it.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// Too many requests with this workspace key; retry after `Retry-After` seconds.
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// The request headers together exceed `api.max_header_bytes`; `field` names the largest.
    #[response(status = 431)]
    HeadersTooLarge(ErrorBody),
    /// The database is unavailable; retry after `Retry-After`.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The errors a route with a JSON body can answer, in addition to [`CommonErrors`].
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses; never constructed
pub(crate) enum BodyErrors {
    /// The body is not JSON, or a query parameter is wrong.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// The body is larger than `api.max_body_bytes`.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// A field is missing or invalid; `field` names it.
    #[response(status = 422)]
    Invalid(ErrorBody),
}
