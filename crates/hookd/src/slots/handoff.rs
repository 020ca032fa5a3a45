//! Hand-off: while the dispatcher has room and the store holds nothing due that it has not
//! claimed, an ingest commit writes its new deliveries already leased to this dispatcher and
//! hands them over in memory once committed, so they are attempted at once, without a claim
//! round trip through the store (which on SQLite is most of the writer's work per delivery).
//!
//! Nothing changes for what is stored: a handed-over delivery is a pending delivery under a
//! lease like a claimed one, so if this process dies its lease expires and any process
//! attempts it. A delivery the dispatcher cannot take at once (no room, its webhook at its
//! in-flight limit or failing, or paced: ordered per device or joining others) is written unleased as before, and from then on that webhook's
//! new deliveries go through the store too, until a claim round that could have claimed for
//! the webhook finds nothing of it: nothing handed over overtakes deliveries of its webhook
//! waiting in the store, and a webhook with a pile waiting does not hold back others. Room is
//! decided by the same [`hookd_core::store::Admission`] rule as claims.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hookd_core::clock::Millis;
use hookd_core::id::{DeliveryId, WebhookId};
use hookd_core::store::{ClaimRequest, Claimed, IngestRequest, IngestResult, Lease};
use hookd_core::webhook::Webhook;
use tokio::sync::mpsc;

use super::{Slots, by_webhook, lock};

pub(super) struct Handoff {
    /// Set once a claim round found less due than it could take: until then the store may hold
    /// anything.
    started: AtomicBool,
    behind: Mutex<Behind>,
    queue: mpsc::UnboundedSender<Claimed>,
    pub(super) arrivals: Mutex<Option<mpsc::UnboundedReceiver<Claimed>>>,
}

/// Webhooks the store may hold due, unclaimed deliveries of, each with the number of its
/// latest unleased write (so a claim round that raced a write does not clear it).
#[derive(Default, Clone)]
pub struct Behind {
    writes: u64,
    webhooks: HashMap<WebhookId, u64>,
}

impl Handoff {
    pub(super) fn new() -> Self {
        let (queue, arrivals) = mpsc::unbounded_channel();
        Self {
            started: AtomicBool::new(false),
            behind: Mutex::new(Behind::default()),
            queue,
            arrivals: Mutex::new(Some(arrivals)),
        }
    }

    pub(super) fn snapshot(&self) -> Behind {
        lock(&self.behind).clone()
    }
}

/// The deliveries of a commit written leased to this dispatcher: (request, delivery) indexes.
pub struct Leased {
    lease: Lease,
    picked: Vec<(usize, usize)>,
    webhooks: HashMap<WebhookId, Arc<Webhook>>,
}

/// The webhook as this process last saw it: not failing. A cached copy may still hold the
/// failures it had when it was read, which its attempt must not take for current (they decide
/// auto-disabling and the `webhook.recovered` event).
fn as_last_seen_healthy(webhook: &Arc<Webhook>) -> Arc<Webhook> {
    let health = &webhook.health;
    if health.consecutive_failures == 0 && health.failing_since == 0 && health.breaker_until == 0 {
        return webhook.clone();
    }
    let mut copy = Webhook::clone(webhook);
    copy.health.consecutive_failures = 0;
    copy.health.failing_since = 0;
    copy.health.breaker_until = 0;
    Arc::new(copy)
}

impl Slots {
    /// After a claim round (`request`, which took `claimed`, and `before` it): if it took less
    /// than it could, every webhook it could claim for but took nothing of has nothing due in
    /// the store, unless one of its deliveries was written unleased meanwhile.
    pub fn claimed(&self, before: &Behind, request: &ClaimRequest, claimed: &[Claimed]) {
        if claimed.len() >= request.limit {
            return;
        }
        let handoff = &self.inner.handoff;
        handoff.started.store(true, Ordering::Release);
        let blocked: HashSet<WebhookId> = request.blocked_webhooks().into_iter().collect();
        let took: HashSet<&str> = claimed.iter().map(|c| c.webhook.id.as_str()).collect();
        let mut behind = lock(&handoff.behind);
        for (webhook, write) in &before.webhooks {
            let unchanged = behind.webhooks.get(webhook) == Some(write);
            if unchanged && !blocked.contains(webhook) && !took.contains(webhook.as_str()) {
                behind.webhooks.remove(webhook);
            }
        }
    }

