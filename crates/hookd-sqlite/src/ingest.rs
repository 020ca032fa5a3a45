//! The ingest transaction: every request of a group commit, written at once with multi-row
//! statements (each statement is a round trip to SQLite's thread; a batch needs a handful).

use std::collections::HashMap;

use hookd_core::store::{IngestRequest, IngestResult, NewDelivery, NewRecord, StoreResult};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::map_err;
use crate::rows::{json_list, placeholders};

/// Rows per multi-row statement (well under SQLite's 32,766 bound parameters).
const CHUNK: usize = 400;

pub(crate) async fn commit(pool: &SqlitePool, batch: &[IngestRequest]) -> StoreResult<Vec<IngestResult>> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let mut results = Vec::with_capacity(batch.len());
    // Keys written earlier in this batch: (workspace, key) → (request hash, record ids).
    let mut fresh_keys: HashMap<(&str, &str), (&str, Vec<String>)> = HashMap::new();
    let mut written: Vec<&IngestRequest> = Vec::with_capacity(batch.len());
    for request in batch {
        let ids: Vec<String> = request.records.iter().map(|r| r.id.clone()).collect();
        if let Some(idem) = &request.idempotency {
            let seen = match fresh_keys.get(&(request.workspace_id.as_str(), idem.key.as_str())) {
                Some((hash, ids)) => Some(((*hash).to_owned(), ids.clone())),
                None => stored_key(&mut tx, &request.workspace_id, &idem.key).await?,
            };
            if let Some((hash, first_ids)) = seen {
                results.push(if hash == idem.request_hash {
                    IngestResult::Replayed(first_ids)
                } else {
                    IngestResult::KeyConflict
                });
                continue;
            }
            fresh_keys.insert((&request.workspace_id, &idem.key), (&idem.request_hash, ids.clone()));
        }
        written.push(request);
        results.push(IngestResult::Committed(ids));
    }
    let records: Vec<(&NewRecord, i64)> = written
        .iter()
        .flat_map(|r| r.records.iter().zip(r.references()))
        .collect();
    for chunk in records.chunks(CHUNK) {
        insert_records(&mut tx, chunk).await?;
    }
    let deliveries: Vec<&NewDelivery> = written.iter().flat_map(|r| &r.deliveries).collect();
    for chunk in deliveries.chunks(CHUNK) {
        insert_deliveries(&mut tx, chunk).await?;
    }
    let keys: Vec<(&IngestRequest, &hookd_core::store::Idempotency)> = written
        .iter()
        .filter_map(|r| r.idempotency.as_ref().map(|i| (*r, i)))
        .collect();
    for chunk in keys.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO idempotency_keys (workspace_id, key, request_hash, record_ids, created_at) VALUES {}",
            placeholders(chunk.len(), 5)
        );
        let mut query = sqlx::query(&sql);
        for (request, idem) in chunk {
            let ids: Vec<&str> = request.records.iter().map(|r| r.id.as_str()).collect();
            query = query
                .bind(&request.workspace_id)
                .bind(&idem.key)
                .bind(&idem.request_hash)
                .bind(json_list(&ids))
                .bind(request.records.first().map_or(0, |r| r.created_at));
        }
        query.execute(&mut *tx).await.map_err(map_err)?;
    }
    tx.commit().await.map_err(map_err)?;
    Ok(results)
}

async fn stored_key(
    conn: &mut SqliteConnection,
    workspace: &str,
    key: &str,
) -> StoreResult<Option<(String, Vec<String>)>> {
    let row = sqlx::query("SELECT request_hash, record_ids FROM idempotency_keys WHERE workspace_id = ? AND key = ?")
        .bind(workspace)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
    let Some(row) = row else { return Ok(None) };
    let hash: String = row.try_get("request_hash").map_err(map_err)?;
    let ids: String = row.try_get("record_ids").map_err(map_err)?;
    Ok(Some((hash, serde_json::from_str(&ids).map_err(crate::other)?)))
}

/// Inserts records with the number of deliveries that reference them (for retention).
async fn insert_records(conn: &mut SqliteConnection, records: &[(&NewRecord, i64)]) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO records (id, workspace_id, kind, body, created_at, refs) VALUES {}",
        placeholders(records.len(), 6)
    );
    let mut query = sqlx::query(&sql);
    for (record, refs) in records {
        query = query
            .bind(&record.id)
            .bind(&record.workspace_id)
            .bind(record.kind.as_str())
            .bind(&record.body)
            .bind(record.created_at)
            .bind(refs);
    }
    query.execute(&mut *conn).await.map_err(map_err)?;
    Ok(())
}

/// Inserts deliveries whose webhook still exists (one deleted meanwhile is skipped).
async fn insert_deliveries(conn: &mut SqliteConnection, deliveries: &[&NewDelivery]) -> StoreResult<()> {
    let sql = format!(
        "WITH d(id, workspace_id, webhook_id, record_ids, created_at, locked_until, lease_token) AS (VALUES {}) \
         INSERT INTO deliveries (id, workspace_id, webhook_id, state, record_ids, next_attempt_at, locked_until, lease_token, created_at, updated_at) \
         SELECT id, workspace_id, webhook_id, 'pending', record_ids, max(created_at, locked_until), locked_until, lease_token, created_at, created_at \
         FROM d WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id)",
        placeholders(deliveries.len(), 7)
    );
    let mut query = sqlx::query(&sql);
    for delivery in deliveries {
        let (token, until) = match &delivery.lease {
            Some(lease) => (Some(lease.token.as_str()), lease.until),
            None => (None, 0),
        };
        query = query
            .bind(&delivery.id)
            .bind(&delivery.workspace_id)
            .bind(&delivery.webhook_id)
            .bind(json_list(&delivery.record_ids))
            .bind(delivery.created_at)
            .bind(until)
            .bind(token);
    }
    query.execute(&mut *conn).await.map_err(map_err)?;
    Ok(())
}
