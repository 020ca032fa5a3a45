//! The storage contract. SQLite and PostgreSQL implement [`Store`]; nothing else holds SQL.
//!
//! Every call is short: no call holds a transaction open while a request to a receiver is in
//! flight. Deliveries are reserved with a lease (`locked_until` + a lease token) instead.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;

use crate::clock::Millis;
use crate::record::Kind;
use crate::seal::Sealer;
use crate::webhook::{PreviousSecret, Webhook, WebhookSpec};

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

/// A webhook's stored columns: its spec (JSON), its secret and its previous secrets (JSON),
/// each sealed when encryption keys are configured. Shared by every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWebhook {
    pub spec: String,
    pub secret: String,
    pub previous_secrets: String,
}

impl StoredWebhook {
    pub fn seal(webhook: &Webhook, sealer: &Sealer) -> StoreResult<Self> {
        let previous = serde_json::to_string(&webhook.previous_secrets).map_err(|e| StoreError::Other(e.into()))?;
        Ok(Self::sealed(
            &webhook.id,
            sealer,
            &webhook.spec.to_json().to_string(),
            &webhook.secret,
            &previous,
        ))
    }

    fn sealed(id: &str, sealer: &Sealer, spec: &str, secret: &str, previous: &str) -> Self {
        Self {
            spec: sealer.seal(&context(id, "spec"), spec),
            secret: sealer.seal(&context(id, "secret"), secret),
            previous_secrets: sealer.seal(&context(id, "previous_secrets"), previous),
        }
    }

    /// The spec, secret and previous secrets of webhook `id`.
    pub fn open(&self, id: &str, sealer: &Sealer) -> StoreResult<(WebhookSpec, String, Vec<PreviousSecret>)> {
        let (spec, secret, previous) = self.open_text(id, sealer)?;
        let spec: serde_json::Value = serde_json::from_str(&spec).map_err(|e| StoreError::corrupt("webhook", e))?;
        let spec = WebhookSpec::from_stored(&spec).map_err(|e| StoreError::corrupt("webhook", e))?;
        let previous = serde_json::from_str(&previous).map_err(|e| StoreError::corrupt("webhook secrets", e))?;
        Ok((spec, secret.into_owned(), previous))
    }

    fn open_text<'a>(&'a self, id: &str, sealer: &Sealer) -> StoreResult<(Cow<'a, str>, Cow<'a, str>, Cow<'a, str>)> {
        let open = |column: &str, value: &'a str| {
            sealer
                .open(value, || context(id, column))
                .map_err(|e| StoreError::corrupt(&format!("webhook {id}'s {column}"), e))
        };
        Ok((
            open("spec", &self.spec)?,
            open("secret", &self.secret)?,
            open("previous_secrets", &self.previous_secrets)?,
        ))
    }

    /// The columns in the form `sealer` writes (sealed with its current key, or plain), or
    /// `None` when they already are. An error when a value does not open with the keys given.
    pub fn resealed(&self, id: &str, sealer: &Sealer) -> StoreResult<Option<Self>> {
        if [&self.spec, &self.secret, &self.previous_secrets]
            .iter()
            .all(|v| sealer.is_current(v))
        {
            return Ok(None);
        }
        let (spec, secret, previous) = self.open_text(id, sealer)?;
        Ok(Some(Self::sealed(id, sealer, &spec, &secret, &previous)))
    }
}

fn context(id: &str, column: &str) -> String {
    format!("webhook/{id}/{column}")
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
}

/// A workspace API key. Only the SHA-256 of the key is stored, and a prefix of it short
/// enough to say nothing of the rest, so people can tell their keys apart.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub workspace_id: String,
    pub key_hash: String,
    pub prefix: String,
    pub created_at: Millis,
    /// When a request last used it (kept to the minute: see [`Store::touch_api_key`]).
    pub last_used_at: Option<Millis>,
}

/// What deleting a workspace removed with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkspaceDeletion {
    pub webhooks: u64,
    pub deliveries: u64,
    pub records: u64,
    pub keys: u64,
}

/// What another process changed that this one may act on or hold in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Due work was added (new deliveries, retries, replays).
    Work,
    /// A key was revoked or a workspace deleted: what was remembered of either may be stale.
    Credentials,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
    Dead,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 4] = [Self::Pending, Self::Delivered, Self::Failed, Self::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// A stored state, read back.
    pub fn from_stored(s: &str) -> StoreResult<Self> {
        Self::parse(s).ok_or_else(|| StoreError::corrupt("delivery state", s))
    }
}

