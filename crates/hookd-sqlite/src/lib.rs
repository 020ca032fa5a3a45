//! hookd's storage contract ([`hookd_core::store::Store`]) on embedded SQLite.
//!
//! One write connection (SQLite has one writer anyway; serializing in the pool avoids
//! `SQLITE_BUSY`) and a few read connections, in WAL mode with `synchronous = FULL`: a commit
//! is on disk before it returns.
//!
//! # Layout
//!
//! - `tenants`: workspaces and API keys.
//! - `webhooks`: webhook rows.
//! - `ingest`: the group-commit transaction (records, deliveries, idempotency keys).
//! - `queue`: claiming, finishing and releasing deliveries.
//! - `deliveries`: the delivery log the API reads, retry and replay.
//! - `retention`: pruning what is old enough.

mod deliveries;
mod ingest;
mod queue;
mod retention;
mod rows;
mod tenants;
mod webhooks;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hookd_core::clock::Millis;
use hookd_core::seal::Sealer;
use hookd_core::store::*;
use hookd_core::webhook::Webhook;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// SQLite storage. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    sealer: Arc<Sealer>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(other)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(map_err)?;
        sqlx::migrate!("./migrations")
            .run(&writer)
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await
            .map_err(map_err)?;
        Ok(Self {
            writer,
            reader,
            sealer: Arc::new(Sealer::none()),
        })
    }

    /// Seals webhooks' secrets with `sealer`'s keys from now on (and opens them with them).
    pub fn with_sealer(mut self, sealer: Arc<Sealer>) -> Self {
        self.sealer = sealer;
        self
    }
}

pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(Box::new(err))
        }
        other => StoreError::Other(Box::new(other)),
    }
}

pub(crate) fn other(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Other(Box::new(err))
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(map_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn create_workspace(&self, workspace: &Workspace) -> StoreResult<()> {
        tenants::create_workspace(&self.writer, workspace).await
    }

    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>> {
        tenants::list_workspaces(&self.reader).await
    }

    async fn get_workspace(&self, id: &str) -> StoreResult<Option<Workspace>> {
        tenants::get_workspace(&self.reader, id).await
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        tenants::create_api_key(&self.writer, key).await
    }

    async fn find_api_key(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        tenants::find_api_key(&self.reader, key_hash).await
    }

    async fn insert_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        webhooks::insert(&self.writer, webhook, &self.sealer).await
    }

    async fn update_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        webhooks::update(&self.writer, webhook, &self.sealer).await
    }

    async fn reseal_webhooks(&self) -> StoreResult<u64> {
        webhooks::reseal(&self.writer, &self.sealer).await
    }

    async fn delete_webhook(&self, workspace_id: &str, id: &str) -> StoreResult<()> {
        webhooks::delete(&self.writer, workspace_id, id).await
    }

    async fn get_webhook(&self, workspace_id: &str, id: &str) -> StoreResult<Option<Webhook>> {
        webhooks::get(&self.reader, workspace_id, id, &self.sealer).await
    }

    async fn list_webhooks(&self, workspace_id: &str) -> StoreResult<Vec<Webhook>> {
        webhooks::list(&self.reader, workspace_id, &self.sealer).await
    }

    async fn enabled_webhooks(&self, workspace_ids: &[String]) -> StoreResult<Vec<Webhook>> {
        webhooks::enabled_in(&self.reader, workspace_ids, &self.sealer).await
    }

    async fn commit_ingest(&self, batch: &[IngestRequest]) -> StoreResult<Vec<IngestResult>> {
        ingest::commit(&self.writer, batch).await
    }

    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Vec<Claimed>> {
        queue::claim_due(&self.writer, request, &self.sealer).await
    }

    async fn finish_many(&self, finishes: &[Finish]) -> StoreResult<Vec<bool>> {
        queue::finish_many(&self.writer, finishes).await
    }

    async fn release(&self, leases: &[(String, String)]) -> StoreResult<()> {
        queue::release(&self.writer, leases).await
    }

    async fn next_wake_at(&self, breaker_threshold: u32) -> StoreResult<Option<Millis>> {
        queue::next_wake_at(&self.reader, breaker_threshold).await
    }

    async fn queue_stats(&self, now: Millis) -> StoreResult<QueueStats> {
        queue::stats(&self.reader, now).await
    }

    async fn prune(&self, cutoffs: &PruneCutoffs, limit: usize) -> StoreResult<PruneReport> {
        retention::prune(&self.writer, cutoffs, limit).await
    }

    async fn list_deliveries(&self, workspace_id: &str, query: &DeliveryQuery) -> StoreResult<Vec<Delivery>> {
        deliveries::list(&self.reader, workspace_id, query).await
    }

    async fn get_delivery(&self, workspace_id: &str, id: &str) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
        deliveries::get(&self.reader, workspace_id, id).await
    }

    async fn retry_delivery(&self, workspace_id: &str, id: &str, now: Millis) -> StoreResult<Option<Delivery>> {
        deliveries::retry(&self.writer, workspace_id, id, now).await
    }

    async fn replay(&self, workspace_id: &str, query: &ReplayQuery, now: Millis) -> StoreResult<u64> {
        deliveries::replay(&self.writer, workspace_id, query, now).await
    }
}
