//! Webhook rows. The spec is stored as its canonical JSON.

use hookd_core::seal::Sealer;
use hookd_core::store::{StoreError, StoreResult, StoredWebhook};
use hookd_core::webhook::Webhook;
use sqlx::{Row, SqlitePool};

use crate::map_err;
use crate::rows::{self, WEBHOOK_COLUMNS, json_list};

pub(crate) async fn insert(pool: &SqlitePool, wh: &Webhook, sealer: &Sealer) -> StoreResult<()> {
    let stored = StoredWebhook::seal(wh, sealer)?;
    sqlx::query(
        "INSERT INTO webhooks (id, workspace_id, spec, enabled, secret, previous_secrets, disabled_reason, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&wh.id)
    .bind(&wh.workspace_id)
    .bind(&stored.spec)
    .bind(wh.spec.enabled)
    .bind(&stored.secret)
    .bind(&stored.previous_secrets)
    .bind(&wh.disabled_reason)
    .bind(wh.created_at)
    .bind(wh.updated_at)
    .execute(pool)
    .await
    .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn update(pool: &SqlitePool, wh: &Webhook, sealer: &Sealer) -> StoreResult<()> {
    let stored = StoredWebhook::seal(wh, sealer)?;
    let done = sqlx::query(
        "UPDATE webhooks SET spec = ?, enabled = ?, secret = ?, previous_secrets = ?, disabled_reason = ?, updated_at = ? \
         WHERE id = ? AND workspace_id = ?",
    )
    .bind(&stored.spec)
    .bind(wh.spec.enabled)
    .bind(&stored.secret)
    .bind(&stored.previous_secrets)
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

pub(crate) async fn get(
    pool: &SqlitePool,
    workspace_id: &str,
    id: &str,
    sealer: &Sealer,
) -> StoreResult<Option<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ? AND workspace_id = ?");
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.as_ref().map(|row| rows::webhook(row, sealer)).transpose()
}

pub(crate) async fn list(pool: &SqlitePool, workspace_id: &str, sealer: &Sealer) -> StoreResult<Vec<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE workspace_id = ? ORDER BY id");
    let found = sqlx::query(&sql)
        .bind(workspace_id)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    found.iter().map(|row| rows::webhook(row, sealer)).collect()
}

pub(crate) async fn enabled_in(
    pool: &SqlitePool,
    workspace_ids: &[String],
    sealer: &Sealer,
) -> StoreResult<Vec<Webhook>> {
    let sql = format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE enabled = 1 AND workspace_id IN (SELECT value FROM json_each(?)) ORDER BY id"
    );
    let found = sqlx::query(&sql)
        .bind(json_list(workspace_ids))
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    found.iter().map(|row| rows::webhook(row, sealer)).collect()
}

/// Webhooks by id (any workspace), for claimed deliveries.
pub(crate) async fn by_ids(
    conn: &mut sqlx::SqliteConnection,
    ids: &[&str],
    sealer: &Sealer,
) -> StoreResult<Vec<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id IN (SELECT value FROM json_each(?))");
    let found = sqlx::query(&sql)
        .bind(json_list(ids))
        .fetch_all(conn)
        .await
        .map_err(map_err)?;
    found.iter().map(|row| rows::webhook(row, sealer)).collect()
}

/// Brings every webhook's sealed columns into the form `sealer` writes (see
/// [`StoredWebhook::resealed`]); returns how many webhooks changed. With `secure_delete` on
/// and a checkpoint after, the plaintext a row held before is overwritten in the file too.
pub(crate) async fn reseal(pool: &SqlitePool, sealer: &Sealer) -> StoreResult<u64> {
    let mut conn = pool.acquire().await.map_err(map_err)?;
    let found = sqlx::query("SELECT id, spec, secret, previous_secrets FROM webhooks")
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
    sqlx::query("PRAGMA secure_delete = ON")
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    let mut changed = 0;
    for row in &found {
        let id: String = row.try_get("id").map_err(map_err)?;
        let stored = rows::stored_webhook(row)?;
        let Some(resealed) = stored.resealed(&id, sealer)? else {
            continue;
        };
        // Only if unchanged since read: a webhook updated meanwhile is already in the new form.
        let done = sqlx::query(
            "UPDATE webhooks SET spec = ?, secret = ?, previous_secrets = ? \
             WHERE id = ? AND spec = ? AND secret = ? AND previous_secrets = ?",
        )
        .bind(&resealed.spec)
        .bind(&resealed.secret)
        .bind(&resealed.previous_secrets)
        .bind(&id)
        .bind(&stored.spec)
        .bind(&stored.secret)
        .bind(&stored.previous_secrets)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        changed += done.rows_affected();
    }
    sqlx::query("PRAGMA secure_delete = OFF")
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    if changed > 0 {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    Ok(changed)
}
