//! The ingest transaction: every request of a group commit, written at once, and the new work
//! announced to every worker when it commits.

use hookd_core::store::{IngestRequest, IngestResult, StoreResult};
use sqlx::{PgConnection, PgPool, Row};

use crate::{WORK_CHANNEL, map_err};

pub(crate) async fn commit(pool: &PgPool, batch: &[IngestRequest]) -> StoreResult<Vec<IngestResult>> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        results.push(write_request(&mut tx, request).await?);
    }
    if batch.iter().any(|r| !r.deliveries.is_empty()) {
        // Delivered to listeners when (and only if) the transaction commits.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WORK_CHANNEL)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
    }
    tx.commit().await.map_err(map_err)?;
    Ok(results)
}

async fn write_request(conn: &mut PgConnection, request: &IngestRequest) -> StoreResult<IngestResult> {
    let ids: Vec<String> = request.records.iter().map(|r| r.id.clone()).collect();
    if let Some(idem) = &request.idempotency {
        // Claim the key first: a concurrent request with the same key (in another process)
        // waits here for ours to commit or roll back.
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (workspace_id, key, request_hash, record_ids, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (workspace_id, key) DO NOTHING",
        )
        .bind(&request.workspace_id)
        .bind(&idem.key)
        .bind(&idem.request_hash)
        .bind(&ids)
        .bind(request.records.first().map_or(0, |r| r.created_at))
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        if claimed.rows_affected() == 0 {
            let row = sqlx::query(
                "SELECT request_hash, record_ids FROM idempotency_keys WHERE workspace_id = $1 AND key = $2",
            )
            .bind(&request.workspace_id)
            .bind(&idem.key)
            .fetch_one(&mut *conn)
            .await
            .map_err(map_err)?;
            let hash: String = row.try_get("request_hash").map_err(map_err)?;
            if hash != idem.request_hash {
                return Ok(IngestResult::KeyConflict);
            }
            return Ok(IngestResult::Replayed(row.try_get("record_ids").map_err(map_err)?));
        }
    }
    if !request.records.is_empty() {
        let kinds: Vec<&str> = request.records.iter().map(|r| r.kind.as_str()).collect();
        let bodies: Vec<&str> = request.records.iter().map(|r| r.body.as_str()).collect();
        let times: Vec<i64> = request.records.iter().map(|r| r.created_at).collect();
        let refs = request.references();
        sqlx::query(
            "INSERT INTO records (id, workspace_id, kind, body, created_at, refs) \
             SELECT id, $2, kind, body, created_at, refs \
             FROM UNNEST($1::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[]) AS r(id, kind, body, created_at, refs)",
        )
        .bind(&ids)
        .bind(&request.workspace_id)
        .bind(&kinds)
        .bind(&bodies)
        .bind(&times)
        .bind(&refs)
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
             SELECT $1, $2, $3, 'pending', $4, GREATEST($5, $6), $6, $7, $5, $5 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $3)",
        )
        .bind(&delivery.id)
        .bind(&delivery.workspace_id)
        .bind(&delivery.webhook_id)
        .bind(&delivery.record_ids)
        .bind(delivery.created_at)
        .bind(locked_until)
        .bind(lease_token)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    }
    Ok(IngestResult::Committed(ids))
}
