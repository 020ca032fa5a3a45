//! The delivery log: list (newest first, cursor paged), one with its attempts, retry now.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use hookd_core::store::{DeliveryQuery, DeliveryState};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, CommonErrors};
use super::extract::{Caller, list_query, page_limit};
use crate::model;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deliveries))
        .routes(routes!(read_delivery))
        .routes(routes!(retry_delivery))
}

/// Filters and paging of the delivery list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query; it is parsed by `parse_query`
struct ListParams {
    /// Only this webhook's deliveries.
    webhook_id: Option<String>,
    /// Only deliveries in this state.
    state: Option<model::DeliveryState>,
    /// Page size, 1–250 (default 50).
    #[param(minimum = 1, maximum = 250)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    after: Option<String>,
}

fn parse_query(raw: Option<&str>) -> ApiResult<DeliveryQuery> {
    let params = list_query(raw, &["webhook_id", "state", "limit", "after"])?;
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
    let limit = page_limit(&params)?;
    Ok(DeliveryQuery {
        webhook_id: params.get("webhook_id").map(|id| id.as_str().into()),
        state,
        limit,
        after: params.get("after").map(|id| id.as_str().into()),
    })
}

/// Lists deliveries, newest first.
#[utoipa::path(
    get, path = "/v1/workspaces/{ws}/deliveries", tag = "deliveries",
    params(("ws" = String, Path, description = "Workspace id"), ListParams),
    responses((status = 200, body = model::DeliveryPage), (status = 400, description = "A query parameter is wrong", body = model::ErrorBody), CommonErrors)
)]
async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<model::DeliveryPage>> {
    caller.workspace(&state, &ws).await?;
    let query = parse_query(raw.as_deref())?;
    let page = state.service.list_deliveries(&ws, &query).await?;
    let next_cursor = (page.len() == query.limit)
        .then(|| page.last().map(|d| d.id.to_string()))
        .flatten();
    Ok(Json(model::DeliveryPage {
        data: page.iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Reads one delivery with its attempts.
#[utoipa::path(
    get, path = "/v1/workspaces/{ws}/deliveries/{dlv}", tag = "deliveries",
    params(("ws" = String, Path, description = "Workspace id"), ("dlv" = String, Path, description = "Delivery id")),
    responses((status = 200, body = model::DeliveryDetail), CommonErrors)
)]
async fn read_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, dlv)): Path<(String, String)>,
) -> ApiResult<Json<model::DeliveryDetail>> {
    caller.workspace(&state, &ws).await?;
    let view = state.service.delivery(&ws, &dlv).await?;
    Ok(Json(view.into()))
}

#[utoipa::path(
    post, path = "/v1/workspaces/{ws}/deliveries/{dlv}/retry", tag = "deliveries",
    params(("ws" = String, Path, description = "Workspace id"), ("dlv" = String, Path, description = "Delivery id")),
    responses((status = 202, body = model::Delivery), CommonErrors)
)]
async fn retry_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, dlv)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<model::Delivery>)> {
    caller.workspace(&state, &ws).await?;
    let delivery = state.service.retry_delivery(&ws, &dlv).await?;
    Ok((StatusCode::ACCEPTED, Json((&delivery).into())))
}
