//! Webhook rows. The spec is stored as its canonical JSON text.

use hookd_core::seal::Sealer;
use hookd_core::store::{StoreError, StoreResult, StoredWebhook};
use hookd_core::webhook::Webhook;
use sqlx::{PgPool, Row};

use crate::db::map_err;
use crate::rows::{self, WEBHOOK_COLUMNS};

/// Inserts unless the workspace has `max` webhooks. The workspace row is locked first, so
/// concurrent inserts into one workspace count one after another.
pub(crate) async fn insert(pool: &PgPool, wh: &Webhook, sealer: &Sealer, max: usize) -> StoreResult<bool> {
    let stored = StoredWebhook::seal(wh, sealer)?;
    let mut tx = pool.begin().await.map_err(map_err)?;
    sqlx::query("SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE")
        .bind(&wh.workspace_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    let done = sqlx::query(
        "INSERT INTO webhooks (id, workspace_id, spec, enabled, secret, previous_secrets, disabled_reason, created_at, updated_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 WHERE (SELECT count(*) FROM webhooks WHERE workspace_id = $2) < $10",
    )
    .bind(wh.id.as_str())
    .bind(&wh.workspace_id)
    .bind(&stored.spec)
    .bind(wh.spec.enabled)
    .bind(&stored.secret)
    .bind(&stored.previous_secrets)
    .bind(&wh.disabled_reason)
    .bind(wh.created_at)
    .bind(wh.updated_at)
    .bind(max as i64)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    tx.commit().await.map_err(map_err)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn update(pool: &PgPool, wh: &Webhook, sealer: &Sealer) -> StoreResult<()> {
    let stored = StoredWebhook::seal(wh, sealer)?;
    let done = sqlx::query(
        "UPDATE webhooks SET spec = $1, enabled = $2, secret = $3, previous_secrets = $4, disabled_reason = $5, updated_at = $6 \
         WHERE id = $7 AND workspace_id = $8",
    )
    .bind(&stored.spec)
    .bind(wh.spec.enabled)
    .bind(&stored.secret)
    .bind(&stored.previous_secrets)
    .bind(&wh.disabled_reason)
    .bind(wh.updated_at)
    .bind(wh.id.as_str())
    .bind(&wh.workspace_id)
    .execute(pool)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn delete(pool: &PgPool, workspace_id: &str, id: &str) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND workspace_id = $2")
        .bind(id)
        .bind(workspace_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    // Its deliveries no longer reference their records (each record once per webhook).
    sqlx::query("UPDATE records SET refs = refs - 1 WHERE id IN (SELECT unnest(record_ids) FROM deliveries WHERE webhook_id = $1)")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    sqlx::query("DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE webhook_id = $1)")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    sqlx::query("DELETE FROM deliveries WHERE webhook_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    tx.commit().await.map_err(map_err)
}

pub(crate) async fn get(pool: &PgPool, workspace_id: &str, id: &str, sealer: &Sealer) -> StoreResult<Option<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND workspace_id = $2");
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.as_ref().map(|row| rows::webhook(row, sealer)).transpose()
}

pub(crate) async fn list(pool: &PgPool, workspace_id: &str, sealer: &Sealer) -> StoreResult<Vec<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE workspace_id = $1 ORDER BY id");
    let found = sqlx::query(&sql)
        .bind(workspace_id)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    found.iter().map(|row| rows::webhook(row, sealer)).collect()
}

pub(crate) async fn enabled_in(pool: &PgPool, workspace_ids: &[String], sealer: &Sealer) -> StoreResult<Vec<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE enabled AND workspace_id = ANY($1) ORDER BY id");
    let found = sqlx::query(&sql)
        .bind(workspace_ids)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    found.iter().map(|row| rows::webhook(row, sealer)).collect()
}

/// Webhooks by id (any workspace), for claimed deliveries.
pub(crate) async fn by_ids(conn: &mut sqlx::PgConnection, ids: &[&str], sealer: &Sealer) -> StoreResult<Vec<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ANY($1)");
    let found = sqlx::query(&sql).bind(ids).fetch_all(conn).await.map_err(map_err)?;
    found.iter().map(|row| rows::webhook(row, sealer)).collect()
}

/// Brings every webhook's sealed columns into the form `sealer` writes (see
/// [`StoredWebhook::resealed`]); returns how many webhooks changed.
pub(crate) async fn reseal(pool: &PgPool, sealer: &Sealer) -> StoreResult<u64> {
    let found = sqlx::query("SELECT id, spec, secret, previous_secrets FROM webhooks")
        .fetch_all(pool)
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
            "UPDATE webhooks SET spec = $1, secret = $2, previous_secrets = $3 \
             WHERE id = $4 AND spec = $5 AND secret = $6 AND previous_secrets = $7",
        )
        .bind(&resealed.spec)
        .bind(&resealed.secret)
        .bind(&resealed.previous_secrets)
        .bind(&id)
        .bind(&stored.spec)
        .bind(&stored.secret)
        .bind(&stored.previous_secrets)
        .execute(pool)
        .await
        .map_err(map_err)?;
        changed += done.rows_affected();
    }
    Ok(changed)
}
