//! Extractors that fail with our JSON errors: the caller's identity, JSON bodies, queries.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::Value;

use super::AppState;
use super::error::ApiError;
use hookd_core::record::{Kind, RecordIn, parse_body, parse_body_text};
use hookd_core::signature::constant_time_eq;
use hookd_core::store::Workspace;
use hookd_core::validation::ValidationError;

use crate::service::key_hash;

/// Who is calling: the admin, or a workspace key.
#[derive(Debug, Clone)]
pub(super) enum Caller {
    Admin,
    Workspace(String),
}

impl Caller {
    /// The workspace `id`, if this caller may use it. A workspace key asking for another
    /// workspace gets 404, exactly as if it did not exist.
    pub(super) async fn workspace(&self, state: &AppState, id: &str) -> Result<Workspace, ApiError> {
        let allowed = match self {
            Caller::Admin => true,
            Caller::Workspace(own) => own == id,
        };
        if !allowed {
            return Err(ApiError::NotFound("workspace"));
        }
        Ok(state.service.workspace(id).await?)
    }

    pub(super) fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Workspace(_) => Err(ApiError::Forbidden),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let key = header
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let hash = key_hash(key);
        // Hashed and compared in constant time: the timing says nothing about the key.
        if constant_time_eq(hash.as_bytes(), state.admin_key_hash.as_bytes()) {
            return Ok(Caller::Admin);
        }
        let found = state.service.authenticate(&hash).await?.ok_or(ApiError::Unauthorized)?;
        if let Some(limiter) = &state.rate_limit {
            if let Err(not_until) = limiter.check_key(&hash) {
                use governor::clock::Clock;
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                return Err(ApiError::RateLimited(wait.as_secs_f64().ceil().max(1.0) as u64));
            }
        }
        Ok(Caller::Workspace(found.workspace_id))
    }
}

/// A JSON body.
pub(super) struct JsonBody {
    pub(super) value: Value,
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let raw = raw_body(req, state).await?;
        let value = json_of(&raw, "the request body")?;
        Self::checked(value, state)
    }
}

impl JsonBody {
    /// Refuses a value nested deeper than `api.max_json_depth`, naming where.
    fn checked(value: Value, state: &AppState) -> Result<Self, ApiError> {
        let max_depth = state.settings.api.max_json_depth;
        if let Some(path) = hookd_core::validation::too_deep(&value, max_depth) {
            return Err(ApiError::BadRequest {
                code: "json_too_deep",
                field: Some(path).filter(|p| !p.is_empty()),
                message: format!("the request body nests arrays and objects deeper than {max_depth} levels"),
            });
        }
        Ok(Self { value })
    }
}

/// An ingest body, for senders that cannot say `application/json`: JSON; the same JSON sent
/// as `text/plain`; or `application/x-www-form-urlencoded`, either a form whose one key is the
/// JSON (a controller posting its array) or a record's fields with a `payload` that is JSON.
/// JSON is read into records by [`IngestBody::records`], without a tree of each one.
pub(super) struct IngestBody {
    pub(super) raw: Bytes,
    /// A form's reading; `None` for JSON.
    form: Option<Value>,
    /// What the body is called in a JSON error.
    what: &'static str,
}

impl FromRequest<AppState> for IngestBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(axum::http::header::CONTENT_TYPE);
        let media = hookd_core::source::media_type(content_type.and_then(|t| t.to_str().ok()));
        let raw = raw_body(req, state).await?;
        let (form, what) = match media.as_str() {
            "text/plain" => (None, "the text/plain body"),
            "application/x-www-form-urlencoded" => (Some(JsonBody::checked(form_record(&raw)?, state)?.value), ""),
            _ => (None, "the request body"),
        };
        Ok(Self { raw, form, what })
    }
}

