//! Presence: devices heard from (written with the records), listed, and swept for changes.

use std::collections::HashMap;

use hookd_core::clock::Millis;
use hookd_core::store::{Device, DeviceQuery, DeviceSeen, DeviceState, Heard, PresenceChange, StoreError};
use rusqlite::{Connection, Row, Transaction, params};

use crate::db::DbResult;

const DEVICE_COLUMNS: &str = "workspace_id, device_id, fleet_id, state, since, last_seen, heard";

/// Notes the devices of a commit, each once (its last word in the batch): a new device is
/// online from now; a known one keeps its state (a sweep changes it) and its newest time.
pub(crate) fn seen(tx: &Transaction<'_>, heard: &[(&str, &DeviceSeen)]) -> DbResult<()> {
    let mut last: HashMap<(&str, &str), &DeviceSeen> = HashMap::new();
    for &(workspace, device) in heard {
        last.insert((workspace, device.device_id.as_str()), device);
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO devices (workspace_id, device_id, fleet_id, state, since, last_seen, heard) \
         VALUES (?1, ?2, ?3, 'online', ?4, ?4, ?5) \
         ON CONFLICT (workspace_id, device_id) DO UPDATE SET \
           fleet_id = coalesce(excluded.fleet_id, fleet_id), \
           heard = CASE WHEN excluded.last_seen >= last_seen THEN excluded.heard ELSE heard END, \
           last_seen = max(last_seen, excluded.last_seen)",
    )?;
    for ((workspace, device_id), device) in last {
        upsert.execute(params![
            workspace,
            device_id,
            device.fleet_id,
            device.at,
            device.heard.as_str()
        ])?;
    }
    Ok(())
}

fn device(row: &Row<'_>) -> DbResult<Device> {
    let state: String = row.get("state")?;
    let heard: String = row.get("heard")?;
    Ok(Device {
        workspace_id: row.get("workspace_id")?,
        device_id: row.get("device_id")?,
        fleet_id: row.get("fleet_id")?,
        state: DeviceState::parse(&state).ok_or_else(|| StoreError::corrupt("device state", &state))?,
        last_seen: row.get("last_seen")?,
        since: row.get("since")?,
        heard: Heard::parse(&heard).ok_or_else(|| StoreError::corrupt("device heard", &heard))?,
    })
}

pub(crate) fn list(conn: &Connection, workspace: &str, query: &DeviceQuery) -> DbResult<Vec<Device>> {
    let sql = format!(
        "SELECT {DEVICE_COLUMNS} FROM devices WHERE workspace_id = ?1 AND (?2 IS NULL OR state = ?2) \
           AND (?3 IS NULL OR fleet_id = ?3) AND (?4 IS NULL OR device_id > ?4) ORDER BY device_id LIMIT ?5"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![
        workspace,
        query.state.map(DeviceState::as_str),
        query.fleet_id,
        query.after,
        query.limit as i64
    ])?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        found.push(device(row)?);
    }
    Ok(found)
}

pub(crate) fn claim_sweep(conn: &Connection, holder: &str, now: Millis, until: Millis) -> DbResult<bool> {
    let taken = conn
        .prepare_cached(
            "UPDATE presence_sweep SET holder = ?1, until = ?3 WHERE id = 1 AND (until <= ?2 OR holder = ?1)",
        )?
        .execute(params![holder, now, until])?;
    Ok(taken == 1)
}

/// Candidates by a coarse filter in SQL (online and silent or disconnected; offline and heard
/// from since), decided by [`PresenceChange::due`].
pub(crate) fn changes(conn: &Connection, now: Millis, limit: usize) -> DbResult<Vec<PresenceChange>> {
    let sql = format!(
        "SELECT {DEVICE_COLUMNS}, w.offline_after FROM devices d JOIN workspaces w ON w.id = d.workspace_id \
         WHERE w.offline_after IS NOT NULL AND ( \
           (d.state = 'online' AND (d.heard = 'disconnection' OR d.last_seen < ?1 - w.offline_after)) \
           OR (d.state = 'offline' AND d.heard <> 'disconnection' AND d.last_seen >= d.since)) \
         LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![now, limit as i64])?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        let offline_after: Millis = row.get("offline_after")?;
        found.extend(PresenceChange::due(device(row)?, offline_after, now));
    }
    Ok(found)
}

pub(crate) fn apply(conn: &mut Connection, changes: &[PresenceChange], now: Millis) -> DbResult<()> {
    let tx = conn.transaction()?;
    for change in changes {
        let d = &change.device;
        tx.prepare_cached(
            "UPDATE devices SET state = ?1, since = ?2 \
             WHERE workspace_id = ?3 AND device_id = ?4 AND state = ?5 AND last_seen = ?6 AND heard = ?7",
        )?
        .execute(params![
            change.to.as_str(),
            now,
            d.workspace_id,
            d.device_id,
            d.state.as_str(),
            d.last_seen,
            d.heard.as_str()
        ])?;
    }
    tx.commit()?;
    Ok(())
}
