//! Workspaces and API keys.

use hookd_core::clock::Millis;
use hookd_core::record::Kind;
use hookd_core::store::{ApiKey, RECENT_WINDOW, StoreResult, Workspace, WorkspaceDeletion};
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::db::{CREDENTIALS_CHANNEL, map_err};

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
        offline_after: row.try_get("offline_after").map_err(map_err)?,
    })
}

pub(crate) async fn list_workspaces(pool: &PgPool) -> StoreResult<Vec<Workspace>> {
    let rows = sqlx::query("SELECT id, name, created_at, offline_after FROM workspaces ORDER BY id")
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    rows.iter().map(workspace).collect()
}

pub(crate) async fn get_workspace(pool: &PgPool, id: &str) -> StoreResult<Option<Workspace>> {
    let row = sqlx::query("SELECT id, name, created_at, offline_after FROM workspaces WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.as_ref().map(workspace).transpose()
}

pub(crate) async fn rename_workspace(pool: &PgPool, id: &str, name: &str) -> StoreResult<Option<Workspace>> {
    let row =
        sqlx::query("UPDATE workspaces SET name = $1 WHERE id = $2 RETURNING id, name, created_at, offline_after")
            .bind(name)
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(map_err)?;
    row.as_ref().map(workspace).transpose()
}

pub(crate) async fn set_offline_after(
    pool: &PgPool,
    id: &str,
    offline_after: Option<Millis>,
) -> StoreResult<Option<Workspace>> {
    let row = sqlx::query(
        "UPDATE workspaces SET offline_after = $1 WHERE id = $2 RETURNING id, name, created_at, offline_after",
    )
    .bind(offline_after)
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(map_err)?;
    row.as_ref().map(workspace).transpose()
}

/// Tells every process, once `tx` commits, that remembered keys and workspaces may be stale.
async fn announce(tx: &mut Transaction<'_, Postgres>) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CREDENTIALS_CHANNEL)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Everything of the workspace, children first, in one transaction.
pub(crate) async fn delete_workspace(pool: &PgPool, id: &str) -> StoreResult<Option<WorkspaceDeletion>> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    // Locks the workspace row, so a concurrent delete waits and then finds nothing.
    let found = sqlx::query("SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
    if found.is_none() {
        return Ok(None);
    }
    let mut delete = async |sql: &str| -> StoreResult<u64> {
        let done = sqlx::query(sql).bind(id).execute(&mut *tx).await.map_err(map_err)?;
        Ok(done.rows_affected())
    };
    delete("DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE workspace_id = $1)").await?;
    let deletion = WorkspaceDeletion {
        deliveries: delete("DELETE FROM deliveries WHERE workspace_id = $1").await?,
        records: delete("DELETE FROM records WHERE workspace_id = $1").await?,
        webhooks: delete("DELETE FROM webhooks WHERE workspace_id = $1").await?,
        keys: delete("DELETE FROM api_keys WHERE workspace_id = $1").await?,
    };
    delete("DELETE FROM idempotency_keys WHERE workspace_id = $1").await?;
    delete("DELETE FROM source_messages WHERE source_id IN (SELECT id FROM sources WHERE workspace_id = $1)").await?;
    delete("DELETE FROM source_requests WHERE workspace_id = $1").await?;
    delete("DELETE FROM sources WHERE workspace_id = $1").await?;
    delete("DELETE FROM devices WHERE workspace_id = $1").await?;
    delete("DELETE FROM attempt_minutes WHERE workspace_id = $1").await?;
    delete("DELETE FROM dashboard_passes WHERE workspace_id = $1").await?;
    delete("DELETE FROM workspaces WHERE id = $1").await?;
    announce(&mut tx).await?;
    tx.commit().await.map_err(map_err)?;
    Ok(Some(deletion))
}

pub(crate) async fn create_api_key(pool: &PgPool, key: &ApiKey) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, workspace_id, key_hash, prefix, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.id)
    .bind(&key.workspace_id)
    .bind(&key.key_hash)
    .bind(&key.prefix)
    .bind(key.created_at)
    .bind(key.last_used_at)
    .execute(pool)
    .await
    .map_err(map_err)?;
    Ok(())
}

const KEY_COLUMNS: &str = "id, workspace_id, key_hash, prefix, created_at, last_used_at";

fn api_key(row: &sqlx::postgres::PgRow) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: row.try_get("id").map_err(map_err)?,
        workspace_id: row.try_get("workspace_id").map_err(map_err)?,
        key_hash: row.try_get("key_hash").map_err(map_err)?,
        prefix: row.try_get("prefix").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        last_used_at: row.try_get("last_used_at").map_err(map_err)?,
    })
}

pub(crate) async fn find_api_key(pool: &PgPool, key_hash: &str) -> StoreResult<Option<ApiKey>> {
    let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"))
        .bind(key_hash)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.as_ref().map(api_key).transpose()
}

pub(crate) async fn list_api_keys(pool: &PgPool, workspace_id: &str) -> StoreResult<Vec<ApiKey>> {
    let rows = sqlx::query(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = $1 ORDER BY id"
    ))
    .bind(workspace_id)
    .fetch_all(pool)
    .await
    .map_err(map_err)?;
    rows.iter().map(api_key).collect()
}

pub(crate) async fn revoke_api_key(pool: &PgPool, workspace_id: &str, id: &str) -> StoreResult<bool> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let done = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND workspace_id = $2")
        .bind(id)
        .bind(workspace_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    announce(&mut tx).await?;
    tx.commit().await.map_err(map_err)?;
    Ok(true)
}

pub(crate) async fn touch_api_key(pool: &PgPool, id: &str, at: Millis) -> StoreResult<()> {
    sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(pool)
        .await
        .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn recent_records(
    pool: &PgPool,
    workspace_id: &str,
    kind: Kind,
    limit: usize,
) -> StoreResult<Vec<(String, String)>> {
    let rows = sqlx::query_as(
        "SELECT id, body FROM (SELECT id, workspace_id, kind, body FROM records ORDER BY id DESC LIMIT $1) r
         WHERE workspace_id = $2 AND kind = $3 ORDER BY id DESC LIMIT $4",
    )
    .bind(RECENT_WINDOW as i64)
    .bind(workspace_id)
    .bind(kind.as_str())
    .bind(limit as i64)
    .fetch_all(pool)
    .await
    .map_err(map_err)?;
    Ok(rows)
}

pub(crate) async fn get_records(
    pool: &PgPool,
    workspace_id: &str,
    ids: &[String],
) -> StoreResult<Vec<(String, String)>> {
    let rows = sqlx::query_as("SELECT id, body FROM records WHERE id = ANY($1) AND workspace_id = $2")
        .bind(ids)
        .bind(workspace_id)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    Ok(rows)
}
