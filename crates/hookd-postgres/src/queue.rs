//! The delivery queue: leasing due deliveries (`FOR UPDATE SKIP LOCKED`, so concurrent workers
//! never take the same one), recording attempts, giving leases back.

use std::collections::{HashMap, HashSet};

use hookd_core::clock::Millis;
use hookd_core::id::{DeliveryId, LeaseToken};
use hookd_core::seal::Sealer;
use hookd_core::store::{
    Attempt, BreakerChange, Candidate, ClaimRequest, Claimed, Finish, QueueStats, StoreResult, assemble_claims,
    breaker_changes, minute_tallies, pick_within_limits, round_robin,
};
use sqlx::{PgConnection, PgPool, Row};

use crate::db::{begin_relaxed, map_err, other, texts};
use crate::rows::{self, DELIVERY_COLUMNS};
use crate::webhooks;

pub(crate) async fn claim_due(pool: &PgPool, request: &ClaimRequest, sealer: &Sealer) -> StoreResult<Vec<Claimed>> {
    let blocked = request.blocked_webhooks();
    let mut tx = begin_relaxed(pool).await?;
    // Each webhook that can take a slot is a lane of its own (its due deliveries, oldest first,
    // from the `(webhook_id, next_attempt_at)` index), taken in turn: one webhook's pile of due
    // deliveries never makes the others wait behind it. A delivery with an ordering key is
    // taken only as the oldest pending one of its key: the one before it, in flight (leased,
    // perhaps by another process) or waiting for a retry, holds it.
    let rows = sqlx::query(
        "WITH due AS ( \
           SELECT w.id, w.consecutive_failures >= $4 AS half_open FROM webhooks w \
           WHERE w.enabled AND NOT (w.consecutive_failures >= $4 AND w.breaker_until > $1) AND NOT (w.id = ANY($2)) \
             AND EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id AND d.state = 'pending' AND d.next_attempt_at <= $1)), \
         share AS (SELECT count(*) AS lanes FROM due) \
         SELECT d.id, due.id AS webhook_id, d.failures > 0 AS retry, due.half_open \
         FROM due CROSS JOIN share CROSS JOIN LATERAL ( \
           SELECT id, failures, next_attempt_at FROM deliveries o \
           WHERE webhook_id = due.id AND state = 'pending' AND next_attempt_at <= $1 \
             AND (ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries e \
               WHERE e.webhook_id = due.id AND e.ordering_key = o.ordering_key AND e.state = 'pending' AND e.order_seq < o.order_seq)) \
           ORDER BY next_attempt_at LIMIT GREATEST(4, CEIL($3::float8 / GREATEST(share.lanes, 1)))::bigint \
           FOR UPDATE SKIP LOCKED) d \
         ORDER BY due.id, d.next_attempt_at",
    )
    .bind(request.now)
    .bind(texts(&blocked))
    // See `lane_share`: each lane's share of twice the limit, at least a few.
    .bind((request.limit * 2) as i64)
    .bind(request.breaker_threshold as i32)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    let mut candidates = Vec::with_capacity(rows.len());
    for row in rows {
        candidates.push(Candidate {
            delivery_id: row.try_get::<String, _>("id").map_err(map_err)?.into(),
            webhook_id: row.try_get::<String, _>("webhook_id").map_err(map_err)?.into(),
            retry: row.try_get("retry").map_err(map_err)?,
            half_open: row.try_get("half_open").map_err(map_err)?,
        });
    }
    let candidates = round_robin(candidates, request.now.unsigned_abs() as usize);
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
        sqlx::query("UPDATE webhooks SET breaker_until = $1 WHERE id = ANY($2)")
            .bind(request.lease.until)
            .bind(&probing)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
    }
    let sql = format!(
        "UPDATE deliveries SET next_attempt_at = $1, locked_until = $1, lease_token = $2 WHERE id = ANY($3) RETURNING {DELIVERY_COLUMNS}"
    );
    let found = sqlx::query(&sql)
        .bind(request.lease.until)
        .bind(request.lease.token.as_str())
        .bind(texts(&picked))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
    let deliveries = found.iter().map(rows::delivery).collect::<StoreResult<Vec<_>>>()?;

    let webhook_ids: Vec<&str> = deliveries.iter().map(|d| d.webhook_id.as_str()).collect();
    let hooks = webhooks::by_ids(&mut tx, &webhook_ids, sealer).await?;
    let record_ids: Vec<String> = deliveries.iter().flat_map(|d| d.record_ids.iter().cloned()).collect();
    let bodies: HashMap<String, String> = sqlx::query("SELECT id, body FROM records WHERE id = ANY($1)")
        .bind(&record_ids)
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

