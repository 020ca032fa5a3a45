//! The operations every door shares — the API today; sources, MQTT and the dashboard next —
//! on workspaces and keys, webhooks, deliveries and records, and "ingest these records from
//! this origin". They check, decide and store; they return domain types and one error,
//! [`ServiceError`]. A door parses its input, calls an operation, renders the answer: no door
//! reaches the store, the committer or the dispatcher around them.
//!
//! # Layout
//!
//! - `tenants`: workspaces and their API keys, and `known` (those found before).
//! - `webhooks`: create, change, delete, the signing secret, the test send, replay.
//! - `conditions`: a draft condition tried on the newest records (preview).
//! - `deliveries`: the delivery log, a delivery's request body, retry, records.
//! - `ingest`: records in, from an [`Origin`].
//! - `sources`: inbound doors, receiving at them (verify, make records, commit), their log.
//! - `dashboard`: sign-ins, portal links and the attempt tallies the dashboard's charts read.
//! - `reshaping`: making records of a request (in the sandbox when programs run), replay
//!   of a logged request, preview of draft programs.

mod conditions;
mod dashboard;
mod deliveries;
mod devices;
mod doors;
mod ingest;
mod known;
mod reshaping;
mod sources;
mod tenants;
mod webhooks;

use std::sync::Arc;

use hookd_core::ValidationError;
use hookd_core::clock::{Clock, Millis};
use hookd_core::store::{QueueStats, Store, StoreError};

use crate::config::Settings;
use crate::dispatch::Dispatcher;
use crate::dispatch::network::NetworkPolicy;
use crate::ingest::Committer;
use crate::planner::Registry;

pub use crate::planner::Origin;
pub use conditions::ConditionVerdict;
pub use dashboard::Issued;
pub use deliveries::{DeliveryView, RequestBody};
pub use known::Known;
pub use reshaping::Preview;
pub use sources::{Arrival, Received, SourceChanged};
pub use tenants::{NewKey, key_hash};
pub use webhooks::{Changed, Tested};

/// What an operation could not do.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input is wrong; the error names the field (and any others found with it).
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// The thing does not exist (in this workspace).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// It would break a rule about what exists: a limit reached, a key reused.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The database (or the committer) cannot take it now; try again shortly.
    #[error("unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound("resource"),
            StoreError::Unavailable(_) => {
                tracing::warn!(error = ?err, "database unavailable");
                Self::Unavailable
            }
            StoreError::Other(_) => Self::Internal(err.into()),
        }
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// The operations, with what they need. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    parts: Parts,
    known: Known,
    doors: doors::Doors,
}

/// What the operations work with.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub committer: Committer,
    pub dispatcher: Dispatcher,
    /// The planner's cache of enabled webhooks, told of every change made here.
    pub registry: Registry,
    /// The SSRF policy, to warn about webhook URLs it blocks.
    pub network: Arc<NetworkPolicy>,
    /// Where sources' jq programs run.
    pub sandbox: crate::sandbox::Sandbox,
}

impl Service {
    pub fn new(parts: Parts) -> Self {
        Self {
            inner: Arc::new(Inner {
                parts,
                known: Known::default(),
                doors: doors::Doors::default(),
            }),
        }
    }

    fn store(&self) -> &dyn Store {
        self.inner.parts.store.as_ref()
    }

    /// The time by hookd's clock.
    pub fn now(&self) -> Millis {
        self.inner.parts.clock.now()
    }

    /// Workspaces and keys found before (what authentication asks first).
    pub fn known(&self) -> &Known {
        &self.inner.known
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> ServiceResult<()> {
        Ok(self.store().ping().await?)
    }

    pub async fn queue_stats(&self) -> ServiceResult<(QueueStats, Millis)> {
        let now = self.now();
        Ok((self.store().queue_stats(now).await?, now))
    }

    /// Another process revoked a key or deleted a workspace: forget what was remembered.
    pub fn credentials_changed(&self) {
        self.inner.known.forget_all();
    }

    /// Another process changed a webhook: the planner reads them again.
    pub fn webhooks_changed_anywhere(&self) {
        self.inner.parts.registry.changed_anywhere();
    }

    /// A webhook of this workspace was created, changed or deleted here.
    fn webhooks_changed(&self, workspace_id: &str) {
        self.inner.parts.registry.changed(workspace_id);
    }
}
