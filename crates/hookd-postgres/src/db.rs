//! The connection to PostgreSQL: the pool (its schema and statement timeout), migrations,
//! how sqlx's errors become the store's, and the channels processes tell each other on.

use std::str::FromStr;
use std::time::Duration;

use hookd_core::store::StoreError;
use hookd_core::store::StoreResult;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// The channel new work is announced on.
pub(crate) const WORK_CHANNEL: &str = "hookd_work";
/// The channel revoked keys and deleted workspaces are announced on.
pub(crate) const CREDENTIALS_CHANNEL: &str = "hookd_credentials";
/// Announced by a trigger (migration 0007) whenever a webhook row changes what matching reads.
pub(crate) const WEBHOOKS_CHANNEL: &str = "hookd_webhooks";

/// Ids as text, to bind as a PostgreSQL `text[]`.
pub(crate) fn texts<T: AsRef<str>>(ids: &[T]) -> Vec<&str> {
    ids.iter().map(AsRef::as_ref).collect()
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct PgSettings {
    pub url: String,
    pub max_connections: u32,
    /// How long a request waits for a free connection before it fails (with 503).
    pub acquire_timeout: Duration,
    /// Longest a statement may run.
    pub statement_timeout: Duration,
    /// A schema to use instead of `public` (created if missing; tests use one each).
    pub schema: Option<String>,
}

/// Connects, creating the schema if one is set, and applies migrations (under an advisory lock).
pub(crate) async fn connect(settings: &PgSettings) -> StoreResult<PgPool> {
    let mut options = PgConnectOptions::from_str(&settings.url).map_err(other)?;
    let timeout = format!("{}ms", settings.statement_timeout.as_millis());
    let mut params = vec![("statement_timeout", timeout.as_str())];
    if let Some(schema) = &settings.schema {
        params.push(("search_path", schema.as_str()));
    }
    options = options.options(params);
    if let Some(schema) = &settings.schema {
        // Under a lock: concurrent `CREATE SCHEMA IF NOT EXISTS` can fail in PostgreSQL.
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(map_err)?;
        let mut tx = admin.begin().await.map_err(map_err)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('hookd.create_schema'))")
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", schema.replace('"', "")))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        admin.close().await;
    }
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(map_err)?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .map_err(|e| StoreError::Other(Box::new(e)))?;
    Ok(pool)
}

/// A transaction for the queue's own bookkeeping (claims, attempt results, released leases):
/// its commit returns without waiting for PostgreSQL to flush it to disk
/// (`synchronous_commit = off`, for this transaction only). A crash of the database server can
/// lose such a commit from its last moments, never half of one: a lost lease is one that never
/// existed, a lost result an attempt made again, which at-least-once delivery allows; the
/// next flushed commit makes everything before it durable. Ingest and every API write flush.
pub(crate) async fn begin_relaxed(pool: &PgPool) -> StoreResult<sqlx::Transaction<'static, sqlx::Postgres>> {
    pool.begin_with("BEGIN; SET LOCAL synchronous_commit = off")
        .await
        .map_err(map_err)
}

pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            StoreError::Unavailable(Box::new(err))
        }
        // The server shutting down or refusing connections answers with these classes.
        sqlx::Error::Database(ref db) if db.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")) => {
            StoreError::Unavailable(Box::new(err))
        }
        other => StoreError::Other(Box::new(other)),
    }
}

pub(crate) fn other(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Other(Box::new(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_relaxed_transaction_commits_without_the_flush_and_leaves_the_connection_as_it_was() {
        let Some(url) = crate::testing::url().await else {
            return;
        };
        let pool = PgPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
        let show = "SHOW synchronous_commit";
        let before: String = sqlx::query_scalar(show).fetch_one(&pool).await.unwrap();
        let mut tx = begin_relaxed(&pool).await.unwrap();
        let inside: String = sqlx::query_scalar(show).fetch_one(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
        let after: String = sqlx::query_scalar(show).fetch_one(&pool).await.unwrap();
        assert_eq!(inside, "off");
        assert_eq!(after, before, "SET LOCAL ends with its transaction");
        pool.close().await;
    }
}
