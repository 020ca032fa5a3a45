//! Retention: deleting finished deliveries, unreferenced records and old idempotency keys in
//! small transactions. `SKIP LOCKED` keeps processes pruning at once out of each other's way.

use hookd_core::store::{PruneCutoffs, PruneReport, StoreResult};
use sqlx::{PgPool, Row};

use crate::db::map_err;

pub(crate) async fn prune(pool: &PgPool, cutoffs: &PruneCutoffs, limit: usize) -> StoreResult<PruneReport> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let limit = limit as i64;
    let deleted = sqlx::query(
        "WITH old AS ( \
           SELECT id FROM deliveries \
           WHERE (state = 'delivered' AND updated_at < $1) OR (state IN ('failed', 'dead') AND updated_at < $2) \
           LIMIT $3 FOR UPDATE SKIP LOCKED), \
         gone AS (DELETE FROM deliveries d USING old WHERE d.id = old.id RETURNING d.id, d.record_ids), \
         refs AS (SELECT r AS id, count(*) AS n FROM gone, unnest(gone.record_ids) AS r GROUP BY r), \
         dropped AS (UPDATE records SET refs = records.refs - refs.n FROM refs WHERE records.id = refs.id) \
         SELECT id FROM gone",
    )
    .bind(cutoffs.delivered_before)
    .bind(cutoffs.failed_before)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    let ids: Vec<String> = deleted
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()
        .map_err(map_err)?;
    if !ids.is_empty() {
        sqlx::query("DELETE FROM attempts WHERE delivery_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
    }
    // A separate statement: it must see the reference counts the one above lowered.
    let records = sqlx::query(
        "DELETE FROM records WHERE id IN (SELECT id FROM records WHERE refs <= 0 AND created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(cutoffs.records_before)
    .bind(limit)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    let keys = sqlx::query(
        "DELETE FROM idempotency_keys WHERE (workspace_id, key) IN \
         (SELECT workspace_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(cutoffs.keys_before)
    .bind(limit)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    let source_requests = sqlx::query(
        "DELETE FROM source_requests WHERE id IN (SELECT id FROM source_requests \
           WHERE (outcome = 'accepted' AND received_at < $1) OR (outcome <> 'accepted' AND received_at < $2) \
           LIMIT $3 FOR UPDATE SKIP LOCKED)",
    )
    .bind(cutoffs.delivered_before)
    .bind(cutoffs.failed_before)
    .bind(limit)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    let messages = sqlx::query(
        "DELETE FROM source_messages WHERE (source_id, message_id) IN \
         (SELECT source_id, message_id FROM source_messages WHERE until < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(cutoffs.keys_before)
    .bind(limit)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    // The dashboard's tallies go with the log they count.
    sqlx::query(
        "DELETE FROM attempt_minutes WHERE (webhook_id, minute) IN \
         (SELECT webhook_id, minute FROM attempt_minutes WHERE minute < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind(cutoffs.delivered_before.min(cutoffs.failed_before))
    .bind(limit)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    tx.commit().await.map_err(map_err)?;
    Ok(PruneReport {
        deliveries: ids.len() as u64,
        records: records.rows_affected(),
        keys: keys.rows_affected(),
        source_requests: source_requests.rows_affected() + messages.rows_affected(),
    })
}
