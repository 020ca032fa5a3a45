//! Retention: deleting finished deliveries, unreferenced records and old idempotency keys in
//! small transactions, so pruning never holds the writer for long.

use hookd_core::store::{PruneCutoffs, PruneReport, StoreResult};
use sqlx::{Row, SqlitePool};

use crate::map_err;

pub(crate) async fn prune(pool: &SqlitePool, cutoffs: &PruneCutoffs, limit: usize) -> StoreResult<PruneReport> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let limit = limit as i64;
    let old = sqlx::query(
        "SELECT id, record_ids FROM deliveries WHERE state = 'delivered' AND updated_at < ?1 \
         UNION ALL SELECT id, record_ids FROM deliveries WHERE state IN ('failed', 'dead') AND updated_at < ?2 \
         LIMIT ?3",
    )
    .bind(cutoffs.delivered_before)
    .bind(cutoffs.failed_before)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    let ids: Vec<String> = old
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()
        .map_err(map_err)?;
    if !ids.is_empty() {
        let ids_json = serde_json::Value::from(ids.clone()).to_string();
        // Every record these deliveries carried loses one reference per delivery.
        sqlx::query(
            "UPDATE records SET refs = refs - (SELECT count(*) FROM deliveries d, json_each(d.record_ids) j \
               WHERE d.id IN (SELECT value FROM json_each(?1)) AND j.value = records.id) \
             WHERE id IN (SELECT j.value FROM deliveries d, json_each(d.record_ids) j WHERE d.id IN (SELECT value FROM json_each(?1)))",
        )
        .bind(&ids_json)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query("DELETE FROM attempts WHERE delivery_id IN (SELECT value FROM json_each(?))")
            .bind(&ids_json)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("DELETE FROM deliveries WHERE id IN (SELECT value FROM json_each(?))")
            .bind(&ids_json)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
    }
    let records = sqlx::query(
        "DELETE FROM records WHERE id IN (SELECT id FROM records WHERE refs <= 0 AND created_at < ? LIMIT ?)",
    )
    .bind(cutoffs.records_before)
    .bind(limit)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    let keys = sqlx::query(
        "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
    )
    .bind(cutoffs.keys_before)
    .bind(limit)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    tx.commit().await.map_err(map_err)?;
    Ok(PruneReport {
        deliveries: ids.len() as u64,
        records: records.rows_affected(),
        keys: keys.rows_affected(),
    })
}
