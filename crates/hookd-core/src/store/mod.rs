//! The storage contract. SQLite and PostgreSQL implement [`Store`]; nothing else holds SQL.
//!
//! Every call is short: no call holds a transaction open while a request to a receiver is in
//! flight. Deliveries are reserved with a lease (`locked_until` + a lease token) instead.
//!
//! # Layout
//!
//! - this module: the contract ([`Store`]), its errors and what other processes change;
//! - `entities`: what is stored (workspaces, keys, records, deliveries, attempts, leases);
//! - `queries`: what calls ask and answer (results to write, filters, retention, statistics);
//! - `presence`: the devices a workspace hears from, and when their state changes;
//! - `admission`: the one rule for whether a lane may take another slot now;
//! - `scheduling`: choosing which due deliveries a claim takes, shared by every backend;
//! - `coalescing`: where a delivery with a coalescing key goes (batch windows, debounce);
//! - `dashboard`: per-minute tallies of attempts, dashboard sign-ins and portal links;
//! - `breaker`: what a batch of attempts does to each webhook's circuit breaker;
//! - `sealed`: a webhook row's sealed columns;
//! - `sources`: sources, their request log and the message ids kept against replays.

mod admission;
mod breaker;
mod coalescing;
mod dashboard;
mod entities;
mod presence;
mod queries;
mod scheduling;
mod sealed;
mod sources;

use async_trait::async_trait;

use crate::clock::Millis;
use crate::id::{DeliveryId, LeaseToken};
use crate::record::Kind;
use crate::source::Source;
use crate::webhook::Webhook;

pub use admission::{Admission, RESERVE_BELOW};
pub use breaker::*;
pub use coalescing::*;
pub use dashboard::*;
pub use entities::*;
pub use presence::*;
pub use queries::*;
pub use scheduling::*;
pub use sealed::StoredWebhook;
pub use sources::*;

pub type StoreResult<T> = Result<T, StoreError>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The database cannot be reached (connection refused, pool timed out).
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    #[error("storage failed")]
    Other(#[source] BoxError),
}

impl StoreError {
    /// Stored data this version cannot read.
    pub fn corrupt(what: &str, detail: impl std::fmt::Display) -> Self {
        Self::Other(format!("stored {what} is unreadable: {detail}").into())
    }
}

/// What another process changed that this one may act on or hold in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Due work was added (new deliveries, retries, replays).
    Work,
    /// A key was revoked or a workspace deleted: what was remembered of either may be stale.
    Credentials,
    /// A webhook was created, changed, disabled or deleted: what was kept of the enabled
    /// webhooks may be stale.
    Webhooks,
}

