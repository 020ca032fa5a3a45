//! Workspaces and API keys.

use hookd_core::store::{ApiKey, Workspace};
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
    })
}

pub(crate) fn list_workspaces(conn: &Connection) -> DbResult<Vec<Workspace>> {
    let mut stmt = conn.prepare_cached("SELECT id, name, created_at FROM workspaces ORDER BY id")?;
    let found = stmt.query_map([], workspace)?.collect::<rusqlite::Result<_>>()?;
    Ok(found)
}

pub(crate) fn get_workspace(conn: &Connection, id: &str) -> DbResult<Option<Workspace>> {
    let mut stmt = conn.prepare_cached("SELECT id, name, created_at FROM workspaces WHERE id = ?")?;
    Ok(stmt.query_row([id], workspace).optional()?)
}

pub(crate) fn create_api_key(conn: &Connection, key: &ApiKey) -> DbResult<()> {
    conn.prepare_cached("INSERT INTO api_keys (id, workspace_id, key_hash, created_at) VALUES (?, ?, ?, ?)")?
        .execute(params![key.id, key.workspace_id, key.key_hash, key.created_at])?;
    Ok(())
}

pub(crate) fn find_api_key(conn: &Connection, key_hash: &str) -> DbResult<Option<ApiKey>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, workspace_id, key_hash, created_at FROM api_keys WHERE key_hash = ?")?;
    let found = stmt
        .query_row([key_hash], |row| {
            Ok(ApiKey {
                id: row.get("id")?,
                workspace_id: row.get("workspace_id")?,
                key_hash: row.get("key_hash")?,
                created_at: row.get("created_at")?,
            })
        })
        .optional()?;
    Ok(found)
}