impl IngestBody {
    /// The body's records. The outer error is the body's (not JSON, nested too deep), the
    /// inner one its records' (a missing field): the caller answers the first before it looks
    /// the workspace up, the second after, as for any other body.
    pub(super) fn records(
        self,
        state: &AppState,
        kind: Kind,
    ) -> Result<Result<Vec<RecordIn>, ValidationError>, ApiError> {
        let api = &state.settings.api;
        let value = match self.form {
            Some(form) => form,
            None => {
                let text = std::str::from_utf8(&self.raw).ok();
                let read =
                    text.and_then(|text| parse_body_text(text, kind, api.max_records_per_request, api.max_json_depth));
                if let Some(records) = read {
                    return Ok(records);
                }
                JsonBody::checked(json_of(&self.raw, self.what)?, state)?.value
            }
        };
        Ok(parse_body(value, kind, api.max_records_per_request))
    }
}

/// A form as a record (or records): [`hookd_core::source::read_body`]'s reading, with a
/// `payload` field parsed as JSON.
fn form_record(raw: &[u8]) -> Result<Value, ApiError> {
    let mut value = hookd_core::source::read_body(Some("application/x-www-form-urlencoded"), raw).map_err(|e| {
        ApiError::BadRequest {
            code: "invalid_body",
            field: None,
            message: e.0,
        }
    })?;
    if let Some(payload) = value.get_mut("payload")
        && let Value::String(text) = payload
    {
        *payload = serde_json::from_str(text).map_err(|e| ApiError::BadRequest {
            code: "invalid_json",
            field: Some("payload".into()),
            message: format!("the form field `payload` is not valid JSON: {e}"),
        })?;
    }
    Ok(value)
}

/// The body's bytes, refusing one over `api.max_body_bytes`.
async fn raw_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(state.settings.api.max_body_bytes)
        } else {
            ApiError::BadRequest {
                code: "invalid_body",
                field: None,
                message: rejection.body_text(),
            }
        }
    })
}

/// `raw` parsed as JSON; `what` names it in the error.
fn json_of(raw: &[u8], what: &str) -> Result<Value, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest {
            code: "invalid_json",
            field: None,
            message: format!("{what} is empty; send JSON"),
        });
    }
    serde_json::from_slice(raw).map_err(|e| ApiError::BadRequest {
        code: "invalid_json",
        field: None,
        message: format!("{what} is not valid JSON: {e}"),
    })
}

/// An optional JSON body: absent or empty means `{}`.
pub(super) struct OptionalJson(pub(super) Value);

impl FromRequest<AppState> for OptionalJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match JsonBody::from_request(req, state).await {
            Ok(body) if body.value.is_null() => Ok(Self(Value::Object(Default::default()))),
            Ok(body) => Ok(Self(body.value)),
            Err(ApiError::BadRequest {
                code: "invalid_json",
                message,
                ..
            }) if message.contains("empty") => Ok(Self(Value::Object(Default::default()))),
            Err(other) => Err(other),
        }
    }
}

/// Refuses requests whose headers (names and values) add up to more than
/// `api.max_header_bytes`, before any handler reads them.
pub(super) async fn limit_headers(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let limit = state.settings.api.max_header_bytes;
    let size = |(name, value): (&axum::http::HeaderName, &axum::http::HeaderValue)| name.as_str().len() + value.len();
    let total: usize = request.headers().iter().map(size).sum();
    if total > limit {
        let largest = request
            .headers()
            .iter()
            .max_by_key(|h| size(*h))
            .map(|(name, _)| name.to_string());
        let header = largest.unwrap_or_default();
        return axum::response::IntoResponse::into_response(ApiError::HeadersTooLarge { header, limit });
    }
    next.run(request).await
}

/// A list route's query: its parameters, refusing any but `allowed` (named in the error).
pub(super) fn list_query(
    raw: Option<&str>,
    allowed: &[&str],
) -> Result<std::collections::HashMap<String, String>, ApiError> {
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    if let Some(unknown) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        let expected = match allowed.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        return Err(ApiError::bad_request(
            "unknown_parameter",
            unknown,
            format!("unknown query parameter `{unknown}`; expected {expected}"),
        ));
    }
    Ok(params)
}

/// The page size a list route was asked for: `limit`, 1 to 250, default 50.
pub(super) fn page_limit(params: &std::collections::HashMap<String, String>) -> Result<usize, ApiError> {
    const DEFAULT_LIMIT: usize = 50;
    const MAX_LIMIT: usize = 250;
    match params.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_value",
                    "limit",
                    format!("`limit` must be a number from 1 to {MAX_LIMIT}"),
                )
            }),
    }
}