/// A record ready to store: stamped, serialized.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub id: String,
    pub workspace_id: String,
    pub kind: Kind,
    pub body: String,
    pub created_at: Millis,
}

impl IngestRequest {
    /// How many of this request's deliveries carry each of its records, in record order.
    pub fn references(&self) -> Vec<i64> {
        let mut counts: HashMap<&str, i64> = HashMap::new();
        for id in self.deliveries.iter().flat_map(|d| &d.record_ids) {
            *counts.entry(id.as_str()).or_default() += 1;
        }
        self.records
            .iter()
            .map(|r| counts.get(r.id.as_str()).copied().unwrap_or(0))
            .collect()
    }
}

/// A delivery created at ingest, due at once.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: String,
    pub workspace_id: String,
    pub webhook_id: String,
    pub record_ids: Vec<String>,
    pub created_at: Millis,
    /// Created already leased (the test send attempts it at once, outside the dispatcher).
    pub lease: Option<Lease>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub token: String,
    pub until: Millis,
}

#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    /// SHA-256 of the request body: the same key with another body is a conflict.
    pub request_hash: String,
}

/// One ingest request's writes. A batch of these is committed in one transaction.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    pub workspace_id: String,
    pub idempotency: Option<Idempotency>,
    pub records: Vec<NewRecord>,
    pub deliveries: Vec<NewDelivery>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestResult {
    /// Written; the record ids.
    Committed(Vec<String>),
    /// The idempotency key was seen before with the same body; the first request's ids.
    Replayed(Vec<String>),
    /// The idempotency key was seen before with another body; nothing written.
    KeyConflict,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub workspace_id: String,
    pub webhook_id: String,
    pub state: DeliveryState,
    pub record_ids: Vec<String>,
    pub attempts: u32,
    /// Failures since the last success or replay: the position in the retry schedule.
    pub failures: u32,
    pub next_attempt_at: Millis,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_status: Option<u16>,
    pub last_explanation: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub id: String,
    pub delivery_id: String,
    pub started_at: Millis,
    pub duration_ms: u64,
    pub status: Option<u16>,
    /// Response headers as a JSON object.
    pub response_headers: String,
    pub response_body: Option<String>,
    pub error_kind: Option<String>,
    pub explanation: String,
    /// The delivery's state after this attempt.
    pub outcome: DeliveryState,
}

/// A delivery reserved for one attempt.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: Delivery,
    pub lease: Lease,
    pub webhook: Arc<Webhook>,
    /// The records' stored JSON, in delivery order.
    pub records: Vec<String>,
}

impl Claimed {
    /// A delivery written already leased (`delivery.lease` is `lease`), as it is stored: to
    /// attempt it at once without claiming it back from the store.
    pub fn created(delivery: &NewDelivery, lease: Lease, webhook: Arc<Webhook>, records: Vec<String>) -> Self {
        Self {
            delivery: Delivery {
                id: delivery.id.clone(),
                workspace_id: delivery.workspace_id.clone(),
                webhook_id: delivery.webhook_id.clone(),
                state: DeliveryState::Pending,
                record_ids: delivery.record_ids.clone(),
                attempts: 0,
                failures: 0,
                next_attempt_at: lease.until.max(delivery.created_at),
                created_at: delivery.created_at,
                updated_at: delivery.created_at,
                last_status: None,
                last_explanation: None,
            },
            lease,
            webhook,
            records,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub now: Millis,
    pub lease: Lease,
    pub limit: usize,
    pub per_webhook_limit: usize,
    /// Of the `limit` free slots, this many are kept for webhooks with fewer than
    /// [`RESERVE_BELOW`] attempts in flight, so webhooks holding many slow requests can never
    /// take every slot from the others.
    pub reserve: usize,
    /// Failures in a row that open a webhook's circuit breaker: the webhook is then paused
    /// until its next retry time, and afterwards lets one attempt at a time through (a probe)
    /// until one succeeds.
    pub breaker_threshold: u32,
    /// Attempts this process already has in flight, by webhook id.
    pub in_flight: HashMap<String, usize>,
}

/// What an attempt says about its webhook's health, for the circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The receiver answered (2xx, or a deliberate 3xx/4xx): it is up.
    Up,
    /// The receiver failed `at` (5xx, 408/425/429, timeout, broken connection); the delivery
    /// is next due at `retry_at` (or is dead: then `retry_at` is `at`).
    Down { at: Millis, retry_at: Millis },
    /// Says nothing about the receiver (e.g. blocked by the SSRF policy).
    Unknown,
}

/// The result of an attempt, written in one transaction.
#[derive(Debug, Clone)]
pub struct Finish {
    pub delivery_id: String,
    pub webhook_id: String,
    pub lease_token: String,
    pub attempt: Attempt,
    pub state: DeliveryState,
    pub failures: u32,
    pub next_attempt_at: Millis,
    pub now: Millis,
    /// Disable the delivery's webhook with this reason (410 Gone).
    pub disable_webhook: Option<String>,
    pub health: Health,
}

/// The net effect of a batch of attempts on one webhook's health, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerChange {
    /// No success in the batch: add `failures`, pause until `until` (the latest failure's
    /// retry time), and if the webhook was not failing, it has been since `since`.
    Add {
        failures: u32,
        until: Millis,
        since: Millis,
    },
    /// A success in the batch: `failures` failed after it (the first at `since`, 0 if none),
    /// pausing until `until` (0: not paused).
    Set {
        failures: u32,
        until: Millis,
        since: Millis,
    },
}

