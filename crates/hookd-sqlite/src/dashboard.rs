//! What the dashboard keeps: attempt tallies per webhook and minute, sign-ins and portal links.

use hookd_core::clock::Millis;
use hookd_core::store::{Access, LATENCY_BUCKETS, MinuteTally, Pass, StoreError, Tally, TallyQuery};
use rusqlite::{Connection, Row, Transaction, params};

use crate::db::DbResult;

/// `sum(l0), …, sum(l13)`.
fn latency_sums() -> String {
    (0..LATENCY_BUCKETS)
        .map(|b| format!("sum(l{b})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds a batch's tallies to their minutes, in the transaction that records the attempts.
pub(crate) fn add_tallies(tx: &Transaction<'_>, tallies: &[MinuteTally]) -> DbResult<()> {
    let columns: Vec<String> = (0..LATENCY_BUCKETS).map(|b| format!("l{b}")).collect();
    let sql = format!(
        "INSERT INTO attempt_minutes (webhook_id, workspace_id, minute, delivered, retrying, failed, {}) \
         SELECT id, workspace_id, ?2, ?3, ?4, ?5, {} FROM webhooks WHERE id = ?1 \
         ON CONFLICT (webhook_id, minute) DO UPDATE SET delivered = delivered + excluded.delivered, \
           retrying = retrying + excluded.retrying, failed = failed + excluded.failed, {}",
        columns.join(", "),
        (0..LATENCY_BUCKETS)
            .map(|b| format!("?{}", b + 6))
            .collect::<Vec<_>>()
            .join(", "),
        columns
            .iter()
            .map(|c| format!("{c} = {c} + excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    for t in tallies {
        let mut values: Vec<i64> = vec![
            t.minute,
            t.tally.delivered as i64,
            t.tally.retrying as i64,
            t.tally.failed as i64,
        ];
        values.extend(t.tally.latency.iter().map(|n| *n as i64));
        let mut bound: Vec<&dyn rusqlite::ToSql> = vec![&t.webhook_id];
        bound.extend(values.iter().map(|v| v as &dyn rusqlite::ToSql));
        stmt.execute(bound.as_slice())?;
    }
    Ok(())
}

/// A tally from `delivered, retrying, failed, l0..l13` starting at column `first`.
fn tally(row: &Row<'_>, first: usize) -> rusqlite::Result<Tally> {
    let mut tally = Tally {
        delivered: row.get::<_, i64>(first)? as u64,
        retrying: row.get::<_, i64>(first + 1)? as u64,
        failed: row.get::<_, i64>(first + 2)? as u64,
        ..Tally::default()
    };
    for (bucket, count) in tally.latency.iter_mut().enumerate() {
        *count = row.get::<_, i64>(first + 3 + bucket)? as u64;
    }
    Ok(tally)
}

pub(crate) fn by_minute(conn: &Connection, q: &TallyQuery) -> DbResult<Vec<(Millis, Tally)>> {
    let sql = format!(
        "SELECT minute, sum(delivered), sum(retrying), sum(failed), {} FROM attempt_minutes \
         WHERE workspace_id = ?1 AND minute >= ?2 AND (?3 IS NULL OR webhook_id = ?3) GROUP BY minute ORDER BY minute",
        latency_sums()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let found = stmt.query_map(params![q.workspace_id, q.since, q.webhook_id], |row| {
        Ok((row.get(0)?, tally(row, 1)?))
    })?;
    Ok(found.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn by_webhook(conn: &Connection, workspace_id: &str, since: Millis) -> DbResult<Vec<(String, Tally)>> {
    let sql = format!(
        "SELECT webhook_id, sum(delivered), sum(retrying), sum(failed), {} FROM attempt_minutes \
         WHERE workspace_id = ?1 AND minute >= ?2 GROUP BY webhook_id",
        latency_sums()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let found = stmt.query_map(params![workspace_id, since], |row| Ok((row.get(0)?, tally(row, 1)?)))?;
    Ok(found.collect::<rusqlite::Result<_>>()?)
}

const PASS_COLUMNS: &str = "id, link, granted_by, workspace_id, access, csrf, created_at, expires_at";

fn pass(row: &Row<'_>) -> DbResult<Pass> {
    let access: String = row.get(4)?;
    Ok(Pass {
        id: row.get(0)?,
        link: row.get(1)?,
        granted_by: row.get(2)?,
        workspace_id: row.get(3)?,
        access: Access::parse(&access).ok_or_else(|| StoreError::corrupt("dashboard access", &access))?,
        csrf: row.get(5)?,
        created_at: row.get(6)?,
        expires_at: row.get(7)?,
    })
}

pub(crate) fn insert_pass(conn: &mut Connection, p: &Pass) -> DbResult<()> {
    let tx = conn.transaction()?;
    tx.prepare_cached("DELETE FROM dashboard_passes WHERE expires_at <= ?")?
        .execute([p.created_at])?;
    tx.prepare_cached(&format!(
        "INSERT INTO dashboard_passes ({PASS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    ))?
    .execute(params![
        p.id,
        p.link,
        p.granted_by,
        p.workspace_id,
        p.access.as_str(),
        p.csrf,
        p.created_at,
        p.expires_at
    ])?;
    tx.commit()?;
    Ok(())
}

pub(crate) fn get_pass(conn: &Connection, id: &str, now: Millis) -> DbResult<Option<Pass>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PASS_COLUMNS} FROM dashboard_passes WHERE id = ? AND expires_at > ?"
    ))?;
    let mut found = stmt.query(params![id, now])?;
    found.next()?.map(pass).transpose()
}

pub(crate) fn delete_pass(conn: &mut Connection, id: &str) -> DbResult<bool> {
    let tx = conn.transaction()?;
    let deleted = tx
        .prepare_cached("DELETE FROM dashboard_passes WHERE id = ?1 OR granted_by = ?1")?
        .execute([id])?;
    tx.commit()?;
    Ok(deleted > 0)
}

pub(crate) fn list_links(conn: &Connection, workspace_id: &str, now: Millis) -> DbResult<Vec<Pass>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PASS_COLUMNS} FROM dashboard_passes WHERE link AND workspace_id = ? AND expires_at > ? ORDER BY created_at DESC"
    ))?;
    let mut found = stmt.query(params![workspace_id, now])?;
    let mut links = Vec::new();
    while let Some(row) = found.next()? {
        links.push(pass(row)?);
    }
    Ok(links)
}
