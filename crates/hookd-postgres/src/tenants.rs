//! Workspaces and API keys.

use hookd_core::store::{ApiKey, StoreResult, Workspace};
use sqlx::{PgPool, Row};

use crate::map_err;

pub(crate) async fn create_workspace(pool: &PgPool, ws: &Workspace) -> StoreResult<()> {
    sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&ws.id)
        .bind(&ws.name)
        .bind(ws.created_at)
        .execute(pool)
        .await
        .map_err(map_err)?;
    Ok(())
}

fn workspace(row: &sqlx::postgres::PgRow) -> StoreResult<Workspace> {
    Ok(Workspace {
        id: row.try_get("id").map_err(map_err)?,
        name: row.try_get("name").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
    })
}

pub(crate) async fn list_workspaces(pool: &PgPool) -> StoreResult<Vec<Workspace>> {
    let rows = sqlx::query("SELECT id, name, created_at FROM workspaces ORDER BY id")
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    rows.iter().map(workspace).collect()
}

pub(crate) async fn get_workspace(pool: &PgPool, id: &str) -> StoreResult<Option<Workspace>> {
    let row = sqlx::query("SELECT id, name, created_at FROM workspaces WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.as_ref().map(workspace).transpose()
}

pub(crate) async fn create_api_key(pool: &PgPool, key: &ApiKey) -> StoreResult<()> {
    sqlx::query("INSERT INTO api_keys (id, workspace_id, key_hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&key.id)
        .bind(&key.workspace_id)
        .bind(&key.key_hash)
        .bind(key.created_at)
        .execute(pool)
        .await
        .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn find_api_key(pool: &PgPool, key_hash: &str) -> StoreResult<Option<ApiKey>> {
    let row = sqlx::query("SELECT id, workspace_id, key_hash, created_at FROM api_keys WHERE key_hash = $1")
        .bind(key_hash)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.map(|row| {
        Ok(ApiKey {
            id: row.try_get("id").map_err(map_err)?,
            workspace_id: row.try_get("workspace_id").map_err(map_err)?,
            key_hash: row.try_get("key_hash").map_err(map_err)?,
            created_at: row.try_get("created_at").map_err(map_err)?,
        })
    })
    .transpose()
}
