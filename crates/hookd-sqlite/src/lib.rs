//! hookd's storage contract ([`hookd_core::store::Store`]) on embedded SQLite.
//!
//! One write connection (SQLite has one writer anyway) and a few read connections, each on a
//! thread of its own (`db`), in WAL mode with `synchronous = FULL`: a commit is on disk before
//! it returns. Claims, attempt results and released leases commit with `synchronous = NORMAL`
//! (on disk at the next full commit or checkpoint; a crash of the machine can lose only what
//! at-least-once delivery allows: a lease, or a result, so an attempt is made again). Every call is one job on one of those threads, so a transaction costs one
//! hand-off from async code however many rows it writes.
//!
//! # Layout
//!
//! - `db`: the connection threads, opening, migrations, errors.
//! - `tenants`: workspaces and API keys.
//! - `webhooks`: webhook rows.
//! - `ingest`: the group-commit transaction (records, deliveries, idempotency keys).
//! - `queue`: claiming, finishing and releasing deliveries.
//! - `deliveries`: the delivery log the API reads, retry and replay.
//! - `retention`: pruning what is old enough.
//! - `dashboard`: attempt tallies per minute, dashboard sign-ins and portal links.

mod dashboard;
mod db;
mod deliveries;
mod ingest;
mod presence;
mod queue;
mod retention;
mod rows;
mod sources;
mod tenants;
mod webhooks;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use hookd_core::clock::Millis;
use hookd_core::id::{DeliveryId, LeaseToken};
use hookd_core::seal::Sealer;
use hookd_core::source::Source;
use hookd_core::store::*;
use hookd_core::webhook::Webhook;

use crate::db::{Db, Durability, Turn};

