//! hookd's storage contract ([`hookd_core::store::Store`]) on PostgreSQL, shared by any
//! number of hookd processes.
//!
//! Deliveries are claimed with `FOR UPDATE SKIP LOCKED` and a lease, so workers never take the
//! same delivery and a killed worker's leases expire into other workers' hands. New work is
//! announced with `NOTIFY hookd_work`, committed with the transaction that made it.
//! Migrations run under sqlx's advisory lock, so processes starting together do not race.
//!
//! # Layout
//!
//! - `db`: connecting (schema, migrations), error mapping, the NOTIFY channels.
//! - `tenants`, `webhooks`: workspaces, API keys, webhook rows.
//! - `ingest`: the group-commit transaction.
//! - `queue`: claiming, finishing and releasing deliveries.
//! - `deliveries`: the delivery log, retry and replay.
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
#[cfg(feature = "testing")]
pub mod testing;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use db::PgSettings;
use db::{CREDENTIALS_CHANNEL, WEBHOOKS_CHANNEL, WORK_CHANNEL, map_err};
use hookd_core::clock::Millis;
use hookd_core::id::{DeliveryId, LeaseToken};
use hookd_core::seal::Sealer;
use hookd_core::source::Source;
use hookd_core::store::*;
use hookd_core::webhook::Webhook;
use sqlx::postgres::{PgListener, PgPool};

/// PostgreSQL storage. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    sealer: Arc<Sealer>,
}

