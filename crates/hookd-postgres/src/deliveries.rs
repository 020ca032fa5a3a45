//! The delivery log: listing, reading with attempts, retry and replay (both announce the work).

use hookd_core::clock::Millis;
use hookd_core::store::{Attempt, Delivery, DeliveryQuery, ReplayQuery, StoreResult};
use sqlx::PgPool;

use crate::db::{WORK_CHANNEL, map_err};
use crate::rows::{self, DELIVERY_COLUMNS};

pub(crate) async fn list(pool: &PgPool, workspace_id: &str, q: &DeliveryQuery) -> StoreResult<Vec<Delivery>> {
    let (filters, params) = q.sql_filters(|n| format!("${n}"));
    let limit = params.len() + 2;
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE workspace_id = $1{filters} ORDER BY id DESC LIMIT ${limit}"
    );
    let mut query = sqlx::query(&sql).bind(workspace_id);
    for param in params {
        query = query.bind(param);
    }
    let found = query.bind(q.limit as i64).fetch_all(pool).await.map_err(map_err)?;
    found.iter().map(rows::delivery).collect()
}

pub(crate) async fn get(pool: &PgPool, workspace_id: &str, id: &str) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1 AND workspace_id = $2");
    let Some(row) = sqlx::query(&sql)
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?
    else {
        return Ok(None);
    };
    let delivery = rows::delivery(&row)?;
    let attempts = sqlx::query("SELECT * FROM attempts WHERE delivery_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(rows::attempt)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some((delivery, attempts)))
}

async fn announce(pool: &PgPool) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(WORK_CHANNEL)
        .execute(pool)
        .await
        .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn retry(
    pool: &PgPool,
    workspace_id: &str,
    id: &str,
    now: Millis,
    note: &str,
) -> StoreResult<Option<Delivery>> {
    let sql = format!(
        "UPDATE deliveries SET state = 'pending', failures = 0, next_attempt_at = $1, locked_until = 0, lease_token = NULL, updated_at = $1, \
           last_explanation = $4 \
         WHERE id = $2 AND workspace_id = $3 AND NOT (state = 'pending' AND locked_until > $1) RETURNING {DELIVERY_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(now)
        .bind(id)
        .bind(workspace_id)
        .bind(note)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    match row {
        Some(row) => {
            announce(pool).await?;
            rows::delivery(&row).map(Some)
        }
        // In flight right now: leave it to the attempt under way, report it as it is.
        None => Ok(get(pool, workspace_id, id).await?.map(|(d, _)| d)),
    }
}

/// The deliveries a replay takes (`$1` now, `$2` the workspace, `$3` the webhook, `$4`..`$5`
/// the creation range, `$6` the states): not one with an attempt in flight.
const REPLAYABLE: &str = "workspace_id = $2 AND webhook_id = $3 AND created_at >= $4 AND created_at < $5 \
     AND state = ANY($6) AND NOT (state = 'pending' AND locked_until > $1)";

pub(crate) async fn replay(pool: &PgPool, workspace_id: &str, q: &ReplayQuery, now: Millis) -> StoreResult<u64> {
    let states: Vec<&str> = q.states.iter().map(|s| s.as_str()).collect();
    if q.dry_run {
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM deliveries WHERE {REPLAYABLE}"))
            .bind(now)
            .bind(workspace_id)
            .bind(q.webhook_id.as_str())
            .bind(q.since)
            .bind(q.until)
            .bind(&states)
            .fetch_one(pool)
            .await
            .map_err(map_err)?;
        return Ok(count as u64);
    }
    let done = sqlx::query(
        &format!(
            "UPDATE deliveries SET state = 'pending', failures = 0, next_attempt_at = $1, updated_at = $1, last_explanation = $7 \
             WHERE {REPLAYABLE}"
        ),
    )
    .bind(now)
    .bind(workspace_id)
    .bind(q.webhook_id.as_str())
    .bind(q.since)
    .bind(q.until)
    .bind(&states)
    .bind(&q.note)
    .execute(pool)
    .await
    .map_err(map_err)?;
    if done.rows_affected() > 0 {
        announce(pool).await?;
    }
    Ok(done.rows_affected())
}
