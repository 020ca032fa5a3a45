//! Devices: those the workspace heard from, their state and last word, each linking to its
//! deliveries.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use hookd_core::store::{DeviceQuery, DeviceState};
use minijinja::context;

use super::{DashResult, Viewer, render};
use crate::api::AppState;
use crate::model;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/w/{ws}/devices", get(list))
}

const PAGE: usize = 100;

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(ws): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> DashResult {
    let workspace = viewer.workspace(&state, &ws).await?;
    let filter = params.get("state").and_then(|s| DeviceState::parse(s));
    let query = DeviceQuery {
        state: filter,
        fleet_id: params.get("fleet").filter(|f| !f.is_empty()).cloned(),
        after: params.get("after").filter(|a| !a.is_empty()).cloned(),
        limit: PAGE,
    };
    let found = state.service.list_devices(&workspace.id, &query).await?;
    let next = (found.len() == PAGE)
        .then(|| found.last().map(|d| d.device_id.clone()))
        .flatten();
    let devices: Vec<model::Device> = found.iter().map(Into::into).collect();
    Ok(render(
        &state,
        Some(&viewer),
        Some(&ws),
        "devices.html",
        context! {
            devices,
            next,
            state => filter.map(DeviceState::as_str),
            fleet => query.fleet_id,
            presence => workspace.offline_after.is_some(),
        },
    ))
}
