//! The presence sweep: devices silent for longer than their workspace's
//! `presence.offline_after` go offline, and back online with their next record; a device's
//! own `connection` / `disconnection` event does the same at once. Each change is an ordinary
//! event (`device.offline`, `device.online`) in the device's workspace, for webhooks that
//! subscribe with `event_types`.
//!
//! One process sweeps at a time (a lease in the store). A sweep commits its events first and
//! then the devices' new states, so a crash in between sends an event twice, never loses one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hookd_core::clock::{Clock, Millis};
use hookd_core::id::new_id;
use hookd_core::record::RecordIn;
use hookd_core::store::{DeviceState, PresenceChange, Store};
use hookd_core::timefmt::rfc3339;
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::ingest::{Submission, WeakCommitter};
use crate::planner::Origin;

/// How often silence is looked for (and the lease renewed).
const EVERY: Duration = Duration::from_secs(1);
/// How long the sweep is this process's without a renewal.
const LEASE: Millis = 30_000;
/// Changes taken per sweep; the rest wait for the next.
const PER_SWEEP: usize = 1000;

/// A handle to the sweep. Cheap to clone.
#[derive(Clone)]
pub struct Presence {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Weak, like the dispatcher's: a sweep handle kept somewhere must not keep the committer
    /// from stopping at shutdown.
    committer: WeakCommitter,
    holder: String,
    wake: Arc<Notify>,
    /// One sweep at a time in this process.
    sweeping: tokio::sync::Mutex<()>,
}

impl Presence {
    /// `wake` is told when a device's own event should change its state at once.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, committer: WeakCommitter, wake: Arc<Notify>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                committer,
                holder: new_id("sweep"),
                wake,
                sweeping: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Sweeps every second, and when woken, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(err) = self.sweep().await {
                tracing::warn!(error = %err, "the presence sweep failed; trying again");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    }

    /// One sweep, if this process holds the sweep: the changes due now, their events, their
    /// new states. Returns how many devices changed.
    pub async fn sweep(&self) -> anyhow::Result<usize> {
        let inner = &self.inner;
        let _one = inner.sweeping.lock().await;
        let now = inner.clock.now();
        // Read first, so an idle sweep writes nothing; the lease is taken only when there is
        // something to change, and only its holder goes on.
        let changes = inner.store.presence_changes(now, PER_SWEEP).await?;
        if changes.is_empty()
            || !inner
                .store
                .claim_presence_sweep(&inner.holder, now, now + LEASE)
                .await?
        {
            return Ok(0);
        }
        let mut by_workspace: BTreeMap<&str, Vec<RecordIn>> = BTreeMap::new();
        for change in &changes {
            by_workspace
                .entry(change.device.workspace_id.as_str())
                .or_default()
                .push(event(change));
        }
        let Some(committer) = inner.committer.upgrade() else {
            return Ok(0); // stopping
        };
        for (workspace, records) in by_workspace {
            let submission = Submission {
                workspace_id: workspace.to_owned(),
                records,
                idempotency: None,
                origin: Origin::Presence,
                door: None,
            };
            committer
                .submit(submission)
                .await
                .map_err(|e| anyhow::anyhow!("presence events could not be recorded: {e}"))?;
        }
        inner.store.apply_presence(&changes, now).await?;
        Ok(changes.len())
    }
}

/// The event a change makes: `device.offline` or `device.online`, about its device.
fn event(change: &PresenceChange) -> RecordIn {
    let device = &change.device;
    let event_type = match change.to {
        DeviceState::Offline => "device.offline",
        DeviceState::Online => "device.online",
    };
    let payload = json!({
        "device_id": device.device_id,
        "fleet_id": device.fleet_id,
        "last_seen": rfc3339(device.last_seen),
        "reason": change.reason.as_str(),
    });
    RecordIn::device_event(event_type, &device.device_id, device.fleet_id.as_deref(), payload)
}
