//! The delivery log: list (newest first, cursor paged), one with its attempts, retry now.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use hookd_core::store::{DeliveryQuery, DeliveryState};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::Caller;
use super::views;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 250;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/workspaces/{ws}/deliveries", get(list))
        .route("/v1/workspaces/{ws}/deliveries/{dlv}", get(read))
        .route("/v1/workspaces/{ws}/deliveries/{dlv}/retry", post(retry))
}

fn parse_query(params: &HashMap<String, String>) -> ApiResult<DeliveryQuery> {
    if let Some(unknown) = params
        .keys()
        .find(|k| !["webhook_id", "state", "limit", "after"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(
            "unknown_parameter",
            unknown,
            format!("unknown query parameter `{unknown}`; expected webhook_id, state, limit or after"),
        ));
    }
    let state = params
        .get("state")
        .map(|s| {
            DeliveryState::parse(s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_value",
                    "state",
                    format!("unknown state `{s}`; expected pending, delivered, failed or dead"),
                )
            })
        })
        .transpose()?;
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
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
            })?,
    };
    Ok(DeliveryQuery {
        webhook_id: params.get("webhook_id").cloned(),
        state,
        limit,
        after: params.get("after").cloned(),
    })
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    caller.workspace(&state, &ws).await?;
    let query = parse_query(&params)?;
    let page = state.store.list_deliveries(&ws, &query).await?;
    let next = (page.len() == query.limit)
        .then(|| page.last().map(|d| d.id.clone()))
        .flatten();
    Ok(Json(
        json!({ "data": page.iter().map(views::delivery).collect::<Vec<_>>(), "next_cursor": next }),
    ))
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, dlv)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.workspace(&state, &ws).await?;
    let (delivery, attempts) = state
        .store
        .get_delivery(&ws, &dlv)
        .await?
        .ok_or(ApiError::NotFound("delivery"))?;
    let mut out = views::delivery(&delivery);
    out["attempts"] = attempts.iter().map(views::attempt).collect::<Vec<_>>().into();
    Ok(Json(out))
}

/// Makes the delivery pending and due now, whatever its state (a delivered one is sent again,
/// with the same id). A delivery with an attempt in flight is left to that attempt.
async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, dlv)): Path<(String, String)>,
) -> ApiResult<(axum::http::StatusCode, Json<Value>)> {
    caller.workspace(&state, &ws).await?;
    let delivery = state
        .store
        .retry_delivery(&ws, &dlv, state.clock.now())
        .await?
        .ok_or(ApiError::NotFound("delivery"))?;
    state.dispatcher.wake();
    Ok((axum::http::StatusCode::ACCEPTED, Json(views::delivery(&delivery))))
}
