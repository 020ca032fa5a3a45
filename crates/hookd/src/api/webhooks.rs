//! Webhooks: CRUD, the signing secret, the test send and replay.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hookd_core::timefmt::rfc3339;
use hookd_core::webhook::Webhook;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, BodyErrors, CommonErrors};
use super::extract::{Caller, JsonBody, OptionalJson};
use crate::model;
use crate::service::Changed;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(read_webhook, update_webhook, delete_webhook))
        .routes(routes!(read_secret))
        .routes(routes!(rotate_secret))
        .routes(routes!(send_test))
        .routes(routes!(replay_deliveries))
        .routes(routes!(preview_condition))
}

/// The webhook as the API shows it now.
fn view(state: &AppState, webhook: &Webhook) -> model::Webhook {
    model::Webhook::render(webhook, state.settings.dispatch.breaker_failures, state.service.now())
}

/// A created or changed webhook, with its warnings.
fn changed_view(state: &AppState, changed: &Changed) -> model::Webhook {
    let mut view = view(state, &changed.webhook);
    view.warnings = changed.warnings.clone();
    view
}

/// Creates a webhook. The answer carries its signing secret.
#[utoipa::path(
    post, path = "/v1/workspaces/{ws}/webhooks", tag = "webhooks", params(("ws" = String, Path, description = "Workspace id")), request_body = model::WebhookIn,
    responses(
        (status = 201, body = model::WebhookCreated),
        (status = 409, description = "The workspace has as many webhooks as allowed", body = model::ErrorBody),
        CommonErrors, BodyErrors
    )
)]
async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<model::WebhookCreated>)> {
    let workspace = caller.workspace(&state, &ws).await?;
    let created = state.service.create_webhook(&workspace.id, &body.value).await?;
    Ok((
        StatusCode::CREATED,
        Json(model::WebhookCreated {
            webhook: changed_view(&state, &created),
            secret: created.webhook.secret.clone(),
        }),
    ))
}

/// Lists the workspace's webhooks.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/webhooks", tag = "webhooks", params(("ws" = String, Path, description = "Workspace id")), responses((status = 200, body = model::List<model::Webhook>), CommonErrors))]
async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
) -> ApiResult<Json<model::List<model::Webhook>>> {
    caller.workspace(&state, &ws).await?;
    let webhooks = state.service.list_webhooks(&ws).await?;
    Ok(Json(model::List {
        data: webhooks.iter().map(|w| view(&state, w)).collect(),
    }))
}

/// Reads a webhook.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/webhooks/{wh}", tag = "webhooks", params(("ws" = String, Path, description = "Workspace id"), ("wh" = String, Path, description = "Webhook id")), responses((status = 200, body = model::Webhook), CommonErrors))]
async fn read_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, wh)): Path<(String, String)>,
) -> ApiResult<Json<model::Webhook>> {
    caller.workspace(&state, &ws).await?;
    Ok(Json(view(&state, &state.service.webhook(&ws, &wh).await?)))
}

/// Replaces the fields the body names. Enabling a webhook clears its disabled reason.
#[utoipa::path(
    patch, path = "/v1/workspaces/{ws}/webhooks/{wh}", tag = "webhooks", params(("ws" = String, Path, description = "Workspace id"), ("wh" = String, Path, description = "Webhook id")), request_body = model::WebhookPatch,
    responses((status = 200, body = model::Webhook), CommonErrors, BodyErrors)
)]
async fn update_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, wh)): Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<Json<model::Webhook>> {
    caller.workspace(&state, &ws).await?;
    let changed = state.service.update_webhook(&ws, &wh, &body.value).await?;
    Ok(Json(changed_view(&state, &changed)))
}

/// Deletes a webhook and its deliveries.
#[utoipa::path(
    delete, path = "/v1/workspaces/{ws}/webhooks/{wh}", tag = "webhooks", params(("ws" = String, Path, description = "Workspace id"), ("wh" = String, Path, description = "Webhook id")),
    responses((status = 204, description = "Deleted"), CommonErrors)
)]
async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, wh)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.workspace(&state, &ws).await?;
    state.service.delete_webhook(&ws, &wh).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn secret_view(webhook: &Webhook, now: i64) -> model::Secret {
    let previous = webhook
        .previous_secrets
        .iter()
        .filter(|p| p.expires_at > now)
        .map(|p| model::PreviousSecret {
            expires_at: rfc3339(p.expires_at),
        })
        .collect();
    model::Secret {
        secret: webhook.secret.clone(),
        previous,
    }
}

