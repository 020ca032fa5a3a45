//! The ingest transaction: every request of a group commit, written at once, and the new work
//! announced to every worker when it commits.

use hookd_core::store::{
    Coalescing, DeviceSeen, IngestRequest, IngestResult, Insert, NewDelivery, NewRecord, Newest, Placement,
    StoreResult, place,
};
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
    let mut heard: Vec<(&str, &DeviceSeen)> = Vec::new();
    for request in &written {
        heard.extend(request.devices.iter().map(|d| (request.workspace_id.as_str(), d)));
    }
    crate::presence::seen(&mut tx, &heard).await?;
    insert_deliveries(&mut tx, &written).await?;
    coalesce_deliveries(&mut tx, &written).await?;
    for request in &written {
        if let Some(door) = &request.door {
            let log = hookd_core::store::SourceRequest {
                record_ids: request.records.iter().map(|r| r.id.clone()).collect(),
                ..door.log.clone()
            };
            crate::sources::log_request(&mut tx, &log).await?;
        }
    }
    // Deliveries leased at commit are this process's already; only unleased ones are work for
    // every worker to hear of.
    if written.iter().flat_map(|r| &r.deliveries).any(|d| d.lease.is_none()) {
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

/// The deliveries without a coalescing key whose webhook still exists (one deleted meanwhile
/// is skipped). Each one's record ids travel as a JSON array (arrays of arrays cannot be
/// unnested row by row).
async fn insert_deliveries(conn: &mut PgConnection, requests: &[&IngestRequest]) -> StoreResult<()> {
    let deliveries: Vec<&NewDelivery> = requests
        .iter()
        .flat_map(|r| &r.deliveries)
        .filter(|d| d.coalescing.is_none())
        .collect();
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
    let order = order_positions(conn, &deliveries).await?;
    sqlx::query(
        "INSERT INTO deliveries (id, workspace_id, webhook_id, state, record_ids, next_attempt_at, locked_until, lease_token, \
           created_at, updated_at, planned_at, ordering_key, order_seq) \
         SELECT d.id, d.workspace_id, d.webhook_id, 'pending', ARRAY(SELECT jsonb_array_elements_text(d.record_ids::jsonb)), \
           GREATEST(d.due_at, d.locked_until), d.locked_until, d.lease_token, d.created_at, d.created_at, d.due_at, d.ordering_key, \
           d.order_seq \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::bigint[], $9::text[], $10::bigint[]) \
           AS d(id, workspace_id, webhook_id, record_ids, created_at, locked_until, lease_token, due_at, ordering_key, order_seq) \
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
    .bind(deliveries.iter().map(|d| d.ordering_key.as_deref()).collect::<Vec<_>>())
    .bind(&order)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Each ordered delivery's place in its lane, in the order planned: sequence numbers taken
/// now and handed out in that order (a statement's rows may be written in any order).
async fn order_positions(conn: &mut PgConnection, deliveries: &[&NewDelivery]) -> StoreResult<Vec<Option<i64>>> {
    let ordered = deliveries.iter().filter(|d| d.ordering_key.is_some()).count();
    if ordered == 0 {
        return Ok(vec![None; deliveries.len()]);
    }
    let mut taken: Vec<i64> = sqlx::query_scalar("SELECT nextval('deliveries_order_seq') FROM generate_series(1, $1)")
        .bind(ordered as i64)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_err)?;
    taken.sort_unstable();
    let mut next = taken.into_iter();
    Ok(deliveries
        .iter()
        .map(|d| d.ordering_key.as_ref().and_then(|_| next.next()))
        .collect())
}

/// The deliveries with a coalescing key, one at a time: each joins the newest delivery of its
/// key while that one is open, else goes in on its own, spaced from it ([`place`]). Each key
/// is locked for the transaction first (in one order, so two commits cannot deadlock), so
/// processes committing for the same key take turns and the newest they read is the newest.
async fn coalesce_deliveries(conn: &mut PgConnection, requests: &[&IngestRequest]) -> StoreResult<()> {
    let keyed: Vec<(&NewDelivery, &Coalescing)> = requests
        .iter()
        .flat_map(|r| &r.deliveries)
        .filter_map(|d| d.coalescing.as_ref().map(|c| (d, c)))
        .collect();
    if keyed.is_empty() {
        return Ok(());
    }
    let mut locks: Vec<String> = keyed
        .iter()
        .map(|(d, c)| format!("{}/{}", d.webhook_id, c.key))
        .collect();
    locks.sort();
    locks.dedup();
    // A function scan yields the array's elements in order.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM UNNEST($1::text[]) AS l(k)")
        .bind(&locks)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    for (delivery, coalescing) in keyed {
        let newest = sqlx::query(
            "SELECT id, state = 'pending' AND attempts = 0 AND lease_token IS NULL AND next_attempt_at > 0 AS open, \
               record_ids, planned_at, next_attempt_at, device_time, coalesced, superseded \
             FROM deliveries WHERE webhook_id = $1 AND coalescing_key = $2 ORDER BY id DESC LIMIT 1 FOR UPDATE",
        )
        .bind(delivery.webhook_id.as_str())
        .bind(&coalescing.key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?
        .map(|row| {
            Ok::<_, sqlx::Error>(Newest {
                id: row.try_get::<String, _>("id")?.into(),
                open: row.try_get("open")?,
                record_ids: row.try_get("record_ids")?,
                planned_at: row.try_get("planned_at")?,
                next_attempt_at: row.try_get("next_attempt_at")?,
                rank: row.try_get("device_time")?,
                coalesced: row.try_get::<i32, _>("coalesced")? as u32,
                superseded: row.try_get::<i32, _>("superseded")? as u32,
            })
        })
        .transpose()
        .map_err(map_err)?;
        match place(delivery, coalescing, newest.as_ref(), delivery.created_at) {
            Placement::Insert(how) => insert_keyed(conn, delivery, &how).await?,
            Placement::Join { open, dropped, rest } => {
                sqlx::query(
                    "UPDATE deliveries SET record_ids = $2, next_attempt_at = $3, device_time = $4, coalesced = $5, \
                       superseded = $6, updated_at = $7 WHERE id = $1",
                )
                .bind(open.id.as_str())
                .bind(&open.record_ids)
                .bind(open.next_attempt_at)
                .bind(open.rank)
                .bind(open.coalesced as i32)
                .bind(open.superseded as i32)
                .bind(delivery.created_at)
                .execute(&mut *conn)
                .await
                .map_err(map_err)?;
                sqlx::query("UPDATE records SET refs = refs - 1 WHERE id = ANY($1)")
                    .bind(&dropped)
                    .execute(&mut *conn)
                    .await
                    .map_err(map_err)?;
                if let Some(rest) = rest {
                    insert_keyed(conn, delivery, &rest).await?;
                }
            }
        }
    }
    Ok(())
}

async fn insert_keyed(conn: &mut PgConnection, delivery: &NewDelivery, how: &Insert<'_>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO deliveries (id, workspace_id, webhook_id, state, record_ids, next_attempt_at, created_at, updated_at, \
           planned_at, ordering_key, coalescing_key, device_time, coalesced, superseded, order_seq) \
         SELECT $1, $2, $3, 'pending', $4, $5, $6, $6, $5, $7, $8, $9, $10, $11, \
           CASE WHEN $7::text IS NOT NULL THEN nextval('deliveries_order_seq') END \
         WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.id = $3)",
    )
    .bind(delivery.id.as_str())
    .bind(&delivery.workspace_id)
    .bind(delivery.webhook_id.as_str())
    .bind(&how.record_ids[..])
    .bind(how.due_at)
    .bind(delivery.created_at)
    .bind(delivery.ordering_key.as_deref())
    .bind(delivery.coalescing.as_ref().map(|c| c.key.as_str()))
    .bind(how.rank)
    .bind(how.coalesced as i32)
    .bind(how.superseded as i32)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}
