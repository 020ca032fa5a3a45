//! Workspaces and API keys.

use hookd_core::clock::Millis;
use hookd_core::record::Kind;
use hookd_core::store::{ApiKey, RECENT_WINDOW, Workspace, WorkspaceDeletion};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::db::DbResult;

pub(crate) fn create_workspace(conn: &Connection, ws: &Workspace) -> DbResult<()> {
    conn.prepare_cached("INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?)")?
        .execute(params![ws.id, ws.name, ws.created_at])?;
    Ok(())
}

fn workspace(row: &Row<'_>) -> rusqlite::Result<Workspace> {
    Ok(Workspace {
        id: row.get("id")?,
        name: row.get("name")?,
        created_at: row.get("created_at")?,
        offline_after: row.get("offline_after")?,
    })
}

pub(crate) fn list_workspaces(conn: &Connection) -> DbResult<Vec<Workspace>> {
    let mut stmt = conn.prepare_cached("SELECT id, name, created_at, offline_after FROM workspaces ORDER BY id")?;
    let found = stmt.query_map([], workspace)?.collect::<rusqlite::Result<_>>()?;
    Ok(found)
}

pub(crate) fn get_workspace(conn: &Connection, id: &str) -> DbResult<Option<Workspace>> {
    let mut stmt = conn.prepare_cached("SELECT id, name, created_at, offline_after FROM workspaces WHERE id = ?")?;
    Ok(stmt.query_row([id], workspace).optional()?)
}

pub(crate) fn rename_workspace(conn: &Connection, id: &str, name: &str) -> DbResult<Option<Workspace>> {
    let mut stmt = conn
        .prepare_cached("UPDATE workspaces SET name = ? WHERE id = ? RETURNING id, name, created_at, offline_after")?;
    Ok(stmt.query_row([name, id], workspace).optional()?)
}

pub(crate) fn set_offline_after(
    conn: &Connection,
    id: &str,
    offline_after: Option<Millis>,
) -> DbResult<Option<Workspace>> {
    let mut stmt = conn.prepare_cached(
        "UPDATE workspaces SET offline_after = ? WHERE id = ? RETURNING id, name, created_at, offline_after",
    )?;
    Ok(stmt.query_row(params![offline_after, id], workspace).optional()?)
}

/// Everything of the workspace, children first, in one transaction.
pub(crate) fn delete_workspace(conn: &mut Connection, id: &str) -> DbResult<Option<WorkspaceDeletion>> {
    let tx = conn.transaction()?;
    if get_workspace(&tx, id)?.is_none() {
        return Ok(None);
    }
    let delete = |sql: &str| -> DbResult<u64> { Ok(tx.prepare_cached(sql)?.execute([id])? as u64) };
    delete("DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE workspace_id = ?)")?;
    let deletion = WorkspaceDeletion {
        deliveries: delete("DELETE FROM deliveries WHERE workspace_id = ?")?,
        records: delete("DELETE FROM records WHERE workspace_id = ?")?,
        webhooks: delete("DELETE FROM webhooks WHERE workspace_id = ?")?,
        keys: delete("DELETE FROM api_keys WHERE workspace_id = ?")?,
    };
    delete("DELETE FROM idempotency_keys WHERE workspace_id = ?")?;
    delete("DELETE FROM source_messages WHERE source_id IN (SELECT id FROM sources WHERE workspace_id = ?)")?;
    delete("DELETE FROM source_requests WHERE workspace_id = ?")?;
    delete("DELETE FROM sources WHERE workspace_id = ?")?;
    delete("DELETE FROM devices WHERE workspace_id = ?")?;
    delete("DELETE FROM attempt_minutes WHERE workspace_id = ?")?;
    delete("DELETE FROM dashboard_passes WHERE workspace_id = ?")?;
    delete("DELETE FROM workspaces WHERE id = ?")?;
    tx.commit()?;
    Ok(Some(deletion))
}

pub(crate) fn create_api_key(conn: &Connection, key: &ApiKey) -> DbResult<()> {
    conn.prepare_cached(
        "INSERT INTO api_keys (id, workspace_id, key_hash, prefix, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        key.id,
        key.workspace_id,
        key.key_hash,
        key.prefix,
        key.created_at,
        key.last_used_at
    ])?;
    Ok(())
}

const KEY_COLUMNS: &str = "id, workspace_id, key_hash, prefix, created_at, last_used_at";

fn api_key(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get("id")?,
        workspace_id: row.get("workspace_id")?,
        key_hash: row.get("key_hash")?,
        prefix: row.get("prefix")?,
        created_at: row.get("created_at")?,
        last_used_at: row.get("last_used_at")?,
    })
}

pub(crate) fn find_api_key(conn: &Connection, key_hash: &str) -> DbResult<Option<ApiKey>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?"))?;
    Ok(stmt.query_row([key_hash], api_key).optional()?)
}

pub(crate) fn list_api_keys(conn: &Connection, workspace_id: &str) -> DbResult<Vec<ApiKey>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = ? ORDER BY id"
    ))?;
    let found = stmt
        .query_map([workspace_id], api_key)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(found)
}

pub(crate) fn revoke_api_key(conn: &Connection, workspace_id: &str, id: &str) -> DbResult<bool> {
    let deleted = conn
        .prepare_cached("DELETE FROM api_keys WHERE id = ? AND workspace_id = ?")?
        .execute([id, workspace_id])?;
    Ok(deleted == 1)
}

pub(crate) fn touch_api_key(conn: &Connection, id: &str, at: Millis) -> DbResult<()> {
    conn.prepare_cached("UPDATE api_keys SET last_used_at = ? WHERE id = ?")?
        .execute(params![at, id])?;
    Ok(())
}

pub(crate) fn recent_records(
    conn: &Connection,
    workspace_id: &str,
    kind: Kind,
    limit: usize,
) -> DbResult<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, body FROM (SELECT id, workspace_id, kind, body FROM records ORDER BY id DESC LIMIT ?)
         WHERE workspace_id = ? AND kind = ? ORDER BY id DESC LIMIT ?",
    )?;
    let rows = stmt.query_map(
        params![RECENT_WINDOW as i64, workspace_id, kind.as_str(), limit as i64],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn get_records(conn: &Connection, workspace_id: &str, ids: &[String]) -> DbResult<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached("SELECT body FROM records WHERE id = ? AND workspace_id = ?")?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(body) = stmt
            .query_row([id, workspace_id], |row| row.get::<_, String>(0))
            .optional()?
        {
            found.push((id.clone(), body));
        }
    }
    Ok(found)
}