    /// Leases to this dispatcher the new deliveries of `requests` it can attempt at once (see
    /// the module documentation); `webhooks` are the webhooks they were planned for, by id.
    /// Call [`Slots::hand_over`] once the requests are committed, or [`Slots::forget`] if they
    /// are not.
    pub fn lease_new(
        &self,
        requests: &mut [IngestRequest],
        webhooks: &HashMap<WebhookId, Arc<Webhook>>,
        now: Millis,
    ) -> Leased {
        let mut leased = Leased {
            lease: self.lease(now),
            picked: Vec::new(),
            webhooks: HashMap::new(),
        };
        if !requests.iter().flat_map(|r| &r.deliveries).any(|d| d.lease.is_none()) {
            return leased;
        }
        let handoff = &self.inner.handoff;
        let active = self.inner.running.load(Ordering::Acquire) && handoff.started.load(Ordering::Acquire);
        let mut in_flight = lock(&self.inner.in_flight);
        let mut behind = lock(&handoff.behind);
        let mut per_webhook = by_webhook(&in_flight);
        let admission = self.admission_with(in_flight.len());
        let mut taken = 0;
        for (r, request) in requests.iter_mut().enumerate() {
            for (d, delivery) in request.deliveries.iter_mut().enumerate() {
                if delivery.lease.is_some() {
                    continue;
                }
                let busy = per_webhook.entry(delivery.webhook_id.clone()).or_default();
                // A paced delivery may join a stored one or wait behind one: only a claim,
                // which reads the store, can take it.
                let paced = delivery.ordering_key.is_some() || delivery.coalescing.is_some();
                let takes = active
                    && !paced
                    && admission.admits(taken, *busy, false)
                    && !behind.webhooks.contains_key(&delivery.webhook_id);
                let healthy = webhooks.get(&delivery.webhook_id).filter(|w| {
                    takes && delivery.due_at <= now && !self.is_failing(&w.id, w.health.consecutive_failures)
                });
                let Some(webhook) = healthy else {
                    behind.writes += 1;
                    let write = behind.writes;
                    behind.webhooks.insert(delivery.webhook_id.clone(), write);
                    continue;
                };
                taken += 1;
                *busy += 1;
                delivery.lease = Some(leased.lease.clone());
                in_flight.insert(
                    delivery.id.clone(),
                    (leased.lease.token.clone(), delivery.webhook_id.clone()),
                );
                leased
                    .webhooks
                    .entry(webhook.id.clone())
                    .or_insert_with(|| as_last_seen_healthy(webhook));
                leased.picked.push((r, d));
            }
        }
        leased
    }

    /// Hands the leased deliveries of the requests that were committed to the dispatcher; the
    /// others' leases are forgotten (a replayed or conflicting request wrote nothing).
    pub fn hand_over(&self, leased: Leased, requests: &[IngestRequest], results: &[IngestResult]) {
        let mut forgotten = Vec::new();
        let mut handed = 0;
        for &(r, d) in &leased.picked {
            let (request, delivery) = (&requests[r], &requests[r].deliveries[d]);
            let webhook = leased.webhooks.get(&delivery.webhook_id).cloned();
            match (&results[r], webhook) {
                (IngestResult::Committed(_), Some(webhook)) => {
                    let records = delivery
                        .record_ids
                        .iter()
                        .filter_map(|id| request.records.iter().find(|rec| &rec.id == id))
                        .map(|rec| rec.body.clone())
                        .collect();
                    let claimed = Claimed::created(delivery, leased.lease.clone(), webhook, records);
                    match self.inner.handoff.queue.send(claimed) {
                        Ok(()) => handed += 1,
                        Err(unsent) => forgotten.push(unsent.0.delivery.id),
                    }
                }
                _ => forgotten.push(delivery.id.clone()),
            }
        }
        self.inner.metrics.handed_over(handed);
        self.free_all(&forgotten);
    }

