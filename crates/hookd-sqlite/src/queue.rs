//! The delivery queue: leasing due deliveries, recording attempts, giving leases back.

use std::collections::{HashMap, HashSet};

use hookd_core::clock::Millis;
use hookd_core::seal::Sealer;
use hookd_core::store::{
    BreakerChange, Candidate, ClaimRequest, Claimed, Finish, QueueStats, StoreResult, assemble_claims, breaker_changes,
    pick_within_limits,
};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::rows::{self, DELIVERY_COLUMNS, json_list, placeholders};
use crate::webhooks;
use crate::{map_err, other};

pub(crate) async fn claim_due(pool: &SqlitePool, request: &ClaimRequest, sealer: &Sealer) -> StoreResult<Vec<Claimed>> {
    let blocked = request.blocked_webhooks();
    let mut tx = pool.begin().await.map_err(map_err)?;
    let mut candidates = Vec::new();
    // Two lanes, each oldest due first: first attempts, then retries.
    for lane in ["d.failures = 0", "d.failures > 0"] {
        let sql = format!(
            "SELECT d.id, d.webhook_id, d.failures > 0 AS retry, w.consecutive_failures >= ?4 AS half_open \
             FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.state = 'pending' AND {lane} AND d.next_attempt_at <= ?1 AND w.enabled = 1 \
               AND NOT (w.consecutive_failures >= ?4 AND w.breaker_until > ?1) \
               AND d.webhook_id NOT IN (SELECT value FROM json_each(?2)) \
             ORDER BY d.next_attempt_at LIMIT ?3"
        );
        let rows = sqlx::query(&sql)
            .bind(request.now)
            .bind(json_list(&blocked))
            .bind((request.limit * 2) as i64)
            .bind(i64::from(request.breaker_threshold))
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        for row in rows {
            candidates.push(Candidate {
                delivery_id: row.try_get("id").map_err(map_err)?,
                webhook_id: row.try_get("webhook_id").map_err(map_err)?,
                retry: row.try_get("retry").map_err(map_err)?,
                half_open: row.try_get("half_open").map_err(map_err)?,
            });
        }
    }
    let picked = pick_within_limits(&candidates, request);
    if picked.is_empty() {
        // End the transaction now rather than when the connection is next used.
        tx.commit().await.map_err(map_err)?;
        return Ok(Vec::new());
    }
    // A probe of a half-open breaker pauses its webhook again until the probe's lease ends (or
    // its result closes or re-opens the breaker), so no other worker probes at the same time.
    let probing: Vec<&str> = candidates
        .iter()
        .filter(|c| c.half_open && picked.contains(&c.delivery_id))
        .map(|c| c.webhook_id.as_str())
        .collect();
    if !probing.is_empty() {
        sqlx::query("UPDATE webhooks SET breaker_until = ?1 WHERE id IN (SELECT value FROM json_each(?2))")
            .bind(request.lease.until)
            .bind(json_list(&probing))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
    }
    let picked_json = json_list(&picked);
    sqlx::query(
        "UPDATE deliveries SET next_attempt_at = ?1, locked_until = ?1, lease_token = ?2 \
         WHERE id IN (SELECT value FROM json_each(?3))",
    )
    .bind(request.lease.until)
    .bind(&request.lease.token)
    .bind(&picked_json)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id IN (SELECT value FROM json_each(?))");
    let found = sqlx::query(&sql)
        .bind(&picked_json)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
    let deliveries = found.iter().map(rows::delivery).collect::<StoreResult<Vec<_>>>()?;

    let webhook_ids: Vec<&str> = deliveries.iter().map(|d| d.webhook_id.as_str()).collect();
    let hooks = webhooks::by_ids(&mut tx, &webhook_ids, sealer).await?;
    let record_ids: Vec<&str> = deliveries
        .iter()
        .flat_map(|d| d.record_ids.iter().map(String::as_str))
        .collect();
    let bodies: HashMap<String, String> =
        sqlx::query("SELECT id, body FROM records WHERE id IN (SELECT value FROM json_each(?))")
            .bind(json_list(&record_ids))
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?
            .iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("body")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map_err)?;
    tx.commit().await.map_err(map_err)?;

    assemble_claims(&picked, deliveries, hooks, &bodies, &request.lease)
}

/// Records a batch of attempts in one transaction: one UPDATE for every delivery whose lease is
/// still held, one INSERT for their attempts.
pub(crate) async fn finish_many(pool: &SqlitePool, finishes: &[Finish]) -> StoreResult<Vec<bool>> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let mut written: HashSet<String> = HashSet::with_capacity(finishes.len());
    for chunk in finishes.chunks(CHUNK) {
        written.extend(update_deliveries(&mut tx, chunk).await?);
        let recorded: Vec<&Finish> = chunk.iter().filter(|f| written.contains(&f.delivery_id)).collect();
        if !recorded.is_empty() {
            insert_attempts(&mut tx, &recorded).await?;
        }
        for f in &recorded {
            if let Some(reason) = &f.disable_webhook {
                disable_webhook(&mut tx, f, reason).await?;
            }
        }
        for (webhook, change) in breaker_changes(recorded.iter().map(|f| (f.webhook_id.as_str(), f.health))) {
            update_breaker(&mut tx, webhook, change).await?;
        }
    }
    tx.commit().await.map_err(map_err)?;
    Ok(finishes.iter().map(|f| written.contains(&f.delivery_id)).collect())
}

