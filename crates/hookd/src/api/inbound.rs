//! The public door of each source: `POST /in/{src}` (and `PUT`, `GET` where the source
//! allows them). No API key: the source's scheme verifies the raw bytes. A refused request
//! hears only "verification failed"; why is in the source's request log.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hookd_core::source::Reason;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::model;
use crate::service::{Arrival, Received};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive_post, receive_put, receive_get))
}

/// Sends records to a source. The body is read as received: JSON, a form, or text.
#[utoipa::path(
    post, path = "/in/{src}", tag = "sources", security(()),
    params(("src" = String, Path, description = "Source id")),
    request_body(content = String, description = "What the sender sends, verified by the source's scheme"),
    responses(
        (status = 202, description = "Committed (200 or 204 if the source says so)", body = model::Accepted),
        (status = 401, description = "The request did not verify; the source's log says why", body = model::ErrorBody),
        (status = 404, description = "No such source", body = model::ErrorBody),
        (status = 405, description = "The source does not take this method", body = model::ErrorBody),
        (status = 413, description = "The body is larger than `api.max_body_bytes`", body = model::ErrorBody),
    )
)]
async fn receive_post(
    state: State<AppState>,
    src: Path<String>,
    raw: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    receive(state, src, Method::POST, raw, headers, body).await
}

/// As `POST`, for sources whose `methods` include `PUT`.
#[utoipa::path(
    put, path = "/in/{src}", tag = "sources", security(()),
    params(("src" = String, Path, description = "Source id")),
    request_body(content = String, description = "What the sender sends"),
    responses((status = 202, description = "Committed", body = model::Accepted), (status = 401, description = "The request did not verify", body = model::ErrorBody), (status = 404, description = "No such source", body = model::ErrorBody), (status = 405, description = "The source does not take this method", body = model::ErrorBody), (status = 413, description = "The body is larger than `api.max_body_bytes`", body = model::ErrorBody))
)]
async fn receive_put(
    state: State<AppState>,
    src: Path<String>,
    raw: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    receive(state, src, Method::PUT, raw, headers, body).await
}

/// For sources whose `methods` include `GET`: the data is in the query (and headers).
#[utoipa::path(
    get, path = "/in/{src}", tag = "sources", security(()),
    params(("src" = String, Path, description = "Source id")),
    responses((status = 202, description = "Committed", body = model::Accepted), (status = 401, description = "The request did not verify", body = model::ErrorBody), (status = 404, description = "No such source", body = model::ErrorBody), (status = 405, description = "The source does not take this method", body = model::ErrorBody))
)]
async fn receive_get(
    state: State<AppState>,
    src: Path<String>,
    raw: RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    receive(state, src, Method::GET, raw, headers, Body::empty()).await
}

async fn receive(
    State(state): State<AppState>,
    Path(src): Path<String>,
    method: Method,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let limit = state.settings.api.max_body_bytes;
    // Read here rather than by an extractor, so a body over the limit is logged too.
    let body = axum::body::to_bytes(body, limit).await;
    let query: Vec<(String, String)> = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let header_pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut arrival = Arrival {
        method: method.as_str(),
        content_type: headers.get("content-type").and_then(|v| v.to_str().ok()),
        headers: header_pairs,
        query,
        body: &[],
    };
    let received = match &body {
        Ok(bytes) => {
            arrival.body = bytes;
            state.service.receive(&src, arrival).await?
        }
        Err(_) => state.service.refuse_too_large(&src, arrival, limit).await?,
    };
    match received {
        Received::Accepted { status, ids } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED);
            Ok(match status {
                StatusCode::NO_CONTENT => status.into_response(),
                _ => (status, Json(model::Accepted { ids })).into_response(),
            })
        }
        Received::Rejected(Reason::MethodNotAllowed) => Err(ApiError::MethodNotAllowed),
        Received::Rejected(Reason::TooLarge) => Err(ApiError::TooLarge(limit)),
        Received::Rejected(_) => Err(ApiError::VerificationFailed),
    }
}