/// Records a batch of attempts in one transaction, each step one statement for the whole
/// batch: the deliveries whose lease is still held move to their new state, their attempts are
/// inserted, webhooks to disable are disabled, breakers are updated.
pub(crate) async fn finish_many(pool: &PgPool, finishes: &[Finish]) -> StoreResult<Vec<bool>> {
    let mut tx = begin_relaxed(pool).await?;
    let moved = move_deliveries(&mut tx, finishes).await?;
    let recorded: Vec<&Finish> = finishes.iter().filter(|f| moved.contains(&f.delivery_id)).collect();
    insert_attempts(&mut tx, &recorded).await?;
    for f in &recorded {
        if let Some(reason) = &f.disable_webhook {
            sqlx::query(
                "UPDATE webhooks SET enabled = FALSE, disabled_reason = $1, spec = jsonb_set(spec::jsonb, '{enabled}', 'false')::text, updated_at = $2 \
                 WHERE id = $3",
            )
            .bind(reason)
            .bind(f.now)
            .bind(f.webhook_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
    }
    for (webhook, change) in breaker_changes(recorded.iter().copied()) {
        let (sql, failures, until, since) = match change.breaker {
            BreakerChange::Add { failures, until, since } => (
                "UPDATE webhooks SET consecutive_failures = consecutive_failures + $1, breaker_until = $2, \
                 failing_since = CASE WHEN failing_since = 0 THEN $3 ELSE failing_since END, \
                 last_success_at = GREATEST(last_success_at, $5), last_failure_at = GREATEST(last_failure_at, $6) WHERE id = $4",
                failures,
                until,
                since,
            ),
            BreakerChange::Set { failures, until, since } => (
                "UPDATE webhooks SET consecutive_failures = $1, breaker_until = $2, failing_since = $3, \
                 last_success_at = GREATEST(last_success_at, $5), last_failure_at = GREATEST(last_failure_at, $6) WHERE id = $4",
                failures,
                until,
                since,
            ),
        };
        sqlx::query(sql)
            .bind(failures as i32)
            .bind(until)
            .bind(since)
            .bind(webhook)
            .bind(change.last_success)
            .bind(change.last_failure)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
    }
    crate::dashboard::add_tallies(&mut tx, minute_tallies(recorded.iter().copied())).await?;
    tx.commit().await.map_err(map_err)?;
    Ok(finishes.iter().map(|f| moved.contains(&f.delivery_id)).collect())
}

/// Moves each delivery whose lease token still matches to its new state; returns their ids.
async fn move_deliveries(tx: &mut PgConnection, finishes: &[Finish]) -> StoreResult<HashSet<DeliveryId>> {
    let text = |f: fn(&Finish) -> &str| finishes.iter().map(f).collect::<Vec<&str>>();
    let number = |f: fn(&Finish) -> i64| finishes.iter().map(f).collect::<Vec<i64>>();
    let status: Vec<Option<i32>> = finishes.iter().map(|f| f.attempt.status.map(i32::from)).collect();
    let rows = sqlx::query(
        "UPDATE deliveries d SET state = f.state, attempts = d.attempts + 1, failures = f.failures, next_attempt_at = f.next_at, \
           locked_until = 0, lease_token = NULL, updated_at = f.now, last_status = f.status, last_explanation = f.explanation, \
           order_broken = (d.order_broken OR (f.state = 'dead' AND d.ordering_key IS NOT NULL)) \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::int[], $8::text[]) \
           AS f(id, token, state, failures, next_at, now, status, explanation) \
         WHERE d.id = f.id AND d.lease_token = f.token AND d.state = 'pending' \
         RETURNING d.id",
    )
    .bind(text(|f| &f.delivery_id))
    .bind(text(|f| &f.lease_token))
    .bind(text(|f| f.state.as_str()))
    .bind(number(|f| i64::from(f.failures)))
    .bind(number(|f| f.next_attempt_at))
    .bind(number(|f| f.now))
    .bind(&status)
    .bind(text(|f| &f.attempt.explanation))
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|row| row.try_get::<String, _>("id").map(DeliveryId::from).map_err(map_err))
        .collect()
}

async fn insert_attempts(tx: &mut PgConnection, finishes: &[&Finish]) -> StoreResult<()> {
    if finishes.is_empty() {
        return Ok(());
    }
    let attempts: Vec<&Attempt> = finishes.iter().map(|f| &f.attempt).collect();
    let text = |f: fn(&Attempt) -> &str| attempts.iter().map(|a| f(a)).collect::<Vec<&str>>();
    let optional = |f: fn(&Attempt) -> Option<&str>| attempts.iter().map(|a| f(a)).collect::<Vec<Option<&str>>>();
    let number = |f: fn(&Attempt) -> i64| attempts.iter().map(|a| f(a)).collect::<Vec<i64>>();
    let status: Vec<Option<i32>> = attempts.iter().map(|a| a.status.map(i32::from)).collect();
    sqlx::query(
        "INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status, response_headers, response_body, error_kind, explanation, outcome) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::int[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])",
    )
    .bind(text(|a| &a.id))
    .bind(text(|a| &a.delivery_id))
    .bind(number(|a| a.started_at))
    .bind(number(|a| a.duration_ms as i64))
    .bind(&status)
    .bind(text(|a| &a.response_headers))
    .bind(optional(|a| a.response_body.as_deref()))
    .bind(optional(|a| a.error_kind.as_deref()))
    .bind(text(|a| &a.explanation))
    .bind(text(|a| a.outcome.as_str()))
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn release(pool: &PgPool, leases: &[(DeliveryId, LeaseToken)]) -> StoreResult<()> {
    let (ids, tokens): (Vec<&str>, Vec<&str>) = leases.iter().map(|(id, token)| (id.as_str(), token.as_str())).unzip();
    let mut tx = begin_relaxed(pool).await?;
    sqlx::query(
        "UPDATE deliveries d SET next_attempt_at = 0, locked_until = 0, lease_token = NULL \
         FROM UNNEST($1::text[], $2::text[]) AS l(id, token) \
         WHERE d.id = l.id AND d.lease_token = l.token AND d.state = 'pending'",
    )
    .bind(&ids)
    .bind(&tokens)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    tx.commit().await.map_err(map_err)
}

pub(crate) async fn next_wake_at(pool: &PgPool, breaker_threshold: u32) -> StoreResult<Option<Millis>> {
    let row = sqlx::query(
        // The earliest per enabled webhook (an index seek each), no earlier than its breaker's
        // pause; a delivery held behind an earlier one of its ordering key is not due.
        "SELECT min(CASE WHEN failures >= $1 THEN GREATEST(at, breaker_until) ELSE at END) AS at FROM ( \
           SELECT w.consecutive_failures AS failures, w.breaker_until, \
             (SELECT d.next_attempt_at FROM deliveries d WHERE d.webhook_id = w.id AND d.state = 'pending' \
                AND (d.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries e \
                  WHERE e.webhook_id = w.id AND e.ordering_key = d.ordering_key AND e.state = 'pending' AND e.order_seq < d.order_seq)) ORDER BY d.next_attempt_at LIMIT 1) AS at \
           FROM webhooks w WHERE w.enabled) per_webhook \
         WHERE at IS NOT NULL",
    )
    .bind(breaker_threshold as i32)
    .fetch_one(pool)
    .await
    .map_err(map_err)?;
    row.try_get("at").map_err(map_err)
}

pub(crate) async fn stats(pool: &PgPool, now: Millis) -> StoreResult<QueueStats> {
    let row = sqlx::query(
        "SELECT count(*) AS pending, count(*) FILTER (WHERE next_attempt_at <= $1) AS due, min(created_at) AS oldest \
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