/// Rows per multi-row statement (well under SQLite's 32,766 bound parameters).
const CHUNK: usize = 400;

/// Moves each delivery whose lease token still matches to its new state; returns their ids.
async fn update_deliveries(tx: &mut SqliteConnection, finishes: &[Finish]) -> StoreResult<Vec<String>> {
    let sql = format!(
        "WITH f(id, token, state, failures, next_at, now, status, explanation) AS (VALUES {}) \
         UPDATE deliveries SET state = f.state, attempts = attempts + 1, failures = f.failures, next_attempt_at = f.next_at, \
           locked_until = 0, lease_token = NULL, updated_at = f.now, last_status = f.status, last_explanation = f.explanation \
         FROM f WHERE deliveries.id = f.id AND deliveries.lease_token = f.token AND deliveries.state = 'pending' \
         RETURNING deliveries.id",
        placeholders(finishes.len(), 8)
    );
    let mut query = sqlx::query(&sql);
    for f in finishes {
        query = query
            .bind(&f.delivery_id)
            .bind(&f.lease_token)
            .bind(f.state.as_str())
            .bind(i64::from(f.failures))
            .bind(f.next_attempt_at)
            .bind(f.now)
            .bind(f.attempt.status.map(i64::from))
            .bind(&f.attempt.explanation);
    }
    let rows = query.fetch_all(&mut *tx).await.map_err(map_err)?;
    rows.iter().map(|row| row.try_get("id").map_err(map_err)).collect()
}

async fn insert_attempts(tx: &mut SqliteConnection, finishes: &[&Finish]) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status, response_headers, response_body, error_kind, explanation, outcome) \
         VALUES {}",
        placeholders(finishes.len(), 10)
    );
    let mut query = sqlx::query(&sql);
    for f in finishes {
        let a = &f.attempt;
        query = query
            .bind(&a.id)
            .bind(&a.delivery_id)
            .bind(a.started_at)
            .bind(a.duration_ms as i64)
            .bind(a.status.map(i64::from))
            .bind(&a.response_headers)
            .bind(&a.response_body)
            .bind(&a.error_kind)
            .bind(&a.explanation)
            .bind(a.outcome.as_str());
    }
    query.execute(&mut *tx).await.map_err(map_err)?;
    Ok(())
}

async fn update_breaker(tx: &mut SqliteConnection, webhook: &str, change: BreakerChange) -> StoreResult<()> {
    let query = match change {
        BreakerChange::Add { failures, until, since } => sqlx::query(
            "UPDATE webhooks SET consecutive_failures = consecutive_failures + ?, breaker_until = ?, \
             failing_since = CASE WHEN failing_since = 0 THEN ? ELSE failing_since END WHERE id = ?",
        )
        .bind(i64::from(failures))
        .bind(until)
        .bind(since),
        BreakerChange::Set { failures, until, since } => sqlx::query(
            "UPDATE webhooks SET consecutive_failures = ?, breaker_until = ?, failing_since = ? WHERE id = ?",
        )
        .bind(i64::from(failures))
        .bind(until)
        .bind(since),
    };
    query.bind(webhook).execute(&mut *tx).await.map_err(map_err)?;
    Ok(())
}

async fn disable_webhook(tx: &mut SqliteConnection, f: &Finish, reason: &str) -> StoreResult<()> {
    sqlx::query(
        "UPDATE webhooks SET enabled = 0, disabled_reason = ?, spec = json_set(spec, '$.enabled', json('false')), updated_at = ? \
         WHERE id = (SELECT webhook_id FROM deliveries WHERE id = ?)",
    )
    .bind(reason)
    .bind(f.now)
    .bind(&f.delivery_id)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn release(pool: &SqlitePool, leases: &[(String, String)]) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    for (delivery_id, token) in leases {
        sqlx::query(
            "UPDATE deliveries SET next_attempt_at = 0, locked_until = 0, lease_token = NULL \
             WHERE id = ? AND lease_token = ? AND state = 'pending'",
        )
        .bind(delivery_id)
        .bind(token)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    }
    tx.commit().await.map_err(map_err)
}

pub(crate) async fn next_wake_at(pool: &SqlitePool, breaker_threshold: u32) -> StoreResult<Option<Millis>> {
    let row = sqlx::query(
        "SELECT min(CASE WHEN w.consecutive_failures >= ? THEN max(d.next_attempt_at, w.breaker_until) ELSE d.next_attempt_at END) AS at \
         FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         WHERE d.state = 'pending' AND w.enabled = 1",
    )
    .bind(i64::from(breaker_threshold))
    .fetch_one(pool)
    .await
    .map_err(map_err)?;
    row.try_get("at").map_err(map_err)
}

pub(crate) async fn stats(pool: &SqlitePool, now: Millis) -> StoreResult<QueueStats> {
    let row = sqlx::query(
        "SELECT count(*) AS pending, coalesce(sum(next_attempt_at <= ?), 0) AS due, min(created_at) AS oldest \
         FROM deliveries WHERE state = 'pending'",
    )
    .bind(now)
    .fetch_one(pool)
    .await
    .map_err(map_err)?;
    let pending: i64 = row.try_get("pending").map_err(map_err)?;
    let due: i64 = row.try_get("due").map_err(map_err)?;
    Ok(QueueStats {
        pending: u64::try_from(pending).map_err(other)?,
        due: u64::try_from(due).map_err(other)?,
        oldest_pending_at: row.try_get("oldest").map_err(map_err)?,
    })
}