/// Reads the signing secret.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/webhooks/{wh}/secret", tag = "webhooks", params(("ws" = String, Path, description = "Workspace id"), ("wh" = String, Path, description = "Webhook id")), responses((status = 200, body = model::Secret), CommonErrors))]
async fn read_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, wh)): Path<(String, String)>,
) -> ApiResult<Json<model::Secret>> {
    caller.workspace(&state, &ws).await?;
    let webhook = state.service.webhook(&ws, &wh).await?;
    Ok(Json(secret_view(&webhook, state.service.now())))
}

/// Replaces the secret (with the one given, or a new one). The old secret keeps signing for
/// `delivery.secret_rotation_grace`, so receivers can switch without missing a delivery.
#[utoipa::path(
    post, path = "/v1/workspaces/{ws}/webhooks/{wh}/secret/rotate", tag = "webhooks", params(("ws" = String, Path, description = "Workspace id"), ("wh" = String, Path, description = "Webhook id")),
    request_body(content = Option<model::RotateIn>, description = "Optional"),
    responses((status = 200, body = model::Secret), CommonErrors, BodyErrors)
)]
async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, wh)): Path<(String, String)>,
    OptionalJson(body): OptionalJson,
) -> ApiResult<Json<model::Secret>> {
    caller.workspace(&state, &ws).await?;
    let webhook = state.service.rotate_secret(&ws, &wh, &body).await?;
    Ok(Json(secret_view(&webhook, state.service.now())))
}

/// Makes one test attempt now, outside the queue, and returns it. The record has the
/// webhook's kind: an event of type `TEST` for an event webhook, a data point with tag `TEST`
/// (device `hookd-test`) for a data webhook. The delivery is logged like any other, ends
/// `delivered` or `failed`, and is never retried.
#[utoipa::path(
    post, path = "/v1/workspaces/{ws}/webhooks/{wh}/test", tag = "webhooks", params(("ws" = String, Path, description = "Workspace id"), ("wh" = String, Path, description = "Webhook id")),
    responses((status = 200, body = model::TestResult), CommonErrors)
)]
async fn send_test(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, wh)): Path<(String, String)>,
) -> ApiResult<Json<model::TestResult>> {
    caller.workspace(&state, &ws).await?;
    let tested = state.service.test_webhook(&ws, &wh).await?;
    Ok(Json(model::TestResult {
        delivery_id: tested.delivery_id.into(),
        attempt: (&tested.attempt).into(),
    }))
}

/// Makes the webhook's deliveries created in `[since, until)` and in one of `states` pending
/// again, due now (`dry_run`: only counts them). Their ids stay the same, so receivers can
/// still deduplicate.
#[utoipa::path(
    post, path = "/v1/workspaces/{ws}/webhooks/{wh}/replay", tag = "webhooks", params(("ws" = String, Path, description = "Workspace id"), ("wh" = String, Path, description = "Webhook id")), request_body = model::ReplayIn,
    responses((status = 200, body = model::ReplayResult), CommonErrors, BodyErrors)
)]
async fn replay_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, wh)): Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<Json<model::ReplayResult>> {
    caller.workspace(&state, &ws).await?;
    let (replayed, since) = state.service.replay(&ws, &wh, &body.value).await?;
    Ok(Json(model::ReplayResult {
        replayed,
        since: rfc3339(since),
        dry_run: body.value.get("dry_run").and_then(serde_json::Value::as_bool) == Some(true),
    }))
}

/// Tries a draft condition on the workspace's newest records of the webhook's kind: which it
/// matches, which the webhook's filters pass, and any error. Nothing is stored or sent.
#[utoipa::path(
    post, path = "/v1/workspaces/{ws}/webhooks/{wh}/preview", tag = "webhooks", params(("ws" = String, Path, description = "Workspace id"), ("wh" = String, Path, description = "Webhook id")), request_body = model::ConditionPreviewIn,
    responses((status = 200, body = model::List<model::ConditionVerdict>), CommonErrors, BodyErrors)
)]
async fn preview_condition(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, wh)): Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<Json<model::List<model::ConditionVerdict>>> {
    caller.workspace(&state, &ws).await?;
    let verdicts = state.service.preview_condition(&ws, &wh, &body.value).await?;
    Ok(Json(model::List {
        data: verdicts.iter().map(Into::into).collect(),
    }))
}