    /// The commit of the leased deliveries failed: nothing of them was written.
    pub fn forget(&self, leased: Leased, requests: &[IngestRequest]) {
        let ids: Vec<DeliveryId> = leased
            .picked
            .iter()
            .map(|&(r, d)| requests[r].deliveries[d].id.clone())
            .collect();
        self.free_all(&ids);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, Settings};
    use hookd_core::store::NewDelivery;
    use hookd_core::webhook::WebhookSpec;
    use serde_json::json;

    const NOW: Millis = 1_700_000_000_000;

    fn slots() -> Slots {
        let mut settings = Settings::load(None, &Overrides::default()).unwrap().dispatch;
        settings.concurrency = 8;
        settings.per_webhook_in_flight = 2;
        Slots::new(&settings, crate::metrics::Metrics::new(0))
    }

    fn webhook(consecutive_failures: u32) -> Arc<Webhook> {
        Arc::new(Webhook {
            id: WebhookId::generate(),
            workspace_id: "ws".into(),
            spec: WebhookSpec::from_stored(&json!({ "name": "w", "kind": "data", "url": "https://example.com/" }))
                .unwrap(),
            secret: String::new(),
            previous_secrets: Vec::new(),
            disabled_reason: None,
            created_at: NOW,
            updated_at: NOW,
            health: hookd_core::webhook::WebhookHealth {
                consecutive_failures,
                ..Default::default()
            },
        })
    }

    fn request(webhooks: &[&Webhook], each: usize) -> IngestRequest {
        let deliveries = webhooks
            .iter()
            .flat_map(|w| std::iter::repeat_n(*w, each))
            .map(|w| NewDelivery {
                id: DeliveryId::generate(),
                workspace_id: "ws".into(),
                webhook_id: w.id.clone(),
                record_ids: vec![],
                created_at: NOW,
                due_at: NOW,
                ordering_key: None,
                coalescing: None,
                lease: None,
            })
            .collect();
        IngestRequest {
            door: None,
            devices: Vec::new(),
            workspace_id: "ws".into(),
            idempotency: None,
            records: vec![],
            deliveries,
        }
    }

    fn leased(requests: &[IngestRequest], webhook: &Webhook) -> usize {
        requests
            .iter()
            .flat_map(|r| &r.deliveries)
            .filter(|d| d.webhook_id == webhook.id && d.lease.is_some())
            .count()
    }

    fn round(limit: usize, in_flight: &[(&Webhook, usize)]) -> ClaimRequest {
        ClaimRequest {
            now: NOW,
            lease: Lease {
                token: "l".into(),
                until: NOW,
            },
            limit,
            per_webhook_limit: 2,
            reserve: 2,
            breaker_threshold: 5,
            in_flight: in_flight.iter().map(|(w, n)| (w.id.clone(), *n)).collect(),
        }
    }

    fn in_flight(slots: &Slots) -> usize {
        lock(&slots.inner.in_flight).len()
    }

