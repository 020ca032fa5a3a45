//! The ingest transaction: every request of a group commit, written at once, and the new work
//! announced to every worker when it commits.

use hookd_core::store::{IngestRequest, IngestResult, NewDelivery, NewRecord, StoreResult};
use sqlx::{PgConnection, PgPool, Row};

use crate::db::{WORK_CHANNEL, map_err};

pub(crate) async fn commit(pool: &PgPool, batch: &[IngestRequest]) -> StoreResult<Vec<IngestResult>> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let mut results = Vec::with_capacity(batch.len());
    let mut written: Vec<&IngestRequest> = Vec::with_capacity(batch.len());
    for request in batch {
        let ids: Vec<String> = request.records.iter().map(|r| r.id.clone()).collect();
        if let Some(m) = request.door.as_ref().and_then(|d| d.message.as_ref())
            && !crate::sources::remember(&mut tx, &m.source_id, &m.message_id, m.now, m.until).await?
        {
            results.push(IngestResult::MessageSeen);
            continue;
        }
        match claim_key(&mut tx, request, &ids).await? {
            Some(earlier) => results.push(earlier),
            None => {
                written.push(request);
                results.push(IngestResult::Committed(ids));
            }
        }
    }
    // Every record and every delivery of the batch in one statement each (a statement per
    // row would be a round trip per row).
    insert_records(&mut tx, &written).await?;
    insert_deliveries(&mut tx, &written).await?;
    for request in &written {
        if let Some(door) = &request.door {
            let log = hookd_core::store::SourceRequest {
                record_ids: request.records.iter().map(|r| r.id.clone()).collect(),
                ..door.log.clone()
            };
            crate::sources::log_request(&mut tx, &log).await?;
        }
    }
    if written.iter().any(|r| !r.deliveries.is_empty()) {
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

/// Claims the request's idempotency key, if it has one. `Some` is the answer to a key used
/// before (in an earlier transaction or earlier in this batch): nothing of the request is
/// written.
async fn claim_key(
    conn: &mut PgConnection,
    request: &IngestRequest,
    ids: &[String],
) -> StoreResult<Option<IngestResult>> {
    let Some(idem) = &request.idempotency else {
        return Ok(None);
    };
    // A concurrent request with the same key (in another process) waits here for ours to
    // commit or roll back.
    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (workspace_id, key, request_hash, record_ids, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (workspace_id, key) DO NOTHING",
    )
    .bind(&request.workspace_id)
    .bind(&idem.key)
    .bind(&idem.request_hash)
    .bind(ids)
    .bind(request.records.first().map_or(0, |r| r.created_at))
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    if claimed.rows_affected() == 1 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT request_hash, record_ids FROM idempotency_keys WHERE workspace_id = $1 AND key = $2")
        .bind(&request.workspace_id)
        .bind(&idem.key)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err)?;
    let hash: String = row.try_get("request_hash").map_err(map_err)?;
    if hash != idem.request_hash {
        return Ok(Some(IngestResult::KeyConflict));
    }
    Ok(Some(IngestResult::Replayed(
        row.try_get("record_ids").map_err(map_err)?,
    )))
}

/// The records, with the number of deliveries that reference them (for retention).
async fn insert_records(conn: &mut PgConnection, requests: &[&IngestRequest]) -> StoreResult<()> {
    let refs: Vec<i64> = requests.iter().flat_map(|r| r.references()).collect();
    let records: Vec<&NewRecord> = requests.iter().flat_map(|r| &r.records).collect();
    if records.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&NewRecord) -> &str| records.iter().map(|r| f(r)).collect::<Vec<&str>>();
    let times: Vec<i64> = records.iter().map(|r| r.created_at).collect();
    sqlx::query(
        "INSERT INTO records (id, workspace_id, kind, body, created_at, refs) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])",
    )
    .bind(column(|r| &r.id))
    .bind(column(|r| &r.workspace_id))
    .bind(column(|r| r.kind.as_str()))
    .bind(column(|r| &r.body))
    .bind(&times)
    .bind(&refs)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// The deliveries whose webhook still exists (one deleted meanwhile is skipped). Each one's
/// record ids travel as a JSON array (arrays of arrays cannot be unnested row by row).
async fn insert_deliveries(conn: &mut PgConnection, requests: &[&IngestRequest]) -> StoreResult<()> {
    let deliveries: Vec<&NewDelivery> = requests.iter().flat_map(|r| &r.deliveries).collect();
    if deliveries.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&NewDelivery) -> &str| deliveries.iter().map(|d| f(d)).collect::<Vec<&str>>();
    let record_ids: Vec<String> = deliveries
        .iter()
        .map(|d| serde_json::Value::from(d.record_ids.clone()).to_string())
        .collect();
    let created: Vec<i64> = deliveries.iter().map(|d| d.created_at).collect();
    let due: Vec<i64> = deliveries.iter().map(|d| d.due_at).collect();
    let locked_until: Vec<i64> = deliveries
        .iter()
        .map(|d| d.lease.as_ref().map_or(0, |l| l.until))
        .collect();
    let tokens: Vec<Option<&str>> = deliveries
        .iter()
        .map(|d| d.lease.as_ref().map(|l| l.token.as_str()))
        .collect();
    sqlx::query(
        "INSERT INTO deliveries (id, workspace_id, webhook_id, state, record_ids, next_attempt_at, locked_until, lease_token, created_at, updated_at) \
         SELECT d.id, d.workspace_id, d.webhook_id, 'pending', ARRAY(SELECT jsonb_array_elements_text(d.record_ids::jsonb)), \
           GREATEST(d.due_at, d.locked_until), d.locked_until, d.lease_token, d.created_at, d.created_at \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::bigint[]) \
           AS d(id, workspace_id, webhook_id, record_ids, created_at, locked_until, lease_token, due_at) \
         WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id)",
    )
    .bind(column(|d| &d.id))
    .bind(column(|d| &d.workspace_id))
    .bind(column(|d| &d.webhook_id))
    .bind(&record_ids)
    .bind(&created)
    .bind(&locked_until)
    .bind(&tokens)
    .bind(&due)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}
