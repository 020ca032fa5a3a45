//! Webhooks: the list with each one's health, the create and edit forms, delete (confirmed),
//! the secret, the test send and the condition preview.

use std::collections::HashMap;

use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use hookd_core::store::Tally;
use hookd_core::timefmt::rfc3339;
use minijinja::{Value, context};
use serde::Serialize;

use super::form::{Purpose, WEBHOOK_FIELDS, body, errors_by_field, submitted, values};
use super::{DashError, DashResult, Fields, Viewer, render, render_status, see_other};
use crate::api::AppState;
use crate::model;
use crate::service::ServiceError;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/w/{ws}/webhooks", get(list).post(create))
        .route("/w/{ws}/webhooks/new", get(new))
        .route("/w/{ws}/webhooks/{id}", get(show).post(update))
        .route("/w/{ws}/webhooks/{id}/delete", get(confirm_delete).post(delete))
        .route("/w/{ws}/webhooks/{id}/test", post(test))
        .route("/w/{ws}/webhooks/{id}/rotate", post(rotate))
        .route("/w/{ws}/webhooks/{id}/preview", post(preview))
        .route("/w/{ws}/webhooks/{id}/replay", post(replay))
}

const HOUR: i64 = 3_600_000;

/// What the list shows of a webhook's last hour.
#[derive(Serialize, Default)]
struct HourView {
    attempts: u64,
    success_rate: Option<String>,
    p95_ms: Option<u64>,
}

fn hour_view(tally: Option<&Tally>) -> HourView {
    let Some(t) = tally else { return HourView::default() };
    HourView {
        attempts: t.attempts(),
        success_rate: t.success_rate().map(|r| format!("{:.1} %", r * 100.0)),
        p95_ms: t.latency_quantile(0.95),
    }
}

pub(super) fn view(state: &AppState, webhook: &hookd_core::webhook::Webhook) -> model::Webhook {
    model::Webhook::render(webhook, state.settings.dispatch.breaker_failures, state.service.now())
}

async fn list(State(state): State<AppState>, viewer: Viewer, Path(ws): Path<String>) -> DashResult {
    let workspace = viewer.workspace(&state, &ws).await?;
    let webhooks = state.service.list_webhooks(&workspace.id).await?;
    let hour: HashMap<String, Tally> = state
        .service
        .tallies_by_webhook(&workspace.id, state.service.now() - HOUR)
        .await?
        .into_iter()
        .collect();
    let rows: Vec<Value> = webhooks
        .iter()
        .map(|w| {
            context! { webhook => view(&state, w), hour => hour_view(hour.get(w.id.as_str())) }
        })
        .collect();
    Ok(render(
        &state,
        Some(&viewer),
        Some(&ws),
        "webhooks.html",
        context! { workspace => model::Workspace::from(&workspace), rows },
    ))
}

/// The form, empty or filled, with errors by field.
fn form_page(state: &AppState, viewer: &Viewer, ws: &str, ctx: Value, status: StatusCode) -> Response {
    let ctx = context! { fields => super::form::grouped(&WEBHOOK_FIELDS), ..ctx };
    render_status(state, status, Some(viewer), Some(ws), "webhook_form.html", ctx)
}

async fn new(State(state): State<AppState>, viewer: Viewer, Path(ws): Path<String>) -> DashResult {
    viewer.workspace(&state, &ws).await?;
    let mut values = values(&WEBHOOK_FIELDS, &serde_json::json!({}));
    values.insert("enabled", "on".into());
    Ok(form_page(&state, &viewer, &ws, context! { values }, StatusCode::OK))
}

async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(ws): Path<String>,
    Form(form): Form<Fields>,
) -> DashResult {
    let workspace = viewer.changing(&state, &ws, &form).await?;
    let body = body(&WEBHOOK_FIELDS, &form, Purpose::Create);
    match state.service.create_webhook(&workspace.id, &body).await {
        Ok(created) => Ok(see_other(&format!("/w/{ws}/webhooks/{}?created=1", created.webhook.id))),
        Err(ServiceError::Invalid(err)) => Ok(form_page(
            &state,
            &viewer,
            &ws,
            context! { values => submitted(&WEBHOOK_FIELDS, &form), errors => errors_by_field(&WEBHOOK_FIELDS, &err) },
            StatusCode::UNPROCESSABLE_ENTITY,
        )),
        Err(err) => Err(err.into()),
    }
}

/// A webhook's page: its state, actions and edit form, with `extra` (a test's attempt, a
/// preview, errors of an edit).
async fn webhook_page(
    state: &AppState,
    viewer: &Viewer,
    ws: &str,
    id: &str,
    extra: Value,
    status: StatusCode,
) -> DashResult {
    let workspace = viewer.workspace(state, ws).await?;
    let webhook = state.service.webhook(&workspace.id, id).await?;
    let shown = view(state, &webhook);
    let values = values(&WEBHOOK_FIELDS, &serde_json::to_value(&shown).unwrap_or_default());
    let ctx = context! {
        webhook => shown,
        values,
        fields => super::form::grouped(&WEBHOOK_FIELDS),
        secret => webhook.secret,
        ..extra
    };
    Ok(render_status(
        state,
        status,
        Some(viewer),
        Some(ws),
        "webhook.html",
        ctx,
    ))
}

