//! Presence: devices heard from (written with the records), listed, and swept for changes.

use std::collections::HashMap;

use hookd_core::clock::Millis;
use hookd_core::store::{Device, DeviceQuery, DeviceSeen, DeviceState, Heard, PresenceChange, StoreError, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::db::map_err;

const DEVICE_COLUMNS: &str = "d.workspace_id, d.device_id, d.fleet_id, d.state, d.since, d.last_seen, d.heard";

/// Notes the devices of a commit, each once (its last word in the batch), in one statement:
/// a new device is online from now; a known one keeps its state and its newest time.
pub(crate) async fn seen(conn: &mut PgConnection, heard: &[(&str, &DeviceSeen)]) -> StoreResult<()> {
    let mut last: HashMap<(&str, &str), &DeviceSeen> = HashMap::new();
    for &(workspace, device) in heard {
        last.insert((workspace, device.device_id.as_str()), device);
    }
    if last.is_empty() {
        return Ok(());
    }
    // In one order, so two commits upserting the same devices cannot deadlock.
    let mut rows: Vec<((&str, &str), &DeviceSeen)> = last.into_iter().collect();
    rows.sort_by_key(|(key, _)| *key);
    let workspaces: Vec<&str> = rows.iter().map(|((w, _), _)| *w).collect();
    let ids: Vec<&str> = rows.iter().map(|((_, d), _)| *d).collect();
    let fleets: Vec<Option<&str>> = rows.iter().map(|(_, d)| d.fleet_id.as_deref()).collect();
    let at: Vec<i64> = rows.iter().map(|(_, d)| d.at).collect();
    let heard: Vec<&str> = rows.iter().map(|(_, d)| d.heard.as_str()).collect();
    sqlx::query(
        "INSERT INTO devices AS d (workspace_id, device_id, fleet_id, state, since, last_seen, heard) \
         SELECT w, id, f, 'online', t, t, h FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[]) AS u(w, id, f, t, h) \
         ON CONFLICT (workspace_id, device_id) DO UPDATE SET \
           fleet_id = coalesce(excluded.fleet_id, d.fleet_id), \
           heard = CASE WHEN excluded.last_seen >= d.last_seen THEN excluded.heard ELSE d.heard END, \
           last_seen = GREATEST(d.last_seen, excluded.last_seen)",
    )
    .bind(&workspaces)
    .bind(&ids)
    .bind(&fleets)
    .bind(&at)
    .bind(&heard)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

fn device(row: &PgRow) -> StoreResult<Device> {
    let state: String = row.try_get("state").map_err(map_err)?;
    let heard: String = row.try_get("heard").map_err(map_err)?;
    Ok(Device {
        workspace_id: row.try_get("workspace_id").map_err(map_err)?,
        device_id: row.try_get("device_id").map_err(map_err)?,
        fleet_id: row.try_get("fleet_id").map_err(map_err)?,
        state: DeviceState::parse(&state).ok_or_else(|| StoreError::corrupt("device state", &state))?,
        last_seen: row.try_get("last_seen").map_err(map_err)?,
        since: row.try_get("since").map_err(map_err)?,
        heard: Heard::parse(&heard).ok_or_else(|| StoreError::corrupt("device heard", &heard))?,
    })
}

pub(crate) async fn list(pool: &PgPool, workspace: &str, query: &DeviceQuery) -> StoreResult<Vec<Device>> {
    let sql = format!(
        "SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.workspace_id = $1 AND ($2::text IS NULL OR d.state = $2) \
           AND ($3::text IS NULL OR d.fleet_id = $3) AND ($4::text IS NULL OR d.device_id > $4) ORDER BY d.device_id LIMIT $5"
    );
    let rows = sqlx::query(&sql)
        .bind(workspace)
        .bind(query.state.map(DeviceState::as_str))
        .bind(query.fleet_id.as_deref())
        .bind(query.after.as_deref())
        .bind(query.limit as i64)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    rows.iter().map(device).collect()
}

pub(crate) async fn claim_sweep(pool: &PgPool, holder: &str, now: Millis, until: Millis) -> StoreResult<bool> {
    let taken =
        sqlx::query("UPDATE presence_sweep SET holder = $1, until = $3 WHERE id = 1 AND (until <= $2 OR holder = $1)")
            .bind(holder)
            .bind(now)
            .bind(until)
            .execute(pool)
            .await
            .map_err(map_err)?;
    Ok(taken.rows_affected() == 1)
}

/// Candidates by a coarse filter in SQL, decided by [`PresenceChange::due`].
pub(crate) async fn changes(pool: &PgPool, now: Millis, limit: usize) -> StoreResult<Vec<PresenceChange>> {
    let sql = format!(
        "SELECT {DEVICE_COLUMNS}, w.offline_after FROM devices d JOIN workspaces w ON w.id = d.workspace_id \
         WHERE w.offline_after IS NOT NULL AND ( \
           (d.state = 'online' AND (d.heard = 'disconnection' OR d.last_seen < $1 - w.offline_after)) \
           OR (d.state = 'offline' AND d.heard <> 'disconnection' AND d.last_seen >= d.since)) \
         LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    let mut found = Vec::new();
    for row in &rows {
        let offline_after: Millis = row.try_get("offline_after").map_err(map_err)?;
        found.extend(PresenceChange::due(device(row)?, offline_after, now));
    }
    Ok(found)
}

pub(crate) async fn apply(pool: &PgPool, changes: &[PresenceChange], now: Millis) -> StoreResult<()> {
    let text = |f: fn(&PresenceChange) -> &str| changes.iter().map(f).collect::<Vec<&str>>();
    sqlx::query(
        "UPDATE devices d SET state = c.to_state, since = $1 \
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[]) AS c(w, id, to_state, from_state, seen, heard) \
         WHERE d.workspace_id = c.w AND d.device_id = c.id AND d.state = c.from_state AND d.last_seen = c.seen AND d.heard = c.heard",
    )
    .bind(now)
    .bind(text(|c| &c.device.workspace_id))
    .bind(text(|c| &c.device.device_id))
    .bind(text(|c| c.to.as_str()))
    .bind(text(|c| c.device.state.as_str()))
    .bind(changes.iter().map(|c| c.device.last_seen).collect::<Vec<i64>>())
    .bind(text(|c| c.device.heard.as_str()))
    .execute(pool)
    .await
    .map_err(map_err)?;
    Ok(())
}
