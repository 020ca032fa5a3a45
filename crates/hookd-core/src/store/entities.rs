//! What is stored: workspaces and their keys, records, deliveries and their attempts, leases.

use std::collections::HashMap;
use std::sync::Arc;

use super::{StoreError, StoreResult};
use crate::clock::Millis;
use crate::id::{DeliveryId, LeaseToken, WebhookId};
use crate::record::Kind;
use crate::webhook::Webhook;

#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
    /// `presence.offline_after`: its devices silent for longer are offline. `None`: no
    /// presence events.
    pub offline_after: Option<Millis>,
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
    pub id: DeliveryId,
    pub workspace_id: String,
    pub webhook_id: WebhookId,
    pub record_ids: Vec<String>,
    pub created_at: Millis,
    /// When it is first due: `created_at`, or later (a delivery planned for the future).
    pub due_at: Millis,
    /// The lane within its webhook whose deliveries are attempted one at a time, in the
    /// order they were written (a device id, for per-device ordering): a claim takes only a
    /// lane's oldest pending delivery, and only when it is not in flight. `None`: no order.
    pub ordering_key: Option<String>,
    /// How it joins a pending delivery of the same key (batch windows, debounce); see
    /// [`place`](super::place). `None`: it goes out alone.
    pub coalescing: Option<super::Coalescing>,
    /// Created already leased (the test send attempts it at once, outside the dispatcher).
    pub lease: Option<Lease>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub token: LeaseToken,
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
    /// What a source's door writes with the records it made.
    pub door: Option<DoorWrite>,
    /// The devices its records were heard from (not every record: the committer leaves out
    /// a device it wrote moments ago).
    pub devices: Vec<super::DeviceSeen>,
}

/// Written with the records a request to a source made, in their transaction: the message id
/// against replays (remembered with the records, so a request that fails to commit can be
/// sent again) and the request's log entry (its `record_ids` are the request's records').
#[derive(Debug, Clone)]
pub struct DoorWrite {
    pub message: Option<MessageSeen>,
    pub log: super::SourceRequest,
}

/// A message id to remember: see [`Store::remember_message`](super::Store::remember_message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSeen {
    pub source_id: String,
    pub message_id: String,
    pub now: Millis,
    pub until: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestResult {
    /// Written; the record ids.
    Committed(Vec<String>),
    /// The idempotency key was seen before with the same body; the first request's ids.
    Replayed(Vec<String>),
    /// The idempotency key was seen before with another body; nothing written.
    KeyConflict,
    /// The door's message id was seen within its window (a replay); nothing written.
    MessageSeen,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub workspace_id: String,
    pub webhook_id: WebhookId,
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
    /// The device whose order it keeps (`ordering: "device"`).
    pub ordering_key: Option<String>,
    /// Records that reached it: those it carries plus those superseded (`coalesce: latest`).
    pub coalesced: u32,
    /// Records it stands for but does not carry, superseded by a newer state of their device.
    pub superseded: u32,
    /// It went dead and its device's later deliveries went on without it.
    pub order_broken: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub id: String,
    pub delivery_id: DeliveryId,
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
                ordering_key: delivery.ordering_key.clone(),
                coalesced: delivery.record_ids.len() as u32,
                superseded: 0,
                order_broken: false,
            },
            lease,
            webhook,
            records,
        }
    }
}