async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((ws, id)): Path<(String, String)>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> DashResult {
    let created = query.contains_key("created");
    webhook_page(&state, &viewer, &ws, &id, context! { created }, StatusCode::OK).await
}

async fn update(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((ws, id)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> DashResult {
    let workspace = viewer.changing(&state, &ws, &form).await?;
    let body = body(&WEBHOOK_FIELDS, &form, Purpose::Change);
    match state.service.update_webhook(&workspace.id, &id, &body).await {
        Ok(changed) => {
            let warnings = changed.warnings;
            webhook_page(
                &state,
                &viewer,
                &ws,
                &id,
                context! { saved => true, warnings },
                StatusCode::OK,
            )
            .await
        }
        Err(ServiceError::Invalid(err)) => {
            let extra = context! { form_values => submitted(&WEBHOOK_FIELDS, &form), errors => errors_by_field(&WEBHOOK_FIELDS, &err) };
            webhook_page(&state, &viewer, &ws, &id, extra, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(err) => Err(err.into()),
    }
}

async fn confirm_delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((ws, id)): Path<(String, String)>,
) -> DashResult {
    webhook_page(
        &state,
        &viewer,
        &ws,
        &id,
        context! { confirm_delete => true },
        StatusCode::OK,
    )
    .await
}

async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((ws, id)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> DashResult {
    let workspace = viewer.changing(&state, &ws, &form).await?;
    state.service.delete_webhook(&workspace.id, &id).await?;
    Ok(see_other(&format!("/w/{ws}/webhooks")))
}

async fn test(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((ws, id)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> DashResult {
    let workspace = viewer.changing(&state, &ws, &form).await?;
    let webhook = state.service.webhook(&workspace.id, &id).await?;
    let tested = state.service.test_webhook(&workspace.id, &id).await?;
    let attempt = model::Attempt::from(&tested.attempt);
    Ok(render(
        &state,
        Some(&viewer),
        Some(&ws),
        "tested.html",
        context! {
            webhook => view(&state, &webhook),
            delivery_id => tested.delivery_id.to_string(),
            attempt,
            request_headers => tested.request_headers,
        },
    ))
}

async fn rotate(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((ws, id)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> DashResult {
    let workspace = viewer.changing(&state, &ws, &form).await?;
    state
        .service
        .rotate_secret(&workspace.id, &id, &serde_json::json!({}))
        .await?;
    webhook_page(&state, &viewer, &ws, &id, context! { rotated => true }, StatusCode::OK).await
}

async fn preview(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((ws, id)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> DashResult {
    // A preview changes nothing, so a read-only portal may run one too.
    let workspace = viewer.workspace(&state, &ws).await?;
    let condition = form.get("condition").map(|c| c.trim()).unwrap_or("");
    let draft = serde_json::json!({ "condition": condition, "limit": 50 });
    let (verdicts, preview_error) = match state.service.preview_condition(&workspace.id, &id, &draft).await {
        Ok(found) => (found.iter().map(model::ConditionVerdict::from).collect(), None),
        Err(ServiceError::Invalid(err)) => (Vec::new(), Some(err.to_string())),
        Err(err) => return Err(DashError::from(err)),
    };
    let extra = context! { verdicts, preview_error, draft_condition => condition, previewed => true };
    webhook_page(&state, &viewer, &ws, &id, extra, StatusCode::OK).await
}

/// The states a replay form can name, each its own checkbox (`state_dead`, …).
const REPLAY_STATES: [&str; 4] = ["dead", "failed", "delivered", "pending"];

/// Replay by time range and state: without `confirm`, a dry run that counts; with it, the
/// replay itself.
async fn replay(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((ws, id)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> DashResult {
    let workspace = viewer.changing(&state, &ws, &form).await?;
    let time = |name: &str| {
        form.get(name)
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(|t| super::local_time(t).map(rfc3339).unwrap_or_else(|| t.to_owned()))
    };
    let states: Vec<&str> = REPLAY_STATES
        .into_iter()
        .filter(|s| form.contains_key(&format!("state_{s}")))
        .collect();
    let confirm = form.contains_key("confirm");
    let mut body =
        serde_json::json!({ "since": time("since").unwrap_or_default(), "states": states, "dry_run": !confirm });
    if let Some(until) = time("until") {
        body["until"] = until.into();
    }
    let (count, replay_error) = match state.service.replay(&workspace.id, &id, &body).await {
        Ok((count, _)) => (Some(count), None),
        Err(ServiceError::Invalid(err)) => (None, Some(err.to_string())),
        Err(err) => return Err(err.into()),
    };
    let replay = context! {
        count,
        error => replay_error,
        done => confirm,
        since => form.get("since"),
        until => form.get("until"),
        states,
    };
    webhook_page(&state, &viewer, &ws, &id, context! { replay }, StatusCode::OK).await
}