/// What a batch of attempts changes of one webhook's health: its breaker, and when its
/// receiver last answered well and last failed in the batch (0: not in this batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthChange {
    pub breaker: BreakerChange,
    pub last_success: Millis,
    pub last_failure: Millis,
}

/// The health changes of a batch of finishes, in order, by webhook. Shared by every backend.
pub fn breaker_changes<'a>(finishes: impl IntoIterator<Item = &'a Finish>) -> HashMap<&'a str, HealthChange> {
    const NONE: BreakerChange = BreakerChange::Add {
        failures: 0,
        until: 0,
        since: 0,
    };
    let mut changes: HashMap<&str, HealthChange> = HashMap::new();
    for finish in finishes {
        let change = changes.entry(finish.webhook_id.as_str()).or_insert(HealthChange {
            breaker: NONE,
            last_success: 0,
            last_failure: 0,
        });
        match finish.health {
            Health::Up => change.last_success = finish.now,
            Health::Down { .. } => change.last_failure = finish.now,
            Health::Unknown => {}
        }
        let entry = &mut change.breaker;
        let first = |since: Millis, at: Millis| if since == 0 { at } else { since };
        *entry = match (finish.health, *entry) {
            (Health::Up, _) => BreakerChange::Set {
                failures: 0,
                until: 0,
                since: 0,
            },
            (Health::Down { at, retry_at }, BreakerChange::Add { failures, since, .. }) => BreakerChange::Add {
                failures: failures + 1,
                until: retry_at,
                since: first(since, at),
            },
            (Health::Down { at, retry_at }, BreakerChange::Set { failures, since, .. }) => BreakerChange::Set {
                failures: failures + 1,
                until: retry_at,
                since: first(since, at),
            },
            (Health::Unknown, current) => current,
        };
    }
    changes.retain(|_, change| change.breaker != NONE);
    changes
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub webhook_id: Option<String>,
    pub state: Option<DeliveryState>,
    pub limit: usize,
    /// Cursor: only deliveries with an id lower than this (older).
    pub after: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ReplayQuery {
    pub webhook_id: String,
    pub since: Millis,
    pub until: Millis,
    pub states: Vec<DeliveryState>,
    /// What the replayed deliveries' summary (`last_explanation`) says now.
    pub note: String,
}

/// What retention deletes: finished deliveries (with their attempts) last changed before these
/// times, records no delivery references any more and older than `records_before`, and
/// idempotency keys older than `keys_before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneCutoffs {
    pub delivered_before: Millis,
    pub failed_before: Millis,
    pub records_before: Millis,
    pub keys_before: Millis,
}

/// What one prune call deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub deliveries: u64,
    pub records: u64,
    pub keys: u64,
}

impl PruneReport {
    pub fn total(&self) -> u64 {
        self.deliveries + self.records + self.keys
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub pending: u64,
    pub due: u64,
    pub oldest_pending_at: Option<Millis>,
}

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