/// How many of the newest records [`Store::recent_records`] looks through.
pub const RECENT_WINDOW: usize = 50_000;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the database answers.
    async fn ping(&self) -> StoreResult<()>;

    /// Closes the database, waiting for connections in use.
    async fn close(&self) {}

    /// Calls `on` whenever another process makes a [`Change`], until the store is closed.
    /// Backends that serve one process only return at once: that process knows its changes.
    async fn watch(&self, on: &(dyn Fn(Change) + Send + Sync)) -> StoreResult<()> {
        let _ = on;
        Ok(())
    }

    async fn create_workspace(&self, workspace: &Workspace) -> StoreResult<()>;
    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>>;
    async fn get_workspace(&self, id: &str) -> StoreResult<Option<Workspace>>;
    /// Renames a workspace; `None` when it does not exist.
    async fn rename_workspace(&self, id: &str, name: &str) -> StoreResult<Option<Workspace>>;
    /// Sets how long its devices may be silent before they are offline (`None`: no presence
    /// events); `None` when it does not exist.
    async fn set_offline_after(&self, id: &str, offline_after: Option<Millis>) -> StoreResult<Option<Workspace>>;
    /// The workspace's devices, by device id.
    async fn list_devices(&self, workspace_id: &str, query: &DeviceQuery) -> StoreResult<Vec<Device>>;
    /// Takes (or keeps) the one presence sweep for `holder` until `until`; `false` while
    /// another holder has it. So of all processes only one sweeps at a time.
    async fn claim_presence_sweep(&self, holder: &str, now: Millis, until: Millis) -> StoreResult<bool>;
    /// Devices due to change state at `now` ([`PresenceChange::due`]), in workspaces with
    /// presence set, at most `limit`.
    async fn presence_changes(&self, now: Millis, limit: usize) -> StoreResult<Vec<PresenceChange>>;
    /// Moves each device to its new state since `now`, if it is still as the change read it
    /// (nothing was heard from it since).
    async fn apply_presence(&self, changes: &[PresenceChange], now: Millis) -> StoreResult<()>;
    /// Deletes a workspace and everything in it (webhooks, deliveries and their attempts,
    /// records, idempotency keys, API keys) in one transaction, and tells other processes
    /// ([`Change::Credentials`]). `None` when it does not exist.
    async fn delete_workspace(&self, id: &str) -> StoreResult<Option<WorkspaceDeletion>>;
    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn find_api_key(&self, key_hash: &str) -> StoreResult<Option<ApiKey>>;
    /// The workspace's keys, oldest first.
    async fn list_api_keys(&self, workspace_id: &str) -> StoreResult<Vec<ApiKey>>;
    /// Deletes a key and tells other processes ([`Change::Credentials`]); `false` when the
    /// workspace has no such key.
    async fn revoke_api_key(&self, workspace_id: &str, id: &str) -> StoreResult<bool>;
    /// Notes that key `id` was used at `at`. Bookkeeping: it may be lost in a crash.
    async fn touch_api_key(&self, id: &str, at: Millis) -> StoreResult<()>;
    /// The stored bodies of the workspace's records among `ids`, as (id, body); records that
    /// do not exist (or were pruned) are left out.
    async fn get_records(&self, workspace_id: &str, ids: &[String]) -> StoreResult<Vec<(String, String)>>;
    /// The workspace's newest records of `kind`, newest first, at most `limit`, as (id, body):
    /// found among the store's newest [`RECENT_WINDOW`] records (ids are time-ordered), so the
    /// read stays bounded however many records other workspaces hold.
    async fn recent_records(&self, workspace_id: &str, kind: Kind, limit: usize) -> StoreResult<Vec<(String, String)>>;

    /// Stores a new webhook unless its workspace already has `max_per_workspace` of them
    /// (then nothing is written and the answer is `false`), atomically: concurrent inserts
    /// never pass the limit together.
    async fn insert_webhook(&self, webhook: &Webhook, max_per_workspace: usize) -> StoreResult<bool>;
    /// Replaces a webhook; [`StoreError::NotFound`] when it does not exist.
    async fn update_webhook(&self, webhook: &Webhook) -> StoreResult<()>;
    /// Deletes a webhook and its deliveries; [`StoreError::NotFound`] when it does not exist.
    async fn delete_webhook(&self, workspace_id: &str, id: &str) -> StoreResult<()>;
    /// Brings every webhook's stored secrets into the form the configured keys write: sealed
    /// with the current key (or plain without keys). Returns how many webhooks changed; fails
    /// when a stored value does not open with the configured keys.
    async fn reseal_webhooks(&self) -> StoreResult<u64>;
    /// [`Store::reseal_webhooks`] for sources' specs (which hold their secrets).
    async fn reseal_sources(&self) -> StoreResult<u64>;
    async fn get_webhook(&self, workspace_id: &str, id: &str) -> StoreResult<Option<Webhook>>;
    async fn list_webhooks(&self, workspace_id: &str) -> StoreResult<Vec<Webhook>>;
    /// Enabled webhooks of these workspaces, for matching at ingest.
    async fn enabled_webhooks(&self, workspace_ids: &[String]) -> StoreResult<Vec<Webhook>>;

    /// Writes every request of the batch in ONE durable transaction. A delivery whose webhook
    /// no longer exists is skipped.
    async fn commit_ingest(&self, batch: &[IngestRequest]) -> StoreResult<Vec<IngestResult>>;

    /// Leases up to `limit` due pending deliveries of enabled webhooks, keeping each webhook
    /// under `per_webhook_limit` in flight. Oldest due first.
    async fn claim_due(&self, request: &ClaimRequest) -> StoreResult<Vec<Claimed>>;
    /// Records attempts and their deliveries' new states, all in one transaction. For each,
    /// `false` means nothing was written for it because its lease is no longer held (another
    /// process took the delivery over).
    async fn finish_many(&self, finishes: &[Finish]) -> StoreResult<Vec<bool>>;

    /// [`Store::finish_many`] for one attempt.
    async fn finish(&self, finish: &Finish) -> StoreResult<bool> {
        Ok(self
            .finish_many(std::slice::from_ref(finish))
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }
    /// Gives leased deliveries back, due at once (graceful shutdown).
    async fn release(&self, leases: &[(DeliveryId, LeaseToken)]) -> StoreResult<()>;
    /// When the next pending delivery becomes due or its lease expires (or, for a webhook
    /// whose breaker is open, its breaker closes), if any.
    async fn next_wake_at(&self, breaker_threshold: u32) -> StoreResult<Option<Millis>>;
    async fn queue_stats(&self, now: Millis) -> StoreResult<QueueStats>;

    /// Deletes, in one short transaction, at most `limit` of each kind of what `cutoffs` names.
    async fn prune(&self, cutoffs: &PruneCutoffs, limit: usize) -> StoreResult<PruneReport>;

    /// Deliveries newest first.
    async fn list_deliveries(&self, workspace_id: &str, query: &DeliveryQuery) -> StoreResult<Vec<Delivery>>;
    async fn get_delivery(&self, workspace_id: &str, id: &str) -> StoreResult<Option<(Delivery, Vec<Attempt>)>>;
    /// Makes a delivery pending and due at `now`, whatever its state, at the start of its retry
    /// schedule, its summary (`last_explanation`) replaced by `note`.
    async fn retry_delivery(
        &self,
        workspace_id: &str,
        id: &str,
        now: Millis,
        note: &str,
    ) -> StoreResult<Option<Delivery>>;
    /// Makes matching deliveries pending and due at `now`, at the start of their retry
    /// schedule, with the query's note as their summary; returns how many.
    async fn replay(&self, workspace_id: &str, query: &ReplayQuery, now: Millis) -> StoreResult<u64>;

    async fn insert_source(&self, source: &Source) -> StoreResult<()>;
    /// Replaces a source; [`StoreError::NotFound`] when it does not exist.
    async fn update_source(&self, source: &Source) -> StoreResult<()>;
    /// Deletes a source with its request log; [`StoreError::NotFound`] when it does not exist.
    async fn delete_source(&self, workspace_id: &str, id: &str) -> StoreResult<()>;
    async fn get_source(&self, workspace_id: &str, id: &str) -> StoreResult<Option<Source>>;
    /// A source by id alone, for its public door.
    async fn find_source(&self, id: &str) -> StoreResult<Option<Source>>;
    /// The workspace's sources, oldest first.
    async fn list_sources(&self, workspace_id: &str) -> StoreResult<Vec<Source>>;
    /// Adds a request to its source's log, or replaces the logged request with its id.
    async fn log_source_request(&self, request: &SourceRequest) -> StoreResult<()>;
    /// A source's logged requests, newest first.
    async fn list_source_requests(
        &self,
        workspace_id: &str,
        source_id: &str,
        query: &SourceRequestQuery,
    ) -> StoreResult<Vec<SourceRequest>>;
    async fn get_source_request(
        &self,
        workspace_id: &str,
        source_id: &str,
        id: &str,
    ) -> StoreResult<Option<SourceRequest>>;
    /// Remembers that source `source_id` received message `message_id`, until `until`.
    /// `false` when it was remembered already and is not yet forgotten at `now` (a replay);
    /// atomic, so of two processes receiving the same message at once only one gets `true`.
    async fn remember_message(
        &self,
        source_id: &str,
        message_id: &str,
        now: Millis,
        until: Millis,
    ) -> StoreResult<bool>;

    /// The tallies of a workspace (or one of its webhooks) per minute since `query.since`,
    /// oldest first, summed over its webhooks.
    async fn tallies_by_minute(&self, query: &TallyQuery) -> StoreResult<Vec<(Millis, Tally)>>;
    /// Each webhook's tally of a workspace since `since`, summed over the minutes.
    async fn tallies_by_webhook(&self, workspace_id: &str, since: Millis) -> StoreResult<Vec<(String, Tally)>>;
    /// Stores a sign-in or portal link, and forgets those expired by `pass.created_at`.
    async fn insert_pass(&self, pass: &Pass) -> StoreResult<()>;
    /// The sign-in or link whose token hashes to `id`, if not expired at `now`.
    async fn get_pass(&self, id: &str, now: Millis) -> StoreResult<Option<Pass>>;
    /// Forgets a sign-in or link (and the sign-ins it granted); `false` if there was none.
    async fn delete_pass(&self, id: &str) -> StoreResult<bool>;
    /// A workspace's portal links not expired at `now`, newest first.
    async fn list_links(&self, workspace_id: &str, now: Millis) -> StoreResult<Vec<Pass>>;
}
