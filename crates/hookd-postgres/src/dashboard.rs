//! What the dashboard keeps: attempt tallies per webhook and minute, sign-ins and portal links.

use hookd_core::clock::Millis;
use hookd_core::store::{Access, LATENCY_BUCKETS, MinuteTally, Pass, StoreError, StoreResult, Tally, TallyQuery};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::db::map_err;

/// `sum(l0)::bigint AS l0, …`.
fn latency_sums() -> String {
    (0..LATENCY_BUCKETS)
        .map(|b| format!("sum(l{b})::bigint AS l{b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds a batch's tallies to their minutes, in the transaction that records the attempts, in
/// one order (so two processes' batches cannot deadlock on the same minutes).
pub(crate) async fn add_tallies(tx: &mut PgConnection, mut tallies: Vec<MinuteTally>) -> StoreResult<()> {
    tallies.sort_by(|a, b| (&a.webhook_id, a.minute).cmp(&(&b.webhook_id, b.minute)));
    let columns: Vec<String> = (0..LATENCY_BUCKETS).map(|b| format!("l{b}")).collect();
    let sql = format!(
        "INSERT INTO attempt_minutes AS m (webhook_id, workspace_id, minute, delivered, retrying, failed, {}) \
         SELECT id, workspace_id, $2, $3, $4, $5, {} FROM webhooks WHERE id = $1 \
         ON CONFLICT (webhook_id, minute) DO UPDATE SET delivered = m.delivered + excluded.delivered, \
           retrying = m.retrying + excluded.retrying, failed = m.failed + excluded.failed, {}",
        columns.join(", "),
        (0..LATENCY_BUCKETS)
            .map(|b| format!("${}", b + 6))
            .collect::<Vec<_>>()
            .join(", "),
        columns
            .iter()
            .map(|c| format!("{c} = m.{c} + excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    for t in &tallies {
        let mut query = sqlx::query(&sql)
            .bind(&t.webhook_id)
            .bind(t.minute)
            .bind(t.tally.delivered as i64)
            .bind(t.tally.retrying as i64)
            .bind(t.tally.failed as i64);
        for count in t.tally.latency {
            query = query.bind(count as i64);
        }
        query.execute(&mut *tx).await.map_err(map_err)?;
    }
    Ok(())
}

fn tally(row: &PgRow) -> Result<Tally, sqlx::Error> {
    let mut tally = Tally {
        delivered: row.try_get::<i64, _>("delivered")? as u64,
        retrying: row.try_get::<i64, _>("retrying")? as u64,
        failed: row.try_get::<i64, _>("failed")? as u64,
        ..Tally::default()
    };
    for (bucket, count) in tally.latency.iter_mut().enumerate() {
        *count = row.try_get::<i64, _>(format!("l{bucket}").as_str())? as u64;
    }
    Ok(tally)
}

const SUMS: &str =
    "sum(delivered)::bigint AS delivered, sum(retrying)::bigint AS retrying, sum(failed)::bigint AS failed";

pub(crate) async fn by_minute(pool: &PgPool, q: &TallyQuery) -> StoreResult<Vec<(Millis, Tally)>> {
    let sql = format!(
        "SELECT minute, {SUMS}, {} FROM attempt_minutes \
         WHERE workspace_id = $1 AND minute >= $2 AND ($3::text IS NULL OR webhook_id = $3) GROUP BY minute ORDER BY minute",
        latency_sums()
    );
    let rows = sqlx::query(&sql)
        .bind(&q.workspace_id)
        .bind(q.since)
        .bind(&q.webhook_id)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    rows.iter()
        .map(|row| Ok((row.try_get("minute")?, tally(row)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(map_err)
}

pub(crate) async fn by_webhook(pool: &PgPool, workspace_id: &str, since: Millis) -> StoreResult<Vec<(String, Tally)>> {
    let sql = format!(
        "SELECT webhook_id, {SUMS}, {} FROM attempt_minutes WHERE workspace_id = $1 AND minute >= $2 GROUP BY webhook_id",
        latency_sums()
    );
    let rows = sqlx::query(&sql)
        .bind(workspace_id)
        .bind(since)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    rows.iter()
        .map(|row| Ok((row.try_get("webhook_id")?, tally(row)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(map_err)
}

const PASS_COLUMNS: &str = "id, link, granted_by, workspace_id, access, csrf, created_at, expires_at";

fn pass(row: &PgRow) -> StoreResult<Pass> {
    let access: String = row.try_get("access").map_err(map_err)?;
    Ok(Pass {
        id: row.try_get("id").map_err(map_err)?,
        link: row.try_get("link").map_err(map_err)?,
        granted_by: row.try_get("granted_by").map_err(map_err)?,
        workspace_id: row.try_get("workspace_id").map_err(map_err)?,
        access: Access::parse(&access).ok_or_else(|| StoreError::corrupt("dashboard access", &access))?,
        csrf: row.try_get("csrf").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        expires_at: row.try_get("expires_at").map_err(map_err)?,
    })
}

pub(crate) async fn insert_pass(pool: &PgPool, p: &Pass) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(map_err)?;
    sqlx::query("DELETE FROM dashboard_passes WHERE expires_at <= $1")
        .bind(p.created_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    sqlx::query(&format!(
        "INSERT INTO dashboard_passes ({PASS_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(&p.id)
    .bind(p.link)
    .bind(&p.granted_by)
    .bind(&p.workspace_id)
    .bind(p.access.as_str())
    .bind(&p.csrf)
    .bind(p.created_at)
    .bind(p.expires_at)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    tx.commit().await.map_err(map_err)
}

pub(crate) async fn get_pass(pool: &PgPool, id: &str, now: Millis) -> StoreResult<Option<Pass>> {
    let row = sqlx::query(&format!(
        "SELECT {PASS_COLUMNS} FROM dashboard_passes WHERE id = $1 AND expires_at > $2"
    ))
    .bind(id)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(map_err)?;
    row.as_ref().map(pass).transpose()
}

pub(crate) async fn delete_pass(pool: &PgPool, id: &str) -> StoreResult<bool> {
    let deleted = sqlx::query("DELETE FROM dashboard_passes WHERE id = $1 OR granted_by = $1")
        .bind(id)
        .execute(pool)
        .await
        .map_err(map_err)?;
    Ok(deleted.rows_affected() > 0)
}

pub(crate) async fn list_links(pool: &PgPool, workspace_id: &str, now: Millis) -> StoreResult<Vec<Pass>> {
    let rows = sqlx::query(&format!(
        "SELECT {PASS_COLUMNS} FROM dashboard_passes WHERE link AND workspace_id = $1 AND expires_at > $2 ORDER BY created_at DESC"
    ))
    .bind(workspace_id)
    .bind(now)
    .fetch_all(pool)
    .await
    .map_err(map_err)?;
    rows.iter().map(pass).collect()
}
