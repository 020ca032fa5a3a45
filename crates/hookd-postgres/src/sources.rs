//! Sources, their request log, and the message ids remembered against replays.

use hookd_core::clock::Millis;
use hookd_core::seal::Sealer;
use hookd_core::source::Source;
use hookd_core::store::{
    RequestOutcome, SourceRequest, SourceRequestQuery, StoreError, StoreResult, open_source_spec, resealed_source_spec,
    seal_source_spec,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::db::map_err;

const COLUMNS: &str = "id, workspace_id, spec, created_at, updated_at";

fn source(row: &PgRow, sealer: &Sealer) -> StoreResult<Source> {
    let id: String = row.try_get("id").map_err(map_err)?;
    let stored: String = row.try_get("spec").map_err(map_err)?;
    Ok(Source {
        spec: open_source_spec(&id, &stored, sealer)?,
        id,
        workspace_id: row.try_get("workspace_id").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        updated_at: row.try_get("updated_at").map_err(map_err)?,
    })
}

pub(crate) async fn insert(pool: &PgPool, s: &Source, sealer: &Sealer) -> StoreResult<()> {
    sqlx::query("INSERT INTO sources (id, workspace_id, spec, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&s.id)
        .bind(&s.workspace_id)
        .bind(seal_source_spec(&s.id, &s.spec, sealer))
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(pool)
        .await
        .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn update(pool: &PgPool, s: &Source, sealer: &Sealer) -> StoreResult<()> {
    let done = sqlx::query("UPDATE sources SET spec = $1, updated_at = $2 WHERE id = $3 AND workspace_id = $4")
        .bind(seal_source_spec(&s.id, &s.spec, sealer))
        .bind(s.updated_at)
        .bind(&s.id)
        .bind(&s.workspace_id)
        .execute(pool)
        .await
        .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn delete(pool: &PgPool, workspace_id: &str, id: &str) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    let done = sqlx::query("DELETE FROM sources WHERE id = $1 AND workspace_id = $2")
        .bind(id)
        .bind(workspace_id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    for sql in [
        "DELETE FROM source_requests WHERE source_id = $1",
        "DELETE FROM source_messages WHERE source_id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *tx).await.map_err(map_err)?;
    }
    tx.commit().await.map_err(map_err)?;
    Ok(())
}

pub(crate) async fn get(
    pool: &PgPool,
    workspace_id: Option<&str>,
    id: &str,
    sealer: &Sealer,
) -> StoreResult<Option<Source>> {
    let sql = format!("SELECT {COLUMNS} FROM sources WHERE id = $1 AND ($2::text IS NULL OR workspace_id = $2)");
    let found = sqlx::query(&sql)
        .bind(id)
        .bind(workspace_id)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    found.map(|row| source(&row, sealer)).transpose()
}

pub(crate) async fn list(pool: &PgPool, workspace_id: &str, sealer: &Sealer) -> StoreResult<Vec<Source>> {
    let sql = format!("SELECT {COLUMNS} FROM sources WHERE workspace_id = $1 ORDER BY id");
    let found = sqlx::query(&sql)
        .bind(workspace_id)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    found.iter().map(|row| source(row, sealer)).collect()
}

const REQUEST_COLUMNS: &str = "id, workspace_id, source_id, received_at, method, headers, query, body, body_truncated, \
     outcome, reason, explanation, record_ids";

fn request(row: &PgRow) -> StoreResult<SourceRequest> {
    let outcome: String = row.try_get("outcome").map_err(map_err)?;
    Ok(SourceRequest {
        id: row.try_get("id").map_err(map_err)?,
        workspace_id: row.try_get("workspace_id").map_err(map_err)?,
        source_id: row.try_get("source_id").map_err(map_err)?,
        received_at: row.try_get("received_at").map_err(map_err)?,
        method: row.try_get("method").map_err(map_err)?,
        headers: row.try_get("headers").map_err(map_err)?,
        query: row.try_get("query").map_err(map_err)?,
        body: row.try_get("body").map_err(map_err)?,
        body_truncated: row.try_get("body_truncated").map_err(map_err)?,
        outcome: RequestOutcome::from_stored(&outcome)?,
        reason: row.try_get("reason").map_err(map_err)?,
        explanation: row.try_get("explanation").map_err(map_err)?,
        record_ids: row.try_get("record_ids").map_err(map_err)?,
    })
}

pub(crate) async fn log_request(conn: &mut PgConnection, r: &SourceRequest) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO source_requests ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (id) DO UPDATE SET outcome = excluded.outcome, reason = excluded.reason, \
           explanation = excluded.explanation, record_ids = excluded.record_ids"
    );
    sqlx::query(&sql)
        .bind(&r.id)
        .bind(&r.workspace_id)
        .bind(&r.source_id)
        .bind(r.received_at)
        .bind(&r.method)
        .bind(&r.headers)
        .bind(&r.query)
        .bind(&r.body)
        .bind(r.body_truncated)
        .bind(r.outcome.as_str())
        .bind(&r.reason)
        .bind(&r.explanation)
        .bind(&r.record_ids)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

pub(crate) async fn list_requests(
    pool: &PgPool,
    workspace_id: &str,
    source_id: &str,
    q: &SourceRequestQuery,
) -> StoreResult<Vec<SourceRequest>> {
    let sql = format!(
        "SELECT {REQUEST_COLUMNS} FROM source_requests WHERE source_id = $1 AND workspace_id = $2 \
         AND ($3::text IS NULL OR outcome = $3) AND ($4::text IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
    );
    let found = sqlx::query(&sql)
        .bind(source_id)
        .bind(workspace_id)
        .bind(q.outcome.map(RequestOutcome::as_str))
        .bind(q.after.as_deref())
        .bind(q.limit as i64)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    found.iter().map(request).collect()
}

pub(crate) async fn get_request(
    pool: &PgPool,
    workspace_id: &str,
    source_id: &str,
    id: &str,
) -> StoreResult<Option<SourceRequest>> {
    let sql =
        format!("SELECT {REQUEST_COLUMNS} FROM source_requests WHERE id = $1 AND source_id = $2 AND workspace_id = $3");
    let found = sqlx::query(&sql)
        .bind(id)
        .bind(source_id)
        .bind(workspace_id)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    found.as_ref().map(request).transpose()
}

pub(crate) async fn remember(
    conn: &mut PgConnection,
    source_id: &str,
    message_id: &str,
    now: Millis,
    until: Millis,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO source_messages (source_id, message_id, until) VALUES ($1, $2, $3) \
         ON CONFLICT (source_id, message_id) DO UPDATE SET until = excluded.until WHERE source_messages.until <= $4",
    )
    .bind(source_id)
    .bind(message_id)
    .bind(until)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(done.rows_affected() == 1)
}

/// Every source's spec in the form `sealer` writes; how many changed.
pub(crate) async fn reseal(pool: &PgPool, sealer: &Sealer) -> StoreResult<u64> {
    let found = sqlx::query("SELECT id, spec FROM sources")
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    let mut changed = 0;
    for row in &found {
        let id: String = row.try_get("id").map_err(map_err)?;
        let stored: String = row.try_get("spec").map_err(map_err)?;
        if let Some(resealed) = resealed_source_spec(&id, &stored, sealer)? {
            // Only if unchanged since read: a source updated meanwhile is already in the new form.
            let done = sqlx::query("UPDATE sources SET spec = $1 WHERE id = $2 AND spec = $3")
                .bind(&resealed)
                .bind(&id)
                .bind(&stored)
                .execute(pool)
                .await
                .map_err(map_err)?;
            changed += done.rows_affected();
        }
    }
    Ok(changed)
}
