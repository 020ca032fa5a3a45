//! Ingest: `POST …/data` and `POST …/events`. Answers 202 only once the records and their
//! deliveries are committed to disk.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use hookd_core::record::{Kind, parse_body};
use hookd_core::store::{Idempotency, IngestResult};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Caller, JsonBody, key_hash};
use crate::ingest::{Submission, SubmitError};

const MAX_IDEMPOTENCY_KEY: usize = 255;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/workspaces/{ws}/data", post(ingest_data))
        .route("/v1/workspaces/{ws}/events", post(ingest_events))
}

async fn ingest_data(
    state: State<AppState>,
    caller: Caller,
    ws: Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ingest(state, caller, ws, headers, body, Kind::Data).await
}

async fn ingest_events(
    state: State<AppState>,
    caller: Caller,
    ws: Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    ingest(state, caller, ws, headers, body, Kind::Event).await
}

async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
    kind: Kind,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let workspace = caller.workspace(&state, &ws).await?;
    let records = parse_body(&body.value, kind, state.settings.api.max_records_per_request)?;
    let idempotency = idempotency(&headers, &body)?;
    let submission = Submission {
        workspace_id: workspace.id,
        records,
        idempotency,
        fixed: None,
        record_ids: Vec::new(),
    };
    match state.committer.submit(submission).await.map_err(submit_error)? {
        IngestResult::Committed(ids) | IngestResult::Replayed(ids) => {
            Ok((StatusCode::ACCEPTED, Json(json!({ "ids": ids }))))
        }
        IngestResult::KeyConflict => Err(ApiError::Conflict {
            code: "idempotency_key_reused",
            message: "this Idempotency-Key was already used with a different body".into(),
        }),
    }
}

fn idempotency(headers: &HeaderMap, body: &JsonBody) -> ApiResult<Option<Idempotency>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key",
                format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
            )
        })?;
    let hash = key_hash(std::str::from_utf8(&body.raw).unwrap_or_default());
    Ok(Some(Idempotency {
        key: key.to_owned(),
        request_hash: hash,
    }))
}

pub(crate) fn submit_error(err: SubmitError) -> ApiError {
    match err {
        SubmitError::Stopped => ApiError::Unavailable,
        SubmitError::Store(store) => match &*store {
            hookd_core::store::StoreError::Unavailable(_) => ApiError::Unavailable,
            _ => ApiError::Internal(anyhow::anyhow!("ingest commit failed: {store}")),
        },
    }
}
