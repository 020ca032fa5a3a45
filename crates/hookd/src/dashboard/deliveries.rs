//! The delivery log (filtered, paged, live with JavaScript on), one delivery with its
//! attempts, and Retry.

use std::collections::HashMap;

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use hookd_core::id::{DeliveryId, lowest_id_at};
use hookd_core::record::{Kind, parse_body};
use hookd_core::store::{DeliveryQuery, DeliveryState};
use minijinja::context;

use super::{DashResult, Fields, Viewer, local_time, render, see_other};
use crate::api::AppState;
use crate::model;
use crate::service::{Origin, ServiceError};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/w/{ws}/deliveries", get(list))
        .route("/w/{ws}/deliveries/{id}", get(show))
        .route("/w/{ws}/deliveries/{id}/retry", post(retry))
        .route("/w/{ws}/records", post(send_records))
}

const PAGE: usize = 50;
/// How many deliveries a state or device filter looks through per page.
const SCAN: usize = 10_000;

async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(ws): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> DashResult {
    // After records were sent (a redirect, so reloading does not send them again).
    let sent = params.get("sent").and_then(|n| n.parse::<u64>().ok()).map(|n| {
        context! { ok => true, message => format!("{n} records accepted: they are on disk, and their deliveries are below.") }
    });
    log_page(&state, &viewer, &ws, &params, context! { sent }).await
}

/// The log as `params` filter it, with `extra` (what sending records did).
async fn log_page(
    state: &AppState,
    viewer: &Viewer,
    ws: &str,
    params: &HashMap<String, String>,
    extra: minijinja::Value,
) -> DashResult {
    let workspace = viewer.workspace(state, ws).await?;
    let param = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let before = param("before").and_then(local_time);
    let cursor = param("after")
        .map(str::to_owned)
        .or_else(|| before.map(|at| lowest_id_at(DeliveryId::PREFIX, at)));
    let query = DeliveryQuery {
        webhook_id: param("webhook").map(Into::into),
        state: param("state").and_then(DeliveryState::parse),
        limit: PAGE,
        after: cursor.map(|c| c.as_str().into()),
    };
    let device = param("device");
    let (found, scanned_to) = state
        .service
        .find_deliveries(&workspace.id, &query, device, SCAN)
        .await?;
    let webhooks = state.service.list_webhooks(&workspace.id).await?;
    let names: HashMap<&str, &str> = webhooks.iter().map(|w| (w.id.as_str(), w.spec.name.as_str())).collect();
    let deliveries: Vec<minijinja::Value> = found
        .iter()
        .map(|d| {
            context! {
                delivery => model::Delivery::from(d),
                webhook_name => names.get(d.webhook_id.as_str()).copied().unwrap_or("(deleted)"),
            }
        })
        .collect();
    let next = (found.len() == PAGE)
        .then(|| found.last().map(|d| d.id.to_string()))
        .flatten();
    let filters = context! {
        webhook => param("webhook"),
        state => param("state"),
        device => device,
        before => param("before"),
    };
    let webhook_options: Vec<(String, String)> = webhooks
        .iter()
        .map(|w| (w.id.to_string(), w.spec.name.clone()))
        .collect();
    let template = if params.contains_key("rows") {
        "delivery_rows.html"
    } else {
        "deliveries.html"
    };
    Ok(render(
        state,
        Some(viewer),
        Some(ws),
        template,
        context! {
            deliveries,
            next,
            filters,
            webhooks => webhook_options,
            states => ["pending", "delivered", "failed", "dead"],
            first_page => param("after").is_none() && before.is_none(),
            scanned_to => scanned_to.map(|id| id.to_string()),
            scan => SCAN,
            ..extra
        },
    ))
}

async fn delivery_page(state: &AppState, viewer: &Viewer, ws: &str, id: &str, retried: bool) -> DashResult {
    let workspace = viewer.workspace(state, ws).await?;
    let view = state.service.delivery(&workspace.id, id).await?;
    let webhook = state
        .service
        .webhook(&workspace.id, &view.delivery.webhook_id)
        .await
        .ok();
    let detail = model::DeliveryDetail::from(view);
    let body = detail
        .request_body
        .as_ref()
        .map(|b| serde_json::to_string_pretty(b).unwrap_or_default());
    Ok(render(
        state,
        Some(viewer),
        Some(ws),
        "delivery.html",
        context! {
            detail,
            body,
            webhook_name => webhook.map(|w| w.spec.name),
            retried,
        },
    ))
}

async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((ws, id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> DashResult {
    delivery_page(&state, &viewer, &ws, &id, params.contains_key("retried")).await
}

async fn retry(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((ws, id)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> DashResult {
    let workspace = viewer.changing(&state, &ws, &form).await?;
    state.service.retry_delivery(&workspace.id, &id).await?;
    Ok(see_other(&format!("/w/{ws}/deliveries/{id}?retried=1")))
}

/// Records sent from the log page (a data point or an event, or an array of them, as the
/// API's ingest takes them): on to the log, or the form again with what was wrong.
async fn send_records(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(ws): Path<String>,
    Form(form): Form<Fields>,
) -> DashResult {
    let workspace = viewer.changing(&state, &ws, &form).await?;
    let kind = match form.get("kind").map(String::as_str) {
        Some("event") => Kind::Event,
        _ => Kind::Data,
    };
    let text = form.get("records").map(|r| r.trim()).unwrap_or("");
    let parsed = serde_json::from_str::<serde_json::Value>(text)
        .map_err(|e| format!("The records are not JSON: {e}"))
        .and_then(|body| parse_body(body, kind, state.settings.api.max_records_per_request).map_err(|e| e.to_string()));
    let sent = match parsed {
        Ok(records) => match state.service.ingest(&workspace.id, Origin::Api, records, None).await {
            Ok(ids) => Ok(ids.len()),
            Err(ServiceError::Invalid(err)) => Err(err.to_string()),
            Err(err) => return Err(err.into()),
        },
        Err(message) => Err(message),
    };
    match sent {
        Ok(n) => Ok(see_other(&format!("/w/{ws}/deliveries?sent={n}"))),
        Err(message) => {
            let sent = context! { ok => false, message };
            let extra = context! { sent, records_text => text, records_kind => kind.as_str() };
            log_page(&state, &viewer, &ws, &HashMap::new(), extra).await
        }
    }
}
