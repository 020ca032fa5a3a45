//! Webhook rows. The spec is stored as its canonical JSON.

use hookd_core::store::{StoreError, StoreResult};
use hookd_core::webhook::Webhook;
use sqlx::SqlitePool;

use crate::rows::{self, WEBHOOK_COLUMNS, json_list};
use crate::{map_err, other};

pub(crate) async fn insert(pool: &SqlitePool, wh: &Webhook) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO webhooks (id, workspace_id, spec, enabled, secret, previous_secrets, disabled_reason, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&wh.id)
    .bind(&wh.workspace_id)
    .bind(wh.spec.to_json().to_string())
    .bind(wh.spec.enabled)
    .bind(&wh.secret)
    .bind(serde_json::to_string(&wh.previous_secrets).map_err(other)?)
    .bind(&wh.disabled_reason)
    .bind(wh.created_at)
    .bind(wh.updated_at)
    .execute(pool)
    .await
    .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn update(pool: &SqlitePool, wh: &Webhook) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE webhooks SET spec = ?, enabled = ?, secret = ?, previous_secrets = ?, disabled_reason = ?, updated_at = ? \
         WHERE id = ? AND workspace_id = ?",
    )
    .bind(wh.spec.to_json().to_string())
    .bind(wh.spec.enabled)
    .bind(&wh.secret)
    .bind(serde_json::to_string(&wh.previous_secrets).map_err(other)?)
    .bind(&wh.disabled_reason)
    .bind(wh.updated_at)
    .bind(&wh.id)
    .bind(&wh.workspace_id)
    .execute(pool)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn delete(pool: &SqlitePool, workspace_id: &str, id: &str) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let done = sqlx::query("DELETE FROM webhooks WHERE id = ? AND workspace_id = ?")
        .bind(id)
        .bind(workspace_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    // Its deliveries no longer reference their records (each record once per webhook).
    sqlx::query(
        "UPDATE records SET refs = refs - 1 WHERE id IN \
         (SELECT j.value FROM deliveries d, json_each(d.record_ids) j WHERE d.webhook_id = ?)",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    sqlx::query("DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE webhook_id = ?)")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    sqlx::query("DELETE FROM deliveries WHERE webhook_id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    tx.commit().await.map_err(map_err)
}

pub(crate) async fn get(pool: &SqlitePool, workspace_id: &str, id: &str) -> StoreResult<Option<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ? AND workspace_id = ?");
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.as_ref().map(rows::webhook).transpose()
}

pub(crate) async fn list(pool: &SqlitePool, workspace_id: &str) -> StoreResult<Vec<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE workspace_id = ? ORDER BY id");
    let found = sqlx::query(&sql)
        .bind(workspace_id)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    found.iter().map(rows::webhook).collect()
}

pub(crate) async fn enabled_in(pool: &SqlitePool, workspace_ids: &[String]) -> StoreResult<Vec<Webhook>> {
    let sql = format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE enabled = 1 AND workspace_id IN (SELECT value FROM json_each(?)) ORDER BY id"
    );
    let found = sqlx::query(&sql)
        .bind(json_list(workspace_ids))
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    found.iter().map(rows::webhook).collect()
}

/// Webhooks by id (any workspace), for claimed deliveries.
pub(crate) async fn by_ids(conn: &mut sqlx::SqliteConnection, ids: &[&str]) -> StoreResult<Vec<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id IN (SELECT value FROM json_each(?))");
    let found = sqlx::query(&sql)
        .bind(json_list(ids))
        .fetch_all(conn)
        .await
        .map_err(map_err)?;
    found.iter().map(rows::webhook).collect()
}
