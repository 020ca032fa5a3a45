//! The delivery log: listing, reading with attempts, retry and replay.

use hookd_core::clock::Millis;
use hookd_core::store::{Attempt, Delivery, DeliveryQuery, ReplayQuery};
use rusqlite::{Connection, params};

use crate::db::DbResult;
use crate::rows::{self, DELIVERY_COLUMNS, json_list};

pub(crate) fn list(conn: &Connection, workspace_id: &str, q: &DeliveryQuery) -> DbResult<Vec<Delivery>> {
    let (filters, params) = q.sql_filters(|n| format!("?{n}"));
    let limit = params.len() + 2;
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE workspace_id = ?1{filters} ORDER BY id DESC LIMIT ?{limit}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut bound: Vec<&dyn rusqlite::ToSql> = vec![&workspace_id];
    bound.extend(params.iter().map(|p| p as &dyn rusqlite::ToSql));
    let limit = q.limit as i64;
    bound.push(&limit);
    let mut found = stmt.query(bound.as_slice())?;
    let mut deliveries = Vec::new();
    while let Some(row) = found.next()? {
        deliveries.push(rows::delivery(row)?);
    }
    Ok(deliveries)
}

pub(crate) fn get(conn: &Connection, workspace_id: &str, id: &str) -> DbResult<Option<(Delivery, Vec<Attempt>)>> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ? AND workspace_id = ?");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut found = stmt.query([id, workspace_id])?;
    let Some(row) = found.next()? else {
        return Ok(None);
    };
    let delivery = rows::delivery(row)?;
    let mut stmt = conn.prepare_cached("SELECT * FROM attempts WHERE delivery_id = ? ORDER BY id")?;
    let mut found = stmt.query([id])?;
    let mut attempts = Vec::new();
    while let Some(row) = found.next()? {
        attempts.push(rows::attempt(row)?);
    }
    Ok(Some((delivery, attempts)))
}

pub(crate) fn retry(
    conn: &Connection,
    workspace_id: &str,
    id: &str,
    now: Millis,
    note: &str,
) -> DbResult<Option<Delivery>> {
    let sql = format!(
        "UPDATE deliveries SET state = 'pending', failures = 0, next_attempt_at = ?1, locked_until = 0, lease_token = NULL, updated_at = ?1, \
           last_explanation = ?4 \
         WHERE id = ?2 AND workspace_id = ?3 AND NOT (state = 'pending' AND locked_until > ?1) RETURNING {DELIVERY_COLUMNS}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut found = stmt.query(params![now, id, workspace_id, note])?;
    match found.next()? {
        Some(row) => rows::delivery(row).map(Some),
        // In flight right now: leave it to the attempt under way, report it as it is.
        None => {
            drop(found);
            Ok(get(conn, workspace_id, id)?.map(|(d, _)| d))
        }
    }
}

/// The deliveries a replay takes (`?1` now, `?2` the workspace, `?3` the webhook, `?4`..`?5`
/// the creation range, `?6` the states): not one with an attempt in flight.
const REPLAYABLE: &str = "workspace_id = ?2 AND webhook_id = ?3 AND created_at >= ?4 AND created_at < ?5 \
     AND state IN (SELECT value FROM json_each(?6)) AND NOT (state = 'pending' AND locked_until > ?1)";

pub(crate) fn replay(conn: &Connection, workspace_id: &str, q: &ReplayQuery, now: Millis) -> DbResult<u64> {
    let states: Vec<&str> = q.states.iter().map(|s| s.as_str()).collect();
    if q.dry_run {
        let count: i64 = conn
            .prepare_cached(&format!("SELECT count(*) FROM deliveries WHERE {REPLAYABLE}"))?
            .query_row(
                params![
                    now,
                    workspace_id,
                    q.webhook_id.as_str(),
                    q.since,
                    q.until,
                    json_list(&states)
                ],
                |row| row.get(0),
            )?;
        return Ok(count as u64);
    }
    let changed = conn
        .prepare_cached(&format!(
            "UPDATE deliveries SET state = 'pending', failures = 0, next_attempt_at = ?1, updated_at = ?1, \
                 last_explanation = ?7 WHERE {REPLAYABLE}"
        ))?
        .execute(params![
            now,
            workspace_id,
            q.webhook_id.as_str(),
            q.since,
            q.until,
            json_list(&states),
            q.note
        ])?;
    Ok(changed as u64)
}