impl PgStore {
    /// Connects and applies migrations (under an advisory lock).
    pub async fn connect(settings: &PgSettings) -> StoreResult<Self> {
        Ok(Self {
            pool: db::connect(settings).await?,
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
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn watch(&self, on: &(dyn Fn(Change) + Send + Sync)) -> StoreResult<()> {
        let mut listener = PgListener::connect_with(&self.pool).await.map_err(map_err)?;
        listener
            .listen_all([WORK_CHANNEL, CREDENTIALS_CHANNEL, WEBHOOKS_CHANNEL])
            .await
            .map_err(map_err)?;
        loop {
            if self.pool.is_closed() {
                return Ok(());
            }
            // `try_recv` reconnects by itself after a lost connection, returning None once:
            // what was announced meanwhile is lost, so every kind of change is assumed.
            match listener.try_recv().await {
                Ok(Some(note)) if note.channel() == CREDENTIALS_CHANNEL => on(Change::Credentials),
                Ok(Some(note)) if note.channel() == WEBHOOKS_CHANNEL => on(Change::Webhooks),
                Ok(Some(_)) => on(Change::Work),
                Ok(None) => {
                    on(Change::Credentials);
                    on(Change::Webhooks);
                    on(Change::Work);
                }
                Err(err) => {
                    tracing::warn!(error = ?err, "listening for other processes' changes failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn create_workspace(&self, workspace: &Workspace) -> StoreResult<()> {
        tenants::create_workspace(&self.pool, workspace).await
    }

    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>> {
        tenants::list_workspaces(&self.pool).await
    }

    async fn get_workspace(&self, id: &str) -> StoreResult<Option<Workspace>> {
        tenants::get_workspace(&self.pool, id).await
    }

    async fn rename_workspace(&self, id: &str, name: &str) -> StoreResult<Option<Workspace>> {
        tenants::rename_workspace(&self.pool, id, name).await
    }

    async fn delete_workspace(&self, id: &str) -> StoreResult<Option<WorkspaceDeletion>> {
        tenants::delete_workspace(&self.pool, id).await
    }

    async fn set_offline_after(&self, id: &str, offline_after: Option<Millis>) -> StoreResult<Option<Workspace>> {
        tenants::set_offline_after(&self.pool, id, offline_after).await
    }

    async fn list_devices(&self, workspace_id: &str, query: &DeviceQuery) -> StoreResult<Vec<Device>> {
        presence::list(&self.pool, workspace_id, query).await
    }

    async fn claim_presence_sweep(&self, holder: &str, now: Millis, until: Millis) -> StoreResult<bool> {
        presence::claim_sweep(&self.pool, holder, now, until).await
    }

    async fn presence_changes(&self, now: Millis, limit: usize) -> StoreResult<Vec<PresenceChange>> {
        presence::changes(&self.pool, now, limit).await
    }

    async fn apply_presence(&self, changes: &[PresenceChange], now: Millis) -> StoreResult<()> {
        presence::apply(&self.pool, changes, now).await
    }

    async fn list_api_keys(&self, workspace_id: &str) -> StoreResult<Vec<ApiKey>> {
        tenants::list_api_keys(&self.pool, workspace_id).await
    }

    async fn revoke_api_key(&self, workspace_id: &str, id: &str) -> StoreResult<bool> {
        tenants::revoke_api_key(&self.pool, workspace_id, id).await
    }

    async fn touch_api_key(&self, id: &str, at: Millis) -> StoreResult<()> {
        tenants::touch_api_key(&self.pool, id, at).await
    }

    async fn get_records(&self, workspace_id: &str, ids: &[String]) -> StoreResult<Vec<(String, String)>> {
        tenants::get_records(&self.pool, workspace_id, ids).await
    }

    async fn recent_records(
        &self,
        workspace_id: &str,
        kind: hookd_core::record::Kind,
        limit: usize,
    ) -> StoreResult<Vec<(String, String)>> {
        tenants::recent_records(&self.pool, workspace_id, kind, limit).await
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        tenants::create_api_key(&self.pool, key).await
    }

    async fn find_api_key(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        tenants::find_api_key(&self.pool, key_hash).await
    }

    async fn insert_webhook(&self, webhook: &Webhook, max_per_workspace: usize) -> StoreResult<bool> {
        webhooks::insert(&self.pool, webhook, &self.sealer, max_per_workspace).await
    }

    async fn update_webhook(&self, webhook: &Webhook) -> StoreResult<()> {
        webhooks::update(&self.pool, webhook, &self.sealer).await
    }

    async fn reseal_webhooks(&self) -> StoreResult<u64> {
        webhooks::reseal(&self.pool, &self.sealer).await
    }

    async fn delete_webhook(&self, workspace_id: &str, id: &str) -> StoreResult<()> {
        webhooks::delete(&self.pool, workspace_id, id).await
    }

    async fn get_webhook(&self, workspace_id: &str, id: &str) -> StoreResult<Option<Webhook>> {
        webhooks::get(&self.pool, workspace_id, id, &self.sealer).await
    }

    async fn list_webhooks(&self, workspace_id: &str) -> StoreResult<Vec<Webhook>> {
        webhooks::list(&self.pool, workspace_id, &self.sealer).await
    }

    async fn enabled_webhooks(&self, workspace_ids: &[String]) -> StoreResult<Vec<Webhook>> {
        webhooks::enabled_in(&self.pool, workspace_ids, &self.sealer).await
    }

    async fn commit_ingest(&self, batch: &[IngestRequest]) -> StoreResult<Vec<IngestResult>> {
        ingest::commit(&self.pool, batch).await
    }

    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Vec<Claimed>> {
        queue::claim_due(&self.pool, request, &self.sealer).await
    }

    async fn finish_many(&self, finishes: &[Finish]) -> StoreResult<Vec<bool>> {
        queue::finish_many(&self.pool, finishes).await
    }

    async fn release(&self, leases: &[(DeliveryId, LeaseToken)]) -> StoreResult<()> {
        queue::release(&self.pool, leases).await
    }

    async fn next_wake_at(&self, breaker_threshold: u32) -> StoreResult<Option<Millis>> {
        queue::next_wake_at(&self.pool, breaker_threshold).await
    }

    async fn queue_stats(&self, now: Millis) -> StoreResult<QueueStats> {
        queue::stats(&self.pool, now).await
    }

    async fn prune(&self, cutoffs: &PruneCutoffs, limit: usize) -> StoreResult<PruneReport> {
        retention::prune(&self.pool, cutoffs, limit).await
    }

    async fn list_deliveries(&self, workspace_id: &str, query: &DeliveryQuery) -> StoreResult<Vec<Delivery>> {
        deliveries::list(&self.pool, workspace_id, query).await
    }

    async fn get_delivery(&self, workspace_id: &str, id: &str) -> StoreResult<Option<(Delivery, Vec<Attempt>)>> {
        deliveries::get(&self.pool, workspace_id, id).await
    }

    async fn retry_delivery(
        &self,
        workspace_id: &str,
        id: &str,
        now: Millis,
        note: &str,
    ) -> StoreResult<Option<Delivery>> {
        deliveries::retry(&self.pool, workspace_id, id, now, note).await
    }

    async fn replay(&self, workspace_id: &str, query: &ReplayQuery, now: Millis) -> StoreResult<u64> {
        deliveries::replay(&self.pool, workspace_id, query, now).await
    }

    async fn reseal_sources(&self) -> StoreResult<u64> {
        sources::reseal(&self.pool, &self.sealer).await
    }

    async fn insert_source(&self, source: &Source) -> StoreResult<()> {
        sources::insert(&self.pool, source, &self.sealer).await
    }

    async fn update_source(&self, source: &Source) -> StoreResult<()> {
        sources::update(&self.pool, source, &self.sealer).await
    }

    async fn delete_source(&self, workspace_id: &str, id: &str) -> StoreResult<()> {
        sources::delete(&self.pool, workspace_id, id).await
    }

    async fn get_source(&self, workspace_id: &str, id: &str) -> StoreResult<Option<Source>> {
        sources::get(&self.pool, Some(workspace_id), id, &self.sealer).await
    }

    async fn find_source(&self, id: &str) -> StoreResult<Option<Source>> {
        sources::get(&self.pool, None, id, &self.sealer).await
    }

    async fn list_sources(&self, workspace_id: &str) -> StoreResult<Vec<Source>> {
        sources::list(&self.pool, workspace_id, &self.sealer).await
    }

    async fn log_source_request(&self, request: &SourceRequest) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        sources::log_request(&mut conn, request).await
    }

    async fn list_source_requests(
        &self,
        workspace_id: &str,
        source_id: &str,
        query: &SourceRequestQuery,
    ) -> StoreResult<Vec<SourceRequest>> {
        sources::list_requests(&self.pool, workspace_id, source_id, query).await
    }

    async fn get_source_request(
        &self,
        workspace_id: &str,
        source_id: &str,
        id: &str,
    ) -> StoreResult<Option<SourceRequest>> {
        sources::get_request(&self.pool, workspace_id, source_id, id).await
    }

    async fn remember_message(
        &self,
        source_id: &str,
        message_id: &str,
        now: Millis,
        until: Millis,
    ) -> StoreResult<bool> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        sources::remember(&mut conn, source_id, message_id, now, until).await
    }

    async fn tallies_by_minute(&self, query: &TallyQuery) -> StoreResult<Vec<(Millis, Tally)>> {
        dashboard::by_minute(&self.pool, query).await
    }

    async fn tallies_by_webhook(&self, workspace_id: &str, since: Millis) -> StoreResult<Vec<(String, Tally)>> {
        dashboard::by_webhook(&self.pool, workspace_id, since).await
    }

    async fn insert_pass(&self, pass: &Pass) -> StoreResult<()> {
        dashboard::insert_pass(&self.pool, pass).await
    }

    async fn get_pass(&self, id: &str, now: Millis) -> StoreResult<Option<Pass>> {
        dashboard::get_pass(&self.pool, id, now).await
    }

    async fn delete_pass(&self, id: &str) -> StoreResult<bool> {
        dashboard::delete_pass(&self.pool, id).await
    }

    async fn list_links(&self, workspace_id: &str, now: Millis) -> StoreResult<Vec<Pass>> {
        dashboard::list_links(&self.pool, workspace_id, now).await
    }
}
