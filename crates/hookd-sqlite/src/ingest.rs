//! The ingest transaction: every request of a group commit, written at once.

use hookd_core::store::{IngestRequest, IngestResult, StoreResult};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::map_err;
use crate::rows::json_list;

pub(crate) async fn commit(pool: &SqlitePool, batch: &[IngestRequest]) -> StoreResult<Vec<IngestResult>> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        results.push(write_request(&mut tx, request).await?);
    }
    tx.commit().await.map_err(map_err)?;
    Ok(results)
}

async fn write_request(conn: &mut SqliteConnection, request: &IngestRequest) -> StoreResult<IngestResult> {
    if let Some(idem) = &request.idempotency {
        let seen =
            sqlx::query("SELECT request_hash, record_ids FROM idempotency_keys WHERE workspace_id = ? AND key = ?")
                .bind(&request.workspace_id)
                .bind(&idem.key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(map_err)?;
        if let Some(row) = seen {
            let hash: String = row.try_get("request_hash").map_err(map_err)?;
            if hash != idem.request_hash {
                return Ok(IngestResult::KeyConflict);
            }
            let ids: String = row.try_get("record_ids").map_err(map_err)?;
            return Ok(IngestResult::Replayed(
                serde_json::from_str(&ids).map_err(crate::other)?,
            ));
        }
    }
    for record in &request.records {
        sqlx::query("INSERT INTO records (id, workspace_id, kind, body, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&record.id)
            .bind(&record.workspace_id)
            .bind(record.kind.as_str())
            .bind(&record.body)
            .bind(record.created_at)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    for delivery in &request.deliveries {
        let (lease_token, locked_until) = match &delivery.lease {
            Some(lease) => (Some(lease.token.as_str()), lease.until),
            None => (None, 0),
        };
        sqlx::query(
            "INSERT INTO deliveries (id, workspace_id, webhook_id, state, record_ids, next_attempt_at, locked_until, lease_token, created_at, updated_at) \
             SELECT ?1, ?2, ?3, 'pending', ?4, max(?5, ?6), ?6, ?7, ?5, ?5 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?3)",
        )
        .bind(&delivery.id)
        .bind(&delivery.workspace_id)
        .bind(&delivery.webhook_id)
        .bind(json_list(&delivery.record_ids))
        .bind(delivery.created_at)
        .bind(locked_until)
        .bind(lease_token)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    }
    let ids: Vec<String> = request.records.iter().map(|r| r.id.clone()).collect();
    if let Some(idem) = &request.idempotency {
        sqlx::query("INSERT INTO idempotency_keys (workspace_id, key, request_hash, record_ids, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&request.workspace_id)
            .bind(&idem.key)
            .bind(&idem.request_hash)
            .bind(json_list(&ids))
            .bind(request.records.first().map_or(0, |r| r.created_at))
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
    }
    Ok(IngestResult::Committed(ids))
}
