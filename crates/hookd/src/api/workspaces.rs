//! Workspaces and their API keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hookd_core::ValidationError;
use hookd_core::id::new_id;
use hookd_core::store::{ApiKey, Workspace};
use hookd_core::validation::Fields;
use rand::RngCore;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, BodyErrors, CommonErrors};
use super::extract::{Caller, JsonBody, OptionalJson, key_hash};
use crate::model;

/// The longest workspace name.
const MAX_NAME_LEN: usize = 200;

/// Characters of a key kept as its prefix: `hk_` and 6 of its 43 random ones (36 of 256 bits).
const PREFIX_LEN: usize = 9;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_workspace, list_workspaces))
        .routes(routes!(read_workspace, rename_workspace, delete_workspace))
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
}

/// The `name` of a workspace body, required.
fn name_of(body: &serde_json::Value) -> Result<String, ValidationError> {
    let fields = Fields::new(body, "")?;
    fields.deny_unknown(&["name"])?;
    Ok(fields.req_str("name", MAX_NAME_LEN)?.to_owned())
}

/// Creates a workspace (admin key only).
#[utoipa::path(
    post, path = "/v1/workspaces", tag = "workspaces", request_body = model::WorkspaceIn,
    responses((status = 201, body = model::Workspace), (status = 403, description = "Not the admin key", body = model::ErrorBody), CommonErrors, BodyErrors)
)]
async fn create_workspace(
    State(state): State<AppState>,
    caller: Caller,
    OptionalJson(body): OptionalJson,
) -> ApiResult<(StatusCode, Json<model::Workspace>)> {
    caller.require_admin()?;
    let workspace = Workspace {
        id: new_id("ws"),
        name: name_of(&body)?,
        created_at: state.clock.now(),
    };
    state.store.create_workspace(&workspace).await?;
    Ok((StatusCode::CREATED, Json((&workspace).into())))
}

/// Lists workspaces: all of them for the admin key, its own for a workspace key.
#[utoipa::path(get, path = "/v1/workspaces", tag = "workspaces", responses((status = 200, body = model::List<model::Workspace>), CommonErrors))]
async fn list_workspaces(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<model::List<model::Workspace>>> {
    let workspaces = match &caller {
        Caller::Admin => state.store.list_workspaces().await?,
        Caller::Workspace(id) => state.store.get_workspace(id).await?.into_iter().collect(),
    };
    Ok(Json(model::List {
        data: workspaces.iter().map(Into::into).collect(),
    }))
}

/// Reads a workspace.
#[utoipa::path(get, path = "/v1/workspaces/{ws}", tag = "workspaces", params(("ws" = String, Path, description = "Workspace id")), responses((status = 200, body = model::Workspace), CommonErrors))]
async fn read_workspace(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
) -> ApiResult<Json<model::Workspace>> {
    caller.workspace(&state, &ws).await?;
    // Read afresh: the remembered one may carry a name another process has changed.
    let workspace = state
        .store
        .get_workspace(&ws)
        .await?
        .ok_or(ApiError::NotFound("workspace"))?;
    Ok(Json((&workspace).into()))
}

/// Renames a workspace.
#[utoipa::path(
    patch, path = "/v1/workspaces/{ws}", tag = "workspaces", params(("ws" = String, Path, description = "Workspace id")), request_body = model::WorkspaceIn,
    responses((status = 200, body = model::Workspace), CommonErrors, BodyErrors)
)]
async fn rename_workspace(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<model::Workspace>> {
    caller.workspace(&state, &ws).await?;
    let name = name_of(&body.value)?;
    let renamed = state
        .store
        .rename_workspace(&ws, &name)
        .await?
        .ok_or(ApiError::NotFound("workspace"))?;
    state.known.forget_all();
    Ok(Json((&renamed).into()))
}

/// Deletes a workspace and everything in it — webhooks, deliveries and their attempts,
/// records, API keys — for good (admin key only). The body must name the workspace again:
/// `{"confirm": "<ws>"}`. From then on its keys get 401, in every hookd process.
#[utoipa::path(
    delete, path = "/v1/workspaces/{ws}", tag = "workspaces", params(("ws" = String, Path, description = "Workspace id")), request_body = model::WorkspaceDeleteIn,
    responses((status = 200, body = model::WorkspaceDeleted), (status = 403, description = "Not the admin key", body = model::ErrorBody), CommonErrors, BodyErrors)
)]
async fn delete_workspace(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    OptionalJson(body): OptionalJson,
) -> ApiResult<Json<model::WorkspaceDeleted>> {
    caller.require_admin()?;
    caller.workspace(&state, &ws).await?;
    let fields = Fields::new(&body, "")?;
    fields.deny_unknown(&["confirm"])?;
    let refusal = || {
        ValidationError::new(
            "confirmation_required",
            "confirm",
            format!(
                "deleting {ws} deletes its webhooks, deliveries, records and keys for good: send {{\"confirm\": \"{ws}\"}} to go ahead"
            ),
        )
    };
    if fields.opt_str("confirm")? != Some(ws.as_str()) {
        return Err(refusal().into());
    }
    let deletion = state
        .store
        .delete_workspace(&ws)
        .await?
        .ok_or(ApiError::NotFound("workspace"))?;
    state.known.forget_all();
    tracing::warn!(workspace = %ws, webhooks = deletion.webhooks, deliveries = deletion.deliveries, records = deletion.records, keys = deletion.keys, "workspace deleted");
    Ok(Json(model::WorkspaceDeleted {
        deleted: ws,
        webhooks: deletion.webhooks,
        deliveries: deletion.deliveries,
        records: deletion.records,
        keys: deletion.keys,
    }))
}

