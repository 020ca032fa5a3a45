//! Workspaces (admin) and workspace API keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hookd_core::id::new_id;
use hookd_core::store::{ApiKey, Workspace};
use hookd_core::validation::Fields;
use rand::RngCore;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, BodyErrors, CommonErrors};
use super::extract::{Caller, OptionalJson, key_hash};
use crate::model;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_workspace, list_workspaces))
        .routes(routes!(create_api_key))
}

/// Creates a workspace (admin key only).
#[utoipa::path(
    post, path = "/v1/workspaces", tag = "workspaces", request_body(content = Option<model::WorkspaceIn>, description = "Optional"),
    responses((status = 201, body = model::Workspace), (status = 403, description = "Not the admin key", body = model::ErrorBody), CommonErrors, BodyErrors)
)]
async fn create_workspace(
    State(state): State<AppState>,
    caller: Caller,
    OptionalJson(body): OptionalJson,
) -> ApiResult<(StatusCode, Json<model::Workspace>)> {
    caller.require_admin()?;
    let fields = Fields::new(&body, "")?;
    fields.deny_unknown(&["name"])?;
    let name = match fields.opt_str("name")? {
        Some(_) => fields.req_str("name", 200)?.to_owned(),
        None => "default".to_owned(),
    };
    let workspace = Workspace {
        id: new_id("ws"),
        name,
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
        created_at: state.clock.now(),
    };
    state.store.create_api_key(&record).await?;
    let created = model::ApiKeyCreated {
        id: record.id,
        workspace_id: workspace.id,
        key,
        note: "store this key now: it is not shown again".into(),
    };
    Ok((StatusCode::CREATED, Json(created)))
}
