//! Sources, their request log, and the message ids remembered against replays.

use hookd_core::clock::Millis;
use hookd_core::seal::Sealer;
use hookd_core::source::Source;
use hookd_core::store::{
    RequestOutcome, SourceRequest, SourceRequestQuery, StoreError, open_source_spec, resealed_source_spec,
    seal_source_spec,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::db::DbResult;
use crate::rows::json_list;

const COLUMNS: &str = "id, workspace_id, spec, created_at, updated_at";

fn source(row: &Row<'_>, sealer: &Sealer) -> DbResult<Source> {
    let id: String = row.get("id")?;
    let stored: String = row.get("spec")?;
    Ok(Source {
        spec: open_source_spec(&id, &stored, sealer)?,
        id,
        workspace_id: row.get("workspace_id")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

pub(crate) fn insert(conn: &Connection, s: &Source, sealer: &Sealer) -> DbResult<()> {
    conn.prepare_cached("INSERT INTO sources (id, workspace_id, spec, created_at, updated_at) VALUES (?, ?, ?, ?, ?)")?
        .execute(params![
            s.id,
            s.workspace_id,
            seal_source_spec(&s.id, &s.spec, sealer),
            s.created_at,
            s.updated_at
        ])?;
    Ok(())
}

pub(crate) fn update(conn: &Connection, s: &Source, sealer: &Sealer) -> DbResult<()> {
    let changed = conn
        .prepare_cached("UPDATE sources SET spec = ?, updated_at = ? WHERE id = ? AND workspace_id = ?")?
        .execute(params![
            seal_source_spec(&s.id, &s.spec, sealer),
            s.updated_at,
            s.id,
            s.workspace_id
        ])?;
    if changed == 0 {
        return Err(StoreError::NotFound.into());
    }
    Ok(())
}

pub(crate) fn delete(conn: &mut Connection, workspace_id: &str, id: &str) -> DbResult<()> {
    let tx = conn.transaction()?;
    let changed = tx
        .prepare_cached("DELETE FROM sources WHERE id = ? AND workspace_id = ?")?
        .execute([id, workspace_id])?;
    if changed == 0 {
        return Err(StoreError::NotFound.into());
    }
    tx.prepare_cached("DELETE FROM source_requests WHERE source_id = ?")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM source_messages WHERE source_id = ?")?
        .execute([id])?;
    tx.commit()?;
    Ok(())
}

pub(crate) fn get(
    conn: &Connection,
    workspace_id: Option<&str>,
    id: &str,
    sealer: &Sealer,
) -> DbResult<Option<Source>> {
    let sql = format!("SELECT {COLUMNS} FROM sources WHERE id = ?1 AND (?2 IS NULL OR workspace_id = ?2)");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![id, workspace_id])?;
    match rows.next()? {
        Some(row) => Ok(Some(source(row, sealer)?)),
        None => Ok(None),
    }
}

pub(crate) fn list(conn: &Connection, workspace_id: &str, sealer: &Sealer) -> DbResult<Vec<Source>> {
    let sql = format!("SELECT {COLUMNS} FROM sources WHERE workspace_id = ? ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([workspace_id])?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        found.push(source(row, sealer)?);
    }
    Ok(found)
}

const REQUEST_COLUMNS: &str = "id, workspace_id, source_id, received_at, method, headers, query, body, body_truncated, \
     outcome, reason, explanation, record_ids";

fn request(row: &Row<'_>) -> DbResult<SourceRequest> {
    let outcome: String = row.get("outcome")?;
    let record_ids: String = row.get("record_ids")?;
    Ok(SourceRequest {
        id: row.get("id")?,
        workspace_id: row.get("workspace_id")?,
        source_id: row.get("source_id")?,
        received_at: row.get("received_at")?,
        method: row.get("method")?,
        headers: row.get("headers")?,
        query: row.get("query")?,
        body: row.get("body")?,
        body_truncated: row.get("body_truncated")?,
        outcome: RequestOutcome::from_stored(&outcome)?,
        reason: row.get("reason")?,
        explanation: row.get("explanation")?,
        record_ids: serde_json::from_str(&record_ids)?,
    })
}

pub(crate) fn log_request(conn: &Connection, r: &SourceRequest) -> DbResult<()> {
    let sql = format!(
        "INSERT OR REPLACE INTO source_requests ({REQUEST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    conn.prepare_cached(&sql)?.execute(params![
        r.id,
        r.workspace_id,
        r.source_id,
        r.received_at,
        r.method,
        r.headers,
        r.query,
        r.body,
        r.body_truncated,
        r.outcome.as_str(),
        r.reason,
        r.explanation,
        json_list(&r.record_ids)
    ])?;
    Ok(())
}

pub(crate) fn list_requests(
    conn: &Connection,
    workspace_id: &str,
    source_id: &str,
    q: &SourceRequestQuery,
) -> DbResult<Vec<SourceRequest>> {
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM source_requests WHERE source_id = ?1 AND workspace_id = ?2 \
         AND (?3 IS NULL OR outcome = ?3) AND (?4 IS NULL OR id < ?4) ORDER BY id DESC LIMIT ?5"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![
        source_id,
        workspace_id,
        q.outcome.map(RequestOutcome::as_str),
        q.after,
        q.limit as i64
    ])?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        found.push(request(row)?);
    }
    Ok(found)
}

pub(crate) fn get_request(
    conn: &Connection,
    workspace_id: &str,
    source_id: &str,
    id: &str,
) -> DbResult<Option<SourceRequest>> {
    let sql =
        format!("SELECT {REQUEST_COLUMNS} FROM source_requests WHERE id = ? AND source_id = ? AND workspace_id = ?");
    let mut stmt = conn.prepare_cached(&sql)?;
    let found = stmt
        .query_row([id, source_id, workspace_id], |row| Ok(request(row)))
        .optional()?;
    found.transpose()
}

pub(crate) fn remember(
    conn: &Connection,
    source_id: &str,
    message_id: &str,
    now: Millis,
    until: Millis,
) -> DbResult<bool> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO source_messages (source_id, message_id, until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (source_id, message_id) DO UPDATE SET until = excluded.until WHERE source_messages.until <= ?4",
        )?
        .execute(params![source_id, message_id, until, now])?;
    Ok(changed == 1)
}

/// Every source's spec in the form `sealer` writes; how many changed.
pub(crate) fn reseal(conn: &Connection, sealer: &Sealer) -> DbResult<u64> {
    let found: Vec<(String, String)> = conn
        .prepare("SELECT id, spec FROM sources")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    let mut changed = 0;
    for (id, stored) in &found {
        if let Some(resealed) = resealed_source_spec(id, stored, sealer)? {
            // Only if unchanged since read: a source updated meanwhile is already in the new form.
            changed += conn.execute(
                "UPDATE sources SET spec = ? WHERE id = ? AND spec = ?",
                params![resealed, id, stored],
            )? as u64;
        }
    }
    Ok(changed)
}
