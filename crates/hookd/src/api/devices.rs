//! The devices a workspace heard from, with their presence.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use hookd_core::store::{DeviceQuery, DeviceState};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, CommonErrors};
use super::extract::{Caller, list_query, page_limit};
use crate::model;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_devices))
}

/// Filters and paging of the device list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query; it is parsed by `parse_query`
struct ListParams {
    /// Only devices in this state: `online`, `offline`.
    state: Option<String>,
    /// Only this fleet's devices.
    fleet_id: Option<String>,
    /// Page size, 1–250 (default 50).
    #[param(minimum = 1, maximum = 250)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    after: Option<String>,
}

fn parse_query(raw: Option<&str>) -> ApiResult<DeviceQuery> {
    let params = list_query(raw, &["state", "fleet_id", "limit", "after"])?;
    let state = params
        .get("state")
        .map(|s| {
            DeviceState::parse(s).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_value",
                    "state",
                    format!("unknown state `{s}`; expected online or offline"),
                )
            })
        })
        .transpose()?;
    Ok(DeviceQuery {
        state,
        fleet_id: params.get("fleet_id").cloned(),
        after: params.get("after").cloned(),
        limit: page_limit(&params)?,
    })
}

/// Lists the devices the workspace heard from, by device id: fleet, state (online,
/// offline), when it was last heard from and since when it is in its state.
#[utoipa::path(
    get, path = "/v1/workspaces/{ws}/devices", tag = "devices",
    params(("ws" = String, Path, description = "Workspace id"), ListParams),
    responses((status = 200, body = model::DevicePage), (status = 400, description = "A query parameter is wrong", body = model::ErrorBody), CommonErrors)
)]
async fn list_devices(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<model::DevicePage>> {
    caller.workspace(&state, &ws).await?;
    let query = parse_query(raw.as_deref())?;
    let page = state.service.list_devices(&ws, &query).await?;
    let next_cursor = (page.len() == query.limit)
        .then(|| page.last().map(|d| d.device_id.clone()))
        .flatten();
    Ok(Json(model::DevicePage {
        data: page.iter().map(Into::into).collect(),
        next_cursor,
    }))
}