    #[test]
    fn new_deliveries_are_leased_only_with_room_and_nothing_of_their_webhook_waiting() {
        let slots = slots();
        let (healthy, failing, other) = (webhook(0), webhook(1), webhook(0));
        let webhooks: HashMap<WebhookId, Arc<Webhook>> =
            [&healthy, &failing, &other].map(|w| (w.id.clone(), w.clone())).into();

        let mut requests = vec![request(&[&healthy], 1)];
        slots.lease_new(&mut requests, &webhooks, NOW);
        assert_eq!(leased(&requests, &healthy), 0, "a stepped dispatcher takes nothing");

        slots.set_running(true);
        let mut requests = vec![request(&[&healthy], 1)];
        slots.lease_new(&mut requests, &webhooks, NOW);
        assert_eq!(
            leased(&requests, &healthy),
            0,
            "nothing until a claim round found the store empty"
        );

        let before = slots.snapshot();
        slots.claimed(&before, &round(8, &[]), &[]);
        let mut first = vec![request(&[&healthy, &failing], 3)];
        let leases = slots.lease_new(&mut first, &webhooks, NOW);
        assert_eq!(leased(&first, &healthy), 2, "up to the webhook's in-flight limit");
        assert_eq!(leased(&first, &failing), 0, "never a webhook failing in a row");
        assert_eq!(in_flight(&slots), 2, "leased deliveries hold their slots");

        let mut requests = vec![request(&[&other, &healthy], 1)];
        slots.lease_new(&mut requests, &webhooks, NOW);
        assert_eq!(
            leased(&requests, &other),
            1,
            "a webhook with nothing waiting is not held back"
        );
        assert_eq!(
            leased(&requests, &healthy),
            0,
            "the store holds an unleased delivery of this one: nothing overtakes it"
        );

        // A claim round that raced a new unleased write, or could not claim for the webhook,
        // does not conclude that nothing of it is waiting.
        let before = slots.snapshot();
        slots.lease_new(&mut [request(&[&healthy], 1)], &webhooks, NOW);
        slots.claimed(&before, &round(8, &[]), &[]);
        let before = slots.snapshot();
        slots.claimed(&before, &round(8, &[(&healthy, 2)]), &[]);
        let mut requests = vec![request(&[&healthy], 1)];
        slots.forget(leases, &first);
        assert_eq!(in_flight(&slots), 1, "a failed commit gives its slots back");
        slots.lease_new(&mut requests, &webhooks, NOW);
        assert_eq!(leased(&requests, &healthy), 0);

        let before = slots.snapshot();
        slots.claimed(&before, &round(8, &[]), &[]);
        let mut requests = vec![request(&[&healthy], 1)];
        slots.lease_new(&mut requests, &webhooks, NOW);
        assert_eq!(
            leased(&requests, &healthy),
            1,
            "caught up once a round found nothing of it"
        );
    }

    #[test]
    fn what_this_process_saw_of_a_webhook_overrides_its_cached_health() {
        let slots = slots();
        slots.set_running(true);
        slots.claimed(&slots.snapshot(), &round(8, &[]), &[]);
        let (recovered, failed) = (webhook(3), webhook(0));
        let webhooks: HashMap<WebhookId, Arc<Webhook>> =
            [&recovered, &failed].map(|w| (w.id.clone(), w.clone())).into();
        slots.saw_health(&recovered.id, false);
        slots.saw_health(&failed.id, true);
        let mut requests = vec![request(&[&recovered, &failed], 1)];
        let leases = slots.lease_new(&mut requests, &webhooks, NOW);
        assert_eq!(leased(&requests, &recovered), 1, "its last attempt succeeded");
        assert_eq!(leased(&requests, &failed), 0, "its last attempt failed");
        let mut arrivals = slots.take_arrivals().unwrap();
        slots.hand_over(leases, &requests, &[IngestResult::Committed(vec![])]);
        let handed = arrivals.try_recv().unwrap();
        assert_eq!(
            handed.webhook.health.consecutive_failures, 0,
            "its attempt sees it as last seen, not as cached"
        );
    }

    #[test]
    fn a_delivery_due_later_is_never_handed_over() {
        let slots = slots();
        slots.set_running(true);
        slots.claimed(&slots.snapshot(), &round(8, &[]), &[]);
        let hook = webhook(0);
        let webhooks: HashMap<WebhookId, Arc<Webhook>> = [(hook.id.clone(), hook.clone())].into();
        let mut requests = vec![request(&[&hook], 1)];
        requests[0].deliveries[0].due_at = NOW + 1;
        slots.lease_new(&mut requests, &webhooks, NOW);
        assert_eq!(leased(&requests, &hook), 0);
    }
}
