//! Retention: deleting finished deliveries, unreferenced records and old idempotency keys in
//! small transactions, so pruning never holds the writer for long.

use hookd_core::store::{PruneCutoffs, PruneReport};
use rusqlite::{Connection, params};

use crate::db::DbResult;
use crate::rows::json_list;

pub(crate) fn prune(conn: &mut Connection, cutoffs: &PruneCutoffs, limit: usize) -> DbResult<PruneReport> {
    let tx = conn.transaction()?;
    let limit = limit as i64;
    let ids: Vec<String> = tx
        .prepare_cached(
            "SELECT id FROM deliveries WHERE state = 'delivered' AND updated_at < ?1 \
             UNION ALL SELECT id FROM deliveries WHERE state IN ('failed', 'dead') AND updated_at < ?2 \
             LIMIT ?3",
        )?
        .query_map(params![cutoffs.delivered_before, cutoffs.failed_before, limit], |row| {
            row.get(0)
        })?
        .collect::<rusqlite::Result<_>>()?;
    if !ids.is_empty() {
        let ids_json = json_list(&ids);
        // Every record these deliveries carried loses one reference per delivery.
        tx.execute(
            "UPDATE records SET refs = refs - (SELECT count(*) FROM deliveries d, json_each(d.record_ids) j \
               WHERE d.id IN (SELECT value FROM json_each(?1)) AND j.value = records.id) \
             WHERE id IN (SELECT j.value FROM deliveries d, json_each(d.record_ids) j WHERE d.id IN (SELECT value FROM json_each(?1)))",
            [&ids_json],
        )?;
        tx.execute(
            "DELETE FROM attempts WHERE delivery_id IN (SELECT value FROM json_each(?))",
            [&ids_json],
        )?;
        tx.execute(
            "DELETE FROM deliveries WHERE id IN (SELECT value FROM json_each(?))",
            [&ids_json],
        )?;
    }
    let records = tx.execute(
        "DELETE FROM records WHERE id IN (SELECT id FROM records WHERE refs <= 0 AND created_at < ? LIMIT ?)",
        params![cutoffs.records_before, limit],
    )?;
    let keys = tx.execute(
        "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE created_at < ? LIMIT ?)",
        params![cutoffs.keys_before, limit],
    )?;
    let source_requests = tx.execute(
        "DELETE FROM source_requests WHERE id IN (SELECT id FROM source_requests \
           WHERE (outcome = 'accepted' AND received_at < ?1) OR (outcome <> 'accepted' AND received_at < ?2) LIMIT ?3)",
        params![cutoffs.delivered_before, cutoffs.failed_before, limit],
    )?;
    let messages = tx.execute(
        "DELETE FROM source_messages WHERE rowid IN (SELECT rowid FROM source_messages WHERE until < ? LIMIT ?)",
        params![cutoffs.keys_before, limit],
    )?;
    // The dashboard's tallies go with the log they count.
    tx.execute(
        "DELETE FROM attempt_minutes WHERE rowid IN (SELECT rowid FROM attempt_minutes WHERE minute < ? LIMIT ?)",
        params![cutoffs.delivered_before.min(cutoffs.failed_before), limit],
    )?;
    tx.commit()?;
    Ok(PruneReport {
        deliveries: ids.len() as u64,
        records: records as u64,
        keys: keys as u64,
        source_requests: (source_requests + messages) as u64,
    })
}