    async fn insert_webhook(&self, webhook: &Webhook) -> StoreResult<()>;
    /// Replaces a webhook; [`StoreError::NotFound`] when it does not exist.
    async fn update_webhook(&self, webhook: &Webhook) -> StoreResult<()>;
    /// Deletes a webhook and its deliveries; [`StoreError::NotFound`] when it does not exist.
    async fn delete_webhook(&self, workspace_id: &str, id: &str) -> StoreResult<()>;
    /// Brings every webhook's stored secrets into the form the configured keys write: sealed
    /// with the current key (or plain without keys). Returns how many webhooks changed; fails
    /// when a stored value does not open with the configured keys.
    async fn reseal_webhooks(&self) -> StoreResult<u64>;
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
    async fn release(&self, leases: &[(String, String)]) -> StoreResult<()>;
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
}

/// A delivery that may be claimed: its id, its webhook, whether it is a retry, and whether its
/// webhook's breaker is half-open (one attempt at a time).
#[derive(Debug, Clone)]
pub struct Candidate {
    pub delivery_id: String,
    pub webhook_id: String,
    pub retry: bool,
    pub half_open: bool,
}

/// Webhooks with fewer attempts than this in flight may use the reserved slots.
pub const RESERVE_BELOW: usize = 16;

impl ClaimRequest {
    /// Webhooks that can take no slot in this round: at their in-flight limit, or holding
    /// many attempts when only reserved slots are left. Backends leave their deliveries out of
    /// the candidates, so they cannot crowd out the deliveries of webhooks that can.
    pub fn blocked_webhooks(&self) -> Vec<String> {
        let only_reserve = self.limit <= self.reserve;
        self.in_flight
            .iter()
            .filter(|(_, n)| **n >= self.per_webhook_limit || (only_reserve && **n >= RESERVE_BELOW))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// How many candidates to read per webhook lane when `lanes` webhooks have due deliveries:
/// their share of twice the claim's `limit` (twice, so first attempts can be preferred over
/// retries due earlier), at least a few. Reading every lane's full room would read (and on
/// PostgreSQL lock) a hundred times more rows than a claim can take with a hundred webhooks.
pub fn lane_share(limit: usize, lanes: usize) -> usize {
    (2 * limit).div_ceil(lanes.max(1)).max(4)
}

/// Interleaves candidates webhook by webhook: each webhook's first (oldest due), then each
/// one's second, and so on, starting from the webhook at `start` (modulo how many there are),
/// so one webhook's pile of due deliveries never makes the others wait behind it. Within a
/// webhook the order is kept. Shared by every backend.
pub fn round_robin(candidates: Vec<Candidate>, start: usize) -> Vec<Candidate> {
    let mut lanes: Vec<VecDeque<Candidate>> = Vec::new();
    let mut lane_of: HashMap<String, usize> = HashMap::new();
    for candidate in candidates {
        let next = lanes.len();
        let lane = *lane_of.entry(candidate.webhook_id.clone()).or_insert(next);
        if lane == next {
            lanes.push(Default::default());
        }
        lanes[lane].push_back(candidate);
    }
    if lanes.is_empty() {
        return Vec::new();
    }
    let start = start % lanes.len();
    lanes.rotate_left(start);
    let mut interleaved = Vec::new();
    while lanes.iter().any(|lane| !lane.is_empty()) {
        interleaved.extend(lanes.iter_mut().filter_map(|lane| lane.pop_front()));
    }
    interleaved
}

/// Chooses which candidates (each lane oldest due first) to lease: first attempts before
/// retries, but retries keep at least a quarter of the slots so they are never starved; no
/// webhook over its in-flight limit; one at a time for a half-open breaker; the last
/// `reserve` slots only for webhooks with few attempts in flight. Shared by every backend.
pub fn pick_within_limits(candidates: &[Candidate], request: &ClaimRequest) -> Vec<String> {
    let (retries, firsts): (Vec<&Candidate>, Vec<&Candidate>) = candidates.iter().partition(|c| c.retry);
    let retry_share = if retries.is_empty() {
        0
    } else {
        request.limit.div_ceil(4)
    };
    let first_share = request.limit.saturating_sub(retry_share);
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut chosen: HashSet<String> = HashSet::new();
    let mut picked: Vec<String> = Vec::new();
    let mut take = |lane: &[&Candidate], cap: usize, picked: &mut Vec<String>| {
        for candidate in lane {
            if picked.len() >= cap {
                break;
            }
            if chosen.contains(&candidate.delivery_id) {
                continue;
            }
            let limit = if candidate.half_open {
                1
            } else {
                request.per_webhook_limit
            };
            let already = request.in_flight.get(&candidate.webhook_id).copied().unwrap_or(0);
            let count = taken.entry(candidate.webhook_id.clone()).or_insert(0);
            let in_reserve = picked.len() >= request.limit.saturating_sub(request.reserve);
            if already + *count < limit && (!in_reserve || already + *count < RESERVE_BELOW) {
                *count += 1;
                chosen.insert(candidate.delivery_id.clone());
                picked.push(candidate.delivery_id.clone());
            }
        }
    };
    take(&firsts, first_share, &mut picked);
    take(&retries, request.limit, &mut picked);
    take(&firsts, request.limit, &mut picked);
    picked
}

/// Builds the claims of a claim round from what the backend read: the leased deliveries (in
/// any order), their webhooks and their records' bodies. Claims come out in `picked` order.
/// Shared by every backend.
pub fn assemble_claims(
    picked: &[String],
    mut deliveries: Vec<Delivery>,
    webhooks: Vec<Webhook>,
    bodies: &HashMap<String, String>,
    lease: &Lease,
) -> StoreResult<Vec<Claimed>> {
    let order: HashMap<&str, usize> = picked.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    deliveries.sort_by_key(|d| order.get(d.id.as_str()).copied());
    let hooks: HashMap<String, Arc<Webhook>> = webhooks.into_iter().map(|w| (w.id.clone(), Arc::new(w))).collect();
    let corrupt = |what: String| StoreError::corrupt("delivery", what);
    deliveries
        .into_iter()
        .map(|delivery| {
            let webhook = hooks
                .get(&delivery.webhook_id)
                .cloned()
                .ok_or_else(|| corrupt(format!("{} has no webhook", delivery.id)))?;
            let records = delivery
                .record_ids
                .iter()
                .map(|id| {
                    bodies
                        .get(id)
                        .cloned()
                        .ok_or_else(|| corrupt(format!("record {id} is missing")))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Claimed {
                delivery,
                lease: lease.clone(),
                webhook,
                records,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(webhook: &str, n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                delivery_id: format!("{webhook}-{i}"),
                webhook_id: webhook.into(),
                retry: false,
                half_open: false,
            })
            .collect()
    }

    fn request(limit: usize, reserve: usize, in_flight: &[(&str, usize)]) -> ClaimRequest {
        ClaimRequest {
            now: 0,
            lease: Lease {
                token: "l".into(),
                until: 1,
            },
            limit,
            per_webhook_limit: 64,
            reserve,
            breaker_threshold: 5,
            in_flight: in_flight.iter().map(|(w, n)| ((*w).to_owned(), *n)).collect(),
        }
    }

    #[test]
    fn webhooks_holding_many_slots_cannot_take_the_reserve() {
        // Slow webhooks already hold most slots; 32 are free, all of them reserved.
        let mut due = candidates("slow", 40);
        due.extend(candidates("healthy", 20));
        let picked = pick_within_limits(&due, &request(32, 32, &[("slow", 48), ("healthy", 0)]));
        assert!(picked.iter().all(|id| id.starts_with("healthy")), "{picked:?}");
        assert_eq!(picked.len(), RESERVE_BELOW);
    }

    #[test]
    fn a_webhook_is_left_out_of_a_claim_only_when_it_can_take_no_slot() {
        let blocked = |limit: usize, reserve: usize, in_flight: usize| {
            let mut request = request(limit, reserve, &[("w", in_flight)]);
            request.per_webhook_limit = 20;
            !request.blocked_webhooks().is_empty()
        };
        assert!(!blocked(10, 2, 19), "one below its own limit");
        assert!(blocked(10, 2, 20), "at its own limit");
        assert!(
            !blocked(10, 2, RESERVE_BELOW),
            "free slots beyond the reserve: many in flight is fine"
        );
        assert!(
            blocked(2, 2, RESERVE_BELOW),
            "only reserved slots left, and it holds many"
        );
        assert!(
            !blocked(2, 2, RESERVE_BELOW - 1),
            "only reserved slots left, and it holds few"
        );
        assert!(!blocked(3, 2, RESERVE_BELOW), "one slot more than the reserve");
        assert_eq!(request(10, 2, &[("w", 64)]).blocked_webhooks(), ["w"]);
    }

    fn finish(webhook: &str, health: Health, now: Millis) -> Finish {
        Finish {
            delivery_id: format!("dlv_{now}"),
            webhook_id: webhook.into(),
            lease_token: "l".into(),
            attempt: Attempt {
                id: "att".into(),
                delivery_id: "dlv".into(),
                started_at: now,
                duration_ms: 1,
                status: None,
                response_headers: "{}".into(),
                response_body: None,
                error_kind: None,
                explanation: String::new(),
                outcome: DeliveryState::Pending,
            },
            state: DeliveryState::Pending,
            failures: 1,
            next_attempt_at: now,
            now,
            disable_webhook: None,
            health,
        }
    }

    #[test]
    fn a_batch_of_results_changes_each_webhooks_breaker_in_order() {
        let down = |at: Millis| Health::Down { at, retry_at: at + 5 };
        let batch = [
            finish("a", down(10), 10),
            finish("a", down(20), 20),
            finish("b", down(30), 30),
            finish("b", Health::Up, 40),
            finish("b", down(50), 50),
            finish("b", down(60), 60),
            finish("c", Health::Unknown, 70),
        ];
        let changes = breaker_changes(&batch);
        assert_eq!(
            changes["a"],
            HealthChange {
                breaker: BreakerChange::Add {
                    failures: 2,
                    until: 25,
                    since: 10
                },
                last_success: 0,
                last_failure: 20,
            },
            "no success: two more failures, failing since the first"
        );
        assert_eq!(
            changes["b"],
            HealthChange {
                breaker: BreakerChange::Set {
                    failures: 2,
                    until: 65,
                    since: 50
                },
                last_success: 40,
                last_failure: 60,
            },
            "a success, then two failures: counted from the success"
        );
        assert!(
            !changes.contains_key("c"),
            "an attempt that says nothing of the receiver"
        );
        let recovering = [finish("d", down(1), 1), finish("d", Health::Up, 2)];
        let healed = breaker_changes(&recovering);
        assert_eq!(
            healed["d"].breaker,
            BreakerChange::Set {
                failures: 0,
                until: 0,
                since: 0
            }
        );
    }

    #[test]
    fn a_prune_report_totals_its_kinds() {
        let report = PruneReport {
            deliveries: 2,
            records: 3,
            keys: 5,
        };
        assert_eq!(report.total(), 10);
        assert_eq!(PruneReport::default().total(), 0);
    }

    #[test]
    fn each_lane_reads_its_share_of_twice_the_limit() {
        assert_eq!(lane_share(256, 1), 512);
        assert_eq!(lane_share(256, 10), 52);
        assert_eq!(lane_share(256, 1000), 4, "at least a few");
        assert_eq!(lane_share(10, 0), 20);
    }

    #[test]
    fn round_robin_takes_each_webhook_in_turn_from_a_rotating_start() {
        let mut due = candidates("pile", 5);
        due.extend(candidates("a", 2));
        due.extend(candidates("b", 1));
        let order = |start| -> Vec<String> {
            round_robin(due.clone(), start)
                .into_iter()
                .map(|c| c.delivery_id)
                .collect()
        };
        assert_eq!(
            order(0),
            ["pile-0", "a-0", "b-0", "pile-1", "a-1", "pile-2", "pile-3", "pile-4"]
        );
        assert_eq!(
            order(4)[..3],
            ["a-0", "b-0", "pile-0"],
            "start 4 of 3 webhooks is the second"
        );
        assert!(round_robin(Vec::new(), 7).is_empty());
    }

    #[test]
    fn outside_the_reserve_only_the_per_webhook_limit_applies() {
        let due = candidates("busy", 100);
        let picked = pick_within_limits(&due, &request(100, 25, &[]));
        assert_eq!(picked.len(), 64, "the per-webhook limit, all from unreserved slots");
        let picked = pick_within_limits(&due, &request(60, 25, &[]));
        assert_eq!(
            picked.len(),
            35,
            "one webhook with many in flight leaves the reserve free"
        );
    }
}
