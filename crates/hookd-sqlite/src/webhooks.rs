//! Webhook rows. The spec is stored as its canonical JSON.

use hookd_core::seal::Sealer;
use hookd_core::store::{StoreError, StoredWebhook};
use hookd_core::webhook::Webhook;
use rusqlite::{Connection, params};

use crate::db::DbResult;
use crate::rows::{self, WEBHOOK_COLUMNS, json_list};

/// Inserts unless the workspace has `max` webhooks: one statement, on the one writer.
pub(crate) fn insert(conn: &Connection, wh: &Webhook, sealer: &Sealer, max: usize) -> DbResult<bool> {
    let stored = StoredWebhook::seal(wh, sealer)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO webhooks (id, workspace_id, spec, enabled, secret, previous_secrets, disabled_reason, created_at, updated_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE (SELECT count(*) FROM webhooks WHERE workspace_id = ?2) < ?10",
        )?
        .execute(params![
            wh.id.as_str(),
            wh.workspace_id,
            stored.spec,
            wh.spec.enabled,
            stored.secret,
            stored.previous_secrets,
            wh.disabled_reason,
            wh.created_at,
            wh.updated_at,
            max as i64
        ])?;
    Ok(inserted == 1)
}

pub(crate) fn update(conn: &Connection, wh: &Webhook, sealer: &Sealer) -> DbResult<()> {
    let stored = StoredWebhook::seal(wh, sealer)?;
    let changed = conn
        .prepare_cached(
            "UPDATE webhooks SET spec = ?, enabled = ?, secret = ?, previous_secrets = ?, disabled_reason = ?, updated_at = ? \
             WHERE id = ? AND workspace_id = ?",
        )?
        .execute(params![
            stored.spec,
            wh.spec.enabled,
            stored.secret,
            stored.previous_secrets,
            wh.disabled_reason,
            wh.updated_at,
            wh.id.as_str(),
            wh.workspace_id
        ])?;
    if changed == 0 {
        return Err(StoreError::NotFound.into());
    }
    Ok(())
}

pub(crate) fn delete(conn: &mut Connection, workspace_id: &str, id: &str) -> DbResult<()> {
    let tx = conn.transaction()?;
    let deleted = tx.execute(
        "DELETE FROM webhooks WHERE id = ? AND workspace_id = ?",
        [id, workspace_id],
    )?;
    if deleted == 0 {
        return Err(StoreError::NotFound.into());
    }
    // Its deliveries no longer reference their records (each record once per webhook).
    tx.execute(
        "UPDATE records SET refs = refs - 1 WHERE id IN \
         (SELECT j.value FROM deliveries d, json_each(d.record_ids) j WHERE d.webhook_id = ?)",
        [id],
    )?;
    tx.execute(
        "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE webhook_id = ?)",
        [id],
    )?;
    tx.execute("DELETE FROM deliveries WHERE webhook_id = ?", [id])?;
    tx.commit()?;
    Ok(())
}

pub(crate) fn get(conn: &Connection, workspace_id: &str, id: &str, sealer: &Sealer) -> DbResult<Option<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ? AND workspace_id = ?");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut found = stmt.query([id, workspace_id])?;
    found.next()?.map(|row| rows::webhook(row, sealer)).transpose()
}

pub(crate) fn list(conn: &Connection, workspace_id: &str, sealer: &Sealer) -> DbResult<Vec<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE workspace_id = ? ORDER BY id");
    collect(conn, &sql, [workspace_id], sealer)
}

pub(crate) fn enabled_in(conn: &Connection, workspace_ids: &[String], sealer: &Sealer) -> DbResult<Vec<Webhook>> {
    let sql = format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE enabled = 1 AND workspace_id IN (SELECT value FROM json_each(?)) ORDER BY id"
    );
    collect(conn, &sql, [json_list(workspace_ids)], sealer)
}

/// One webhook by id (any workspace), for claimed deliveries.
pub(crate) fn by_id(conn: &Connection, id: &str, sealer: &Sealer) -> DbResult<Option<Webhook>> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut found = stmt.query([id])?;
    found.next()?.map(|row| rows::webhook(row, sealer)).transpose()
}

fn collect(conn: &Connection, sql: &str, params: impl rusqlite::Params, sealer: &Sealer) -> DbResult<Vec<Webhook>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut found = stmt.query(params)?;
    let mut webhooks = Vec::new();
    while let Some(row) = found.next()? {
        webhooks.push(rows::webhook(row, sealer)?);
    }
    Ok(webhooks)
}

/// Brings every webhook's sealed columns into the form `sealer` writes (see
/// [`StoredWebhook::resealed`]); returns how many webhooks changed. With `secure_delete` on
/// and a checkpoint after, the plaintext a row held before is overwritten in the file too.
pub(crate) fn reseal(conn: &Connection, sealer: &Sealer) -> DbResult<u64> {
    let found: Vec<(String, StoredWebhook)> = {
        let mut stmt = conn.prepare("SELECT id, spec, secret, previous_secrets FROM webhooks")?;
        let mut rows = stmt.query([])?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            found.push((row.get("id")?, rows::stored_webhook(row)?));
        }
        found
    };
    conn.pragma_update(None, "secure_delete", "ON")?;
    let mut changed = 0;
    for (id, stored) in &found {
        let Some(resealed) = stored.resealed(id, sealer)? else {
            continue;
        };
        // Only if unchanged since read: a webhook updated meanwhile is already in the new form.
        changed += conn.execute(
            "UPDATE webhooks SET spec = ?, secret = ?, previous_secrets = ? \
             WHERE id = ? AND spec = ? AND secret = ? AND previous_secrets = ?",
            params![
                resealed.spec,
                resealed.secret,
                resealed.previous_secrets,
                id,
                stored.spec,
                stored.secret,
                stored.previous_secrets
            ],
        )? as u64;
    }
    conn.pragma_update(None, "secure_delete", "OFF")?;
    if changed > 0 {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(changed)
}
