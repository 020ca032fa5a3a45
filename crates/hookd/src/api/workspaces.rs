//! Workspaces (admin) and workspace API keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hookd_core::id::new_id;
use hookd_core::store::{ApiKey, Workspace};
use hookd_core::validation::Fields;
use rand::RngCore;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use super::extract::{Caller, OptionalJson, key_hash};
use super::views;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/workspaces", post(create).get(list))
        .route("/v1/workspaces/{ws}/keys", post(create_key))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    OptionalJson(body): OptionalJson,
) -> ApiResult<(StatusCode, Json<Value>)> {
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
    Ok((StatusCode::CREATED, Json(views::workspace(&workspace))))
}

async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let workspaces = match &caller {
        Caller::Admin => state.store.list_workspaces().await?,
        Caller::Workspace(id) => state.store.get_workspace(id).await?.into_iter().collect(),
    };
    Ok(Json(
        json!({ "data": workspaces.iter().map(views::workspace).collect::<Vec<_>>() }),
    ))
}

/// A new workspace API key. The key itself is returned once; only its hash is stored.
async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
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
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "id": record.id, "workspace_id": workspace.id, "key": key, "note": "store this key now: it is not shown again" }),
        ),
    ))
}
