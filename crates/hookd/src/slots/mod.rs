//! The slot ledger: what this process has in flight and may take next, shared by the
//! committer (which leases new deliveries to the dispatcher as it writes them, see
//! [`handoff`]) and the dispatcher (which claims due ones from the store). One ledger, so both
//! count the same slots by the same [`Admission`] rule, and neither needs the other.
//!
//! It holds: the attempts in flight (delivery → lease token, webhook), the hand-off state and
//! queue, what this process last saw of each webhook's health, and the wake-up for a sleeping
//! dispatcher.

mod handoff;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hookd_core::clock::Millis;
use hookd_core::id::{DeliveryId, LeaseToken, WebhookId};
use hookd_core::store::{Admission, Claimed, Lease};
use tokio::sync::{Notify, mpsc};

use crate::config::DispatchSettings;
use crate::metrics::Metrics;
pub use handoff::Leased;
use handoff::{Behind, Handoff};

/// A handle to the ledger. Cheap to clone.
#[derive(Clone)]
pub struct Slots {
    inner: Arc<Inner>,
}

struct Inner {
    concurrency: usize,
    per_webhook: usize,
    lease: Duration,
    /// Attempts this process has leased whose request is not answered yet (what the limits
    /// count): delivery id → (lease token, webhook id).
    in_flight: Mutex<HashMap<DeliveryId, (LeaseToken, WebhookId)>>,
    /// Whether each webhook was failing when this process last saw it (an attempt's result,
    /// or a claim's fresh webhook row); newer than a cached webhook's stored health.
    failing: Mutex<HashMap<WebhookId, bool>>,
    handoff: Handoff,
    wake: Notify,
    /// Set while the dispatcher loop runs: a stepped dispatcher takes nothing handed over.
    running: AtomicBool,
    metrics: Metrics,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Slots {
    pub fn new(settings: &DispatchSettings, metrics: Metrics) -> Self {
        Self {
            inner: Arc::new(Inner {
                concurrency: settings.concurrency,
                per_webhook: settings.per_webhook_in_flight,
                lease: settings.lease,
                in_flight: Mutex::new(HashMap::new()),
                failing: Mutex::new(HashMap::new()),
                handoff: Handoff::new(),
                wake: Notify::new(),
                running: AtomicBool::new(false),
                metrics,
            }),
        }
    }

    /// A new lease, from `now` for `dispatch.lease`.
    pub fn lease(&self, now: Millis) -> Lease {
        Lease {
            token: LeaseToken::generate(),
            until: now + self.inner.lease.as_millis() as i64,
        }
    }

    /// The slots kept for webhooks with few attempts in flight: a quarter.
    pub fn reserve(&self) -> usize {
        self.inner.concurrency / 4
    }

    /// The rule for a round that starts now: the slots free, the per-webhook limit, the
    /// reserve.
    pub fn admission(&self) -> Admission {
        self.admission_with(lock(&self.inner.in_flight).len())
    }

    fn admission_with(&self, in_flight: usize) -> Admission {
        Admission {
            free: self.inner.concurrency.saturating_sub(in_flight),
            per_lane: self.inner.per_webhook,
            reserve: self.reserve(),
        }
    }

    /// Attempts in flight, by webhook.
    pub fn in_flight_by_webhook(&self) -> HashMap<WebhookId, usize> {
        by_webhook(&lock(&self.inner.in_flight))
    }

    /// Takes the slots of claimed deliveries, and notes their webhooks' health as claimed.
    pub fn hold(&self, claimed: &[Claimed]) {
        let mut in_flight = lock(&self.inner.in_flight);
        let mut failing = lock(&self.inner.failing);
        for c in claimed {
            in_flight.insert(c.delivery.id.clone(), (c.lease.token.clone(), c.webhook.id.clone()));
            failing.insert(c.webhook.id.clone(), c.webhook.health.consecutive_failures > 0);
        }
    }

    /// Frees a delivery's slot: its receiver answered (or it was never sent).
    pub fn free(&self, delivery_id: &str) {
        lock(&self.inner.in_flight).remove(delivery_id);
    }

    fn free_all(&self, ids: &[DeliveryId]) {
        let mut in_flight = lock(&self.inner.in_flight);
        for id in ids {
            in_flight.remove(id);
        }
    }

    /// Frees every slot; returns the (delivery, lease token) pairs that held them.
    pub fn drain(&self) -> Vec<(DeliveryId, LeaseToken)> {
        lock(&self.inner.in_flight)
            .drain()
            .map(|(delivery, (token, _))| (delivery, token))
            .collect()
    }

    /// Notes whether a webhook's latest recorded attempt left it failing.
    pub fn saw_health(&self, webhook_id: &str, failing: bool) {
        lock(&self.inner.failing).insert(webhook_id.into(), failing);
    }

    fn is_failing(&self, webhook_id: &str, stored_failures: u32) -> bool {
        lock(&self.inner.failing)
            .get(webhook_id)
            .copied()
            .unwrap_or(stored_failures > 0)
    }

    /// Tells a sleeping dispatcher that new work may be due.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Resolves at the next [`Slots::wake`] (or at once for one made meanwhile).
    pub async fn woken(&self) {
        self.inner.wake.notified().await;
    }

    /// Marks the dispatcher loop as running (or not): only then is anything handed over.
    pub fn set_running(&self, running: bool) {
        self.inner.running.store(running, Ordering::Release);
    }

    /// The queue of handed-over deliveries, for the one dispatcher loop; `None` if taken.
    pub fn take_arrivals(&self) -> Option<mpsc::UnboundedReceiver<Claimed>> {
        lock(&self.inner.handoff.arrivals).take()
    }

    /// Taken before a claim round; see [`Slots::claimed`].
    pub fn snapshot(&self) -> Behind {
        self.inner.handoff.snapshot()
    }
}

/// Attempts in flight per webhook, from the map of attempts in flight.
fn by_webhook(in_flight: &HashMap<DeliveryId, (LeaseToken, WebhookId)>) -> HashMap<WebhookId, usize> {
    let mut counts: HashMap<WebhookId, usize> = HashMap::new();
    for (_, webhook) in in_flight.values() {
        *counts.entry(webhook.clone()).or_default() += 1;
    }
    counts
}
