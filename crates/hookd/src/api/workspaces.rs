//! Workspaces and their API keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, BodyErrors, CommonErrors};
use super::extract::{Caller, JsonBody, OptionalJson};
use crate::model;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_workspace, list_workspaces))
        .routes(routes!(read_workspace, update_workspace, delete_workspace))
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
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
    let workspace = state.service.create_workspace(&body).await?;
    Ok((StatusCode::CREATED, Json((&workspace).into())))
}

/// Lists workspaces: all of them for the admin key, its own for a workspace key.
#[utoipa::path(get, path = "/v1/workspaces", tag = "workspaces", responses((status = 200, body = model::List<model::Workspace>), CommonErrors))]
async fn list_workspaces(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<model::List<model::Workspace>>> {
    let workspaces = match &caller {
        Caller::Admin => state.service.list_workspaces().await?,
        Caller::Workspace(id) => vec![state.service.read_workspace(id).await?],
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
    Ok(Json((&state.service.read_workspace(&ws).await?).into()))
}

/// Changes a workspace: its `name`, its `presence` (`{"offline_after": "5m"}`; null: no
/// presence events), or both.
#[utoipa::path(
    patch, path = "/v1/workspaces/{ws}", tag = "workspaces", params(("ws" = String, Path, description = "Workspace id")), request_body = model::WorkspacePatch,
    responses((status = 200, body = model::Workspace), CommonErrors, BodyErrors)
)]
async fn update_workspace(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<model::Workspace>> {
    caller.workspace(&state, &ws).await?;
    Ok(Json((&state.service.update_workspace(&ws, &body.value).await?).into()))
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
    let deletion = state.service.delete_workspace(&ws, &body).await?;
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
    let created = state.service.create_key(&workspace.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(model::ApiKeyCreated {
            id: created.record.id,
            workspace_id: workspace.id,
            key: created.key,
            prefix: created.record.prefix,
            note: "store this key now: it is not shown again".into(),
        }),
    ))
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
    let keys = state.service.list_keys(&ws).await?;
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
    state.service.revoke_key(&ws, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
