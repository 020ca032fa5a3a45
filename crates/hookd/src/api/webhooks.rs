//! Webhooks: CRUD, the signing secret, the test send and replay.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hookd_core::id::new_id;
use hookd_core::record::{Kind, RecordIn};
use hookd_core::signature::{generate_secret, secret_key};
use hookd_core::store::{Claimed, DeliveryState, NewDelivery, ReplayQuery};
use hookd_core::timefmt::{parse_rfc3339, rfc3339};
use hookd_core::validation::Fields;
use hookd_core::webhook::{PreviousSecret, TlsSpec, Webhook, WebhookLimits, WebhookSpec, apply_patch};
use hookd_core::{ValidationError, timefmt};
use serde_json::{Value, json};

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, BodyErrors, CommonErrors};
use super::extract::{Caller, JsonBody, OptionalJson};
use crate::dispatch::network::warning_for;
use crate::ingest::Submission;
use crate::model;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(read_webhook, update_webhook, delete_webhook))
        .routes(routes!(read_secret))
        .routes(routes!(rotate_secret))
        .routes(routes!(send_test))
        .routes(routes!(replay_deliveries))
}

fn limits(state: &AppState) -> WebhookLimits {
    WebhookLimits {
        max_timeout: state.settings.delivery.max_timeout,
    }
}

/// A secret given by the client, or a new one.
fn secret_from(body: &Value) -> Result<String, ValidationError> {
    let fields = Fields::new(body, "")?;
    match fields.opt_str("secret")? {
        None => Ok(generate_secret()),
        Some(s) => secret_key(s)
            .map(|_| s.to_owned())
            .map_err(|m| ValidationError::new("invalid_secret", "secret", m)),
    }
}

/// The webhook as the API shows it now.
fn view(state: &AppState, webhook: &Webhook) -> model::Webhook {
    model::Webhook::render(webhook, state.settings.dispatch.breaker_failures, state.clock.now())
}

/// Refuses TLS settings no client can be made with, naming the field at fault.
fn check_tls(state: &AppState, spec: &WebhookSpec) -> Result<(), ValidationError> {
    let tls = &spec.tls;
    if tls.is_default() {
        return Ok(());
    }
    let only_ca = TlsSpec {
        ca: tls.ca.clone(),
        ..Default::default()
    };
    for (field, candidate) in [("tls.ca", &only_ca), ("tls.client_cert", tls)] {
        state
            .dispatcher
            .check_tls(candidate)
            .map_err(|why| ValidationError::new("invalid_tls", field, why))?;
    }
    Ok(())
}

/// The webhook as the API shows it after a change, with what is worth knowing now.
async fn with_warnings(state: &AppState, webhook: &Webhook) -> model::Webhook {
    let mut view = view(state, webhook);
    view.warnings
        .extend(warning_for(&state.network, &webhook.spec.url).await);
    view.warnings.extend(tls_warnings(webhook));
    view
}

/// What is risky or useless in a webhook's TLS settings; a disabled check is also logged.
pub(crate) fn tls_warnings(webhook: &Webhook) -> Vec<String> {
    let tls = &webhook.spec.tls;
    let mut warnings = Vec::new();
    if tls.skip_verify {
        tracing::warn!(webhook = %webhook.id, "TLS certificate verification is off for this webhook (tls.verify = false)");
        warnings.push("tls.verify is false: any certificate is accepted, so anyone between hookd and the receiver can read and change its deliveries".to_owned());
    }
    if !tls.is_default() && webhook.spec.url.scheme() != "https" {
        warnings.push("the tls settings apply to https URLs only; this webhook's URL is http".to_owned());
    }
    warnings
}