/// A new workspace API key. The key itself is returned once; only its hash is stored.
#[utoipa::path(
    post, path = "/v1/workspaces/{ws}/keys", tag = "workspaces", params(("ws" = String, Path, description = "Workspace id")),
    responses((status = 201, body = model::ApiKeyCreated), CommonErrors)
)]
async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
) -> ApiResult<(StatusCode, Json<model::ApiKeyCreated>)> {
    let workspace = caller.workspace(&state, &ws).await?;
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let key = format!("hk_{}", URL_SAFE_NO_PAD.encode(secret));
    let record = ApiKey {
        id: new_id("key"),
        workspace_id: workspace.id.clone(),
        key_hash: key_hash(&key),
        prefix: key[..PREFIX_LEN].to_owned(),
        created_at: state.clock.now(),
        last_used_at: None,
    };
    state.store.create_api_key(&record).await?;
    let created = model::ApiKeyCreated {
        id: record.id,
        workspace_id: workspace.id,
        key,
        prefix: record.prefix,
        note: "store this key now: it is not shown again".into(),
    };
    Ok((StatusCode::CREATED, Json(created)))
}

/// Lists the workspace's API keys, oldest first: ids, prefixes and when each was made and
/// last used, never the keys themselves.
#[utoipa::path(
    get, path = "/v1/workspaces/{ws}/keys", tag = "workspaces", params(("ws" = String, Path, description = "Workspace id")),
    responses((status = 200, body = model::List<model::ApiKey>), CommonErrors)
)]
async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
) -> ApiResult<Json<model::List<model::ApiKey>>> {
    caller.workspace(&state, &ws).await?;
    let keys = state.store.list_api_keys(&ws).await?;
    Ok(Json(model::List {
        data: keys.iter().map(Into::into).collect(),
    }))
}

/// Revokes an API key: from now on it gets 401, in every hookd process.
#[utoipa::path(
    delete, path = "/v1/workspaces/{ws}/keys/{key}", tag = "workspaces", params(("ws" = String, Path, description = "Workspace id"), ("key" = String, Path, description = "Key id (`key_…`)")),
    responses((status = 204, description = "Revoked"), CommonErrors)
)]
async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.workspace(&state, &ws).await?;
    if !state.store.revoke_api_key(&ws, &key).await? {
        return Err(ApiError::NotFound("key"));
    }
    state.known.forget_all();
    tracing::info!(workspace = %ws, key = %key, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