/// SQLite storage. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Arc<Db>,
    sealer: Arc<Sealer>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let path = path.to_owned();
        let db = tokio::task::spawn_blocking(move || Db::open(&path))
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))??;
        Ok(Self {
            db: Arc::new(db),
            sealer: Arc::new(Sealer::none()),
        })
    }

    /// Seals webhooks' secrets with `sealer`'s keys from now on (and opens them with them).
    pub fn with_sealer(mut self, sealer: Arc<Sealer>) -> Self {
        self.sealer = sealer;
        self
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.db
            .readers
            .run(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn close(&self) {
        self.db.close().await;
    }

    async fn create_workspace(&self, workspace: &Workspace) -> StoreResult<()> {
        let workspace = workspace.clone();
        self.db
            .writer
            .run(move |conn| tenants::create_workspace(conn, &workspace))
            .await
    }

    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>> {
        self.db.readers.run(|conn| tenants::list_workspaces(conn)).await
    }

    async fn get_workspace(&self, id: &str) -> StoreResult<Option<Workspace>> {
        let id = id.to_owned();
        self.db.readers.run(move |conn| tenants::get_workspace(conn, &id)).await
    }

    async fn rename_workspace(&self, id: &str, name: &str) -> StoreResult<Option<Workspace>> {
        let (id, name) = (id.to_owned(), name.to_owned());
        self.db
            .writer
            .run(move |conn| tenants::rename_workspace(conn, &id, &name))
            .await
    }

    async fn set_offline_after(&self, id: &str, offline_after: Option<Millis>) -> StoreResult<Option<Workspace>> {
        let id = id.to_owned();
        self.db
            .writer
            .run(move |conn| tenants::set_offline_after(conn, &id, offline_after))
            .await
    }

    async fn list_devices(&self, workspace_id: &str, query: &DeviceQuery) -> StoreResult<Vec<Device>> {
        let (workspace_id, query) = (workspace_id.to_owned(), query.clone());
        self.db
            .readers
            .run(move |conn| presence::list(conn, &workspace_id, &query))
            .await
    }

    async fn claim_presence_sweep(&self, holder: &str, now: Millis, until: Millis) -> StoreResult<bool> {
        let holder = holder.to_owned();
        self.db
            .writer
            .run_with(Durability::Relaxed, move |conn| {
                presence::claim_sweep(conn, &holder, now, until)
            })
            .await
    }

    async fn presence_changes(&self, now: Millis, limit: usize) -> StoreResult<Vec<PresenceChange>> {
        self.db
            .readers
            .run(move |conn| presence::changes(conn, now, limit))
            .await
    }

    async fn apply_presence(&self, changes: &[PresenceChange], now: Millis) -> StoreResult<()> {
        let changes = changes.to_vec();
        self.db
            .writer
            .run(move |conn| presence::apply(conn, &changes, now))
            .await
    }

    async fn delete_workspace(&self, id: &str) -> StoreResult<Option<WorkspaceDeletion>> {
        let id = id.to_owned();
        self.db
            .writer
            .run(move |conn| tenants::delete_workspace(conn, &id))
            .await
    }

    async fn list_api_keys(&self, workspace_id: &str) -> StoreResult<Vec<ApiKey>> {
        let workspace_id = workspace_id.to_owned();
        self.db
            .readers
            .run(move |conn| tenants::list_api_keys(conn, &workspace_id))
            .await
    }

    async fn revoke_api_key(&self, workspace_id: &str, id: &str) -> StoreResult<bool> {
        let (workspace_id, id) = (workspace_id.to_owned(), id.to_owned());
        self.db
            .writer
            .run(move |conn| tenants::revoke_api_key(conn, &workspace_id, &id))
            .await
    }

    async fn touch_api_key(&self, id: &str, at: Millis) -> StoreResult<()> {
        let id = id.to_owned();
        self.db
            .writer
            .run_with(Durability::Relaxed, move |conn| tenants::touch_api_key(conn, &id, at))
            .await
    }

    async fn get_records(&self, workspace_id: &str, ids: &[String]) -> StoreResult<Vec<(String, String)>> {
        let (workspace_id, ids) = (workspace_id.to_owned(), ids.to_vec());
        self.db
            .readers
            .run(move |conn| tenants::get_records(conn, &workspace_id, &ids))
            .await
    }

    async fn recent_records(
        &self,
        workspace_id: &str,
        kind: hookd_core::record::Kind,
        limit: usize,
    ) -> StoreResult<Vec<(String, String)>> {
        let workspace_id = workspace_id.to_owned();
        self.db
            .readers
            .run(move |conn| tenants::recent_records(conn, &workspace_id, kind, limit))
            .await
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let key = key.clone();
        self.db
            .writer
            .run(move |conn| tenants::create_api_key(conn, &key))
            .await
    }

    async fn find_api_key(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        let key_hash = key_hash.to_owned();
        self.db
            .readers
            .run(move |conn| tenants::find_api_key(conn, &key_hash))
            .await
    }

    async fn insert_webhook(&self, webhook: &Webhook, max_per_workspace: usize) -> StoreResult<bool> {
        let (webhook, sealer) = (webhook.clone(), self.sealer.clone());
        self.db
            .writer
            .run(move |conn| webhooks::insert(conn, &webhook, &sealer, max_per_workspace))
            .await
    }

    async fn update_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        let (webhook, sealer) = (webhook.clone(), self.sealer.clone());
        self.db
            .writer
            .run(move |conn| webhooks::update(conn, &webhook, &sealer))
            .await
    }

    async fn reseal_webhooks(&self) -> StoreResult<u64> {
        let sealer = self.sealer.clone();
        self.db.writer.run(move |conn| webhooks::reseal(conn, &sealer)).await
    }

    async fn delete_webhook(&self, workspace_id: &str, id: &str) -> StoreResult<()> {
        let (workspace_id, id) = (workspace_id.to_owned(), id.to_owned());
        self.db
            .writer
            .run(move |conn| webhooks::delete(conn, &workspace_id, &id))
            .await
    }

    async fn get_webhook(&self, workspace_id: &str, id: &str) -> StoreResult<Option<Webhook>> {
        let (workspace_id, id, sealer) = (workspace_id.to_owned(), id.to_owned(), self.sealer.clone());
        self.db
            .readers
            .run(move |conn| webhooks::get(conn, &workspace_id, &id, &sealer))
            .await
    }

    async fn list_webhooks(&self, workspace_id: &str) -> StoreResult<Vec<Webhook>> {
        let (workspace_id, sealer) = (workspace_id.to_owned(), self.sealer.clone());
        self.db
            .readers
            .run(move |conn| webhooks::list(conn, &workspace_id, &sealer))
            .await
    }

    async fn enabled_webhooks(&self, workspace_ids: &[String]) -> StoreResult<Vec<Webhook>> {
        let (workspace_ids, sealer) = (workspace_ids.to_vec(), self.sealer.clone());
        self.db
            .readers
            .run(move |conn| webhooks::enabled_in(conn, &workspace_ids, &sealer))
            .await
    }

    async fn commit_ingest(&self, batch: &[IngestRequest]) -> StoreResult<Vec<IngestResult>> {
        let batch = batch.to_vec();
        self.db.writer.run(move |conn| ingest::commit(conn, &batch)).await
    }

    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Vec<Claimed>> {
        let (request, sealer) = (request.clone(), self.sealer.clone());
        self.db
            .writer
            .run_in_turn(Turn::First, Durability::Relaxed, move |conn| {
                queue::claim_due(conn, &request, &sealer)
            })
            .await
    }

    async fn finish_many(&self, finishes: &[Finish]) -> StoreResult<Vec<bool>> {
        let finishes = finishes.to_vec();
        self.db
            .writer
            .run_with(Durability::Relaxed, move |conn| queue::finish_many(conn, &finishes))
            .await
    }

    async fn release(&self, leases: &[(DeliveryId, LeaseToken)]) -> StoreResult<()> {
        let leases = leases.to_vec();
        self.db
            .writer
            .run_with(Durability::Relaxed, move |conn| queue::release(conn, &leases))
            .await
    }

    async fn next_wake_at(&self, breaker_threshold: u32) -> StoreResult<Option<Millis>> {
        self.db
            .readers
            .run(move |conn| queue::next_wake_at(conn, breaker_threshold))
            .await
    }

    async fn queue_stats(&self, now: Millis) -> StoreResult<QueueStats> {
        self.db.readers.run(move |conn| queue::stats(conn, now)).await
    }

    async fn prune(&self, cutoffs: &PruneCutoffs, limit: usize) -> StoreResult<PruneReport> {
        let cutoffs = *cutoffs;
        self.db
            .writer
            .run(move |conn| retention::prune(conn, &cutoffs, limit))
            .await
    }

    async fn list_deliveries(&self, workspace_id: &str, query: &DeliveryQuery) -> StoreResult<Vec<Delivery>> {
        let (workspace_id, query) = (workspace_id.to_owned(), query.clone());
        self.db
            .readers
            .run(move |conn| deliveries::list(conn, &workspace_id, &query))
            .await
    }

    async fn get_delivery(&self, workspace_id: &str, id: &str) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
        let (workspace_id, id) = (workspace_id.to_owned(), id.to_owned());
        self.db
            .readers
            .run(move |conn| deliveries::get(conn, &workspace_id, &id))
            .await
    }

    async fn retry_delivery(
        &self,
        workspace_id: &str,
        id: &str,
        now: Millis,
        note: &str,
    ) -> StoreResult<Option<Delivery>> {
        let (workspace_id, id, note) = (workspace_id.to_owned(), id.to_owned(), note.to_owned());
        self.db
            .writer
            .run(move |conn| deliveries::retry(conn, &workspace_id, &id, now, &note))
            .await
    }

    async fn replay(&self, workspace_id: &str, query: &ReplayQuery, now: Millis) -> StoreResult<u64> {
        let (workspace_id, query) = (workspace_id.to_owned(), query.clone());
        self.db
            .writer
            .run(move |conn| deliveries::replay(conn, &workspace_id, &query, now))
            .await
    }

    async fn reseal_sources(&self) -> StoreResult<u64> {
        let sealer = self.sealer.clone();
        self.db.writer.run(move |conn| sources::reseal(conn, &sealer)).await
    }

    async fn insert_source(&self, source: &Source) -> StoreResult<()> {
        let (source, sealer) = (source.clone(), self.sealer.clone());
        self.db
            .writer
            .run(move |conn| sources::insert(conn, &source, &sealer))
            .await
    }

    async fn update_source(&self, source: &Source) -> StoreResult<()> {
        let (source, sealer) = (source.clone(), self.sealer.clone());
        self.db
            .writer
            .run(move |conn| sources::update(conn, &source, &sealer))
            .await
    }

    async fn delete_source(&self, workspace_id: &str, id: &str) -> StoreResult<()> {
        let (workspace_id, id) = (workspace_id.to_owned(), id.to_owned());
        self.db
            .writer
            .run(move |conn| sources::delete(conn, &workspace_id, &id))
            .await
    }

    async fn get_source(&self, workspace_id: &str, id: &str) -> StoreResult<Option<Source>> {
        let (workspace_id, id, sealer) = (workspace_id.to_owned(), id.to_owned(), self.sealer.clone());
        self.db
            .readers
            .run(move |conn| sources::get(conn, Some(&workspace_id), &id, &sealer))
            .await
    }

    async fn find_source(&self, id: &str) -> StoreResult<Option<Source>> {
        let (id, sealer) = (id.to_owned(), self.sealer.clone());
        self.db
            .readers
            .run(move |conn| sources::get(conn, None, &id, &sealer))
            .await
    }

    async fn list_sources(&self, workspace_id: &str) -> StoreResult<Vec<Source>> {
        let (workspace_id, sealer) = (workspace_id.to_owned(), self.sealer.clone());
        self.db
            .readers
            .run(move |conn| sources::list(conn, &workspace_id, &sealer))
            .await
    }

    async fn log_source_request(&self, request: &SourceRequest) -> StoreResult<()> {
        // Bookkeeping (ADR 11), except a request kept to replay: it was acknowledged.
        let durability = match request.outcome {
            RequestOutcome::Failed => Durability::Full,
            _ => Durability::Relaxed,
        };
        let request = request.clone();
        self.db
            .writer
            .run_with(durability, move |conn| sources::log_request(conn, &request))
            .await
    }

    async fn list_source_requests(
        &self,
        workspace_id: &str,
        source_id: &str,
        query: &SourceRequestQuery,
    ) -> StoreResult<Vec<SourceRequest>> {
        let (workspace_id, source_id, query) = (workspace_id.to_owned(), source_id.to_owned(), query.clone());
        self.db
            .readers
            .run(move |conn| sources::list_requests(conn, &workspace_id, &source_id, &query))
            .await
    }

    async fn get_source_request(
        &self,
        workspace_id: &str,
        source_id: &str,
        id: &str,
    ) -> StoreResult<Option<SourceRequest>> {
        let (workspace_id, source_id, id) = (workspace_id.to_owned(), source_id.to_owned(), id.to_owned());
        self.db
            .readers
            .run(move |conn| sources::get_request(conn, &workspace_id, &source_id, &id))
            .await
    }

    async fn remember_message(
        &self,
        source_id: &str,
        message_id: &str,
        now: Millis,
        until: Millis,
    ) -> StoreResult<bool> {
        let (source_id, message_id) = (source_id.to_owned(), message_id.to_owned());
        // Durable with the ingest commit that follows it (ADR 11).
        self.db
            .writer
            .run_with(Durability::Relaxed, move |conn| {
                sources::remember(conn, &source_id, &message_id, now, until)
            })
            .await
    }

    async fn tallies_by_minute(&self, query: &TallyQuery) -> StoreResult<Vec<(Millis, Tally)>> {
        let query = query.clone();
        self.db
            .readers
            .run(move |conn| dashboard::by_minute(conn, &query))
            .await
    }

    async fn tallies_by_webhook(&self, workspace_id: &str, since: Millis) -> StoreResult<Vec<(String, Tally)>> {
        let workspace_id = workspace_id.to_owned();
        self.db
            .readers
            .run(move |conn| dashboard::by_webhook(conn, &workspace_id, since))
            .await
    }

    async fn insert_pass(&self, pass: &Pass) -> StoreResult<()> {
        let pass = pass.clone();
        self.db
            .writer
            .run(move |conn| dashboard::insert_pass(conn, &pass))
            .await
    }

    async fn get_pass(&self, id: &str, now: Millis) -> StoreResult<Option<Pass>> {
        let id = id.to_owned();
        self.db
            .readers
            .run(move |conn| dashboard::get_pass(conn, &id, now))
            .await
    }

    async fn delete_pass(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.db.writer.run(move |conn| dashboard::delete_pass(conn, &id)).await
    }

    async fn list_links(&self, workspace_id: &str, now: Millis) -> StoreResult<Vec<Pass>> {
        let workspace_id = workspace_id.to_owned();
        self.db
            .readers
            .run(move |conn| dashboard::list_links(conn, &workspace_id, now))
            .await
    }
}