async fn load(state: &AppState, caller: &Caller, ws: &str, wh: &str) -> ApiResult<Webhook> {
    caller.workspace(state, ws).await?;
    state
        .store
        .get_webhook(ws, wh)
        .await?
        .ok_or(ApiError::NotFound("webhook"))
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
    let spec = WebhookSpec::parse(&body.value, limits(&state))?;
    check_tls(&state, &spec)?;
    let max = state.settings.api.max_webhooks_per_workspace;
    if state.store.list_webhooks(&ws).await?.len() >= max {
        return Err(ApiError::Conflict {
            code: "limit_reached",
            message: format!("this workspace has {max} webhooks, the most allowed (api.max_webhooks_per_workspace)"),
        });
    }
    let secret = secret_from(&body.value)?;
    let now = state.clock.now();
    let webhook = Webhook {
        id: new_id("wh"),
        workspace_id: workspace.id,
        spec,
        secret,
        previous_secrets: Vec::new(),
        disabled_reason: None,
        created_at: now,
        updated_at: now,
        health: Default::default(),
    };
    state.store.insert_webhook(&webhook).await?;
    let view = with_warnings(&state, &webhook).await;
    Ok((
        StatusCode::CREATED,
        Json(model::WebhookCreated {
            webhook: view,
            secret: webhook.secret.clone(),
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
    let webhooks = state.store.list_webhooks(&ws).await?;
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
    Ok(Json(view(&state, &load(&state, &caller, &ws, &wh).await?)))
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
    let mut webhook = load(&state, &caller, &ws, &wh).await?;
    let was_enabled = webhook.spec.enabled;
    webhook.spec = apply_patch(&webhook.spec, &body.value, limits(&state))?;
    check_tls(&state, &webhook.spec)?;
    match (was_enabled, webhook.spec.enabled) {
        (_, true) => webhook.disabled_reason = None,
        (true, false) => {
            webhook.disabled_reason = Some(format!("disabled through the API at {}", rfc3339(state.clock.now())))
        }
        (false, false) => {}
    }
    webhook.updated_at = state.clock.now();
    state.store.update_webhook(&webhook).await?;
    if webhook.spec.enabled && !was_enabled {
        state.dispatcher.wake(); // its held deliveries may go now
    }
    Ok(Json(with_warnings(&state, &webhook).await))
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
    state.store.delete_webhook(&ws, &wh).await.map_err(|e| match e {
        hookd_core::store::StoreError::NotFound => ApiError::NotFound("webhook"),
        other => other.into(),
    })?;
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
    let webhook = load(&state, &caller, &ws, &wh).await?;
    Ok(Json(secret_view(&webhook, state.clock.now())))
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
    let mut webhook = load(&state, &caller, &ws, &wh).await?;
    Fields::new(&body, "")?.deny_unknown(&["secret"])?;
    let secret = secret_from(&body)?;
    let now = state.clock.now();
    let grace = state.settings.delivery.secret_rotation_grace.as_millis() as i64;
    let old = std::mem::replace(&mut webhook.secret, secret);
    webhook.previous_secrets.retain(|p| p.expires_at > now);
    webhook.previous_secrets.push(PreviousSecret {
        secret: old,
        expires_at: now + grace,
    });
    webhook.updated_at = now;
    state.store.update_webhook(&webhook).await?;
    Ok(Json(secret_view(&webhook, now)))
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
    let webhook = load(&state, &caller, &ws, &wh).await?;
    let now = state.clock.now();
    let record_id = new_id("rec");
    let payload =
        json!({ "webhook_id": webhook.id, "message": "This is a test sent by hookd.", "sent_at": rfc3339(now) });
    let record = match webhook.spec.kind {
        Kind::Event => RecordIn::event("TEST", payload),
        Kind::Data => RecordIn::data_point("hookd-test", "TEST", payload),
    };
    let lease = state.dispatcher.lease(now);
    let delivery = NewDelivery {
        id: new_id("dlv"),
        workspace_id: ws.clone(),
        webhook_id: webhook.id.clone(),
        record_ids: vec![record_id.clone()],
        created_at: now,
        lease: Some(lease.clone()),
    };
    let submission = Submission {
        workspace_id: ws.clone(),
        records: vec![record.clone()],
        idempotency: None,
        fixed: Some(vec![delivery.clone()]),
        record_ids: vec![record_id.clone()],
        exclude_webhook: None,
    };
    state
        .committer
        .submit(submission)
        .await
        .map_err(crate::api::ingest::submit_error)?;
    let records = vec![record.stamp(&record_id, &webhook.workspace_id, &rfc3339(now))];
    let claimed = Claimed::created(&delivery, lease, webhook.into(), records);
    let attempt = state.dispatcher.deliver_once(claimed).await;
    Ok(Json(model::TestResult {
        delivery_id: delivery.id,
        attempt: (&attempt).into(),
    }))
}

/// Makes the webhook's deliveries created in `[since, until)` and in one of `states` pending
/// again, due now. Their ids stay the same, so receivers can still deduplicate.
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
    load(&state, &caller, &ws, &wh).await?;
    let fields = Fields::new(&body.value, "")?;
    fields.deny_unknown(&["since", "until", "states"])?;
    let time = |key: &str| -> Result<Option<i64>, ValidationError> {
        fields
            .opt_str(key)?
            .map(|s| {
                parse_rfc3339(s).ok_or_else(|| {
                    ValidationError::new(
                        "invalid_time",
                        key,
                        format!("`{s}` is not an RFC 3339 time, e.g. 2024-03-01T10:00:00Z"),
                    )
                })
            })
            .transpose()
    };
    let since = time("since")?.ok_or_else(|| fields.missing("since"))?;
    let until = time("until")?.unwrap_or(i64::MAX);
    let states = match fields.value("states") {
        None => vec![DeliveryState::Dead, DeliveryState::Failed],
        Some(_) => fields
            .str_list("states")?
            .iter()
            .enumerate()
            .map(|(i, s)| {
                DeliveryState::parse(s).ok_or_else(|| {
                    ValidationError::new(
                        "invalid_value",
                        format!("states[{i}]"),
                        format!("unknown state `{s}`; expected pending, delivered, failed or dead"),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let now = state.clock.now();
    let query = ReplayQuery {
        webhook_id: wh,
        since,
        until,
        states,
        note: format!(
            "replayed at {}: due now, with its full retry schedule again",
            rfc3339(now)
        ),
    };
    let replayed = state.store.replay(&ws, &query, now).await?;
    if replayed > 0 {
        state.dispatcher.wake();
    }
    Ok(Json(model::ReplayResult {
        replayed,
        since: timefmt::rfc3339(since),
    }))
}
