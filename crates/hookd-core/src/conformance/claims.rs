//! Claims: leases, the in-flight limits, lanes, the breaker.

use super::*;

pub async fn claims_due_deliveries_once_until_the_lease_expires(store: &dyn Store) {
    let f = fixture(store).await;
    ingest(store, &f.webhook, 3, T0).await;
    let claimed = store.claim_due(&claim_request(T0, 10)).await.unwrap();
    assert_eq!(claimed.len(), 3);
    assert_eq!(claimed[0].records, vec!["{}".to_owned()]);
    assert_eq!(claimed[0].webhook.id, f.webhook.id);
    assert!(
        store.claim_due(&claim_request(T0 + 1, 10)).await.unwrap().is_empty(),
        "leased deliveries are not claimed again"
    );
    let after_expiry = store.claim_due(&claim_request(T0 + LEASE + 1, 10)).await.unwrap();
    assert_eq!(after_expiry.len(), 3, "an expired lease makes the delivery claimable");
}

/// Many workers claiming at the same moment (on PostgreSQL, each on its own connection) never
/// lease the same delivery twice, and together lease each one.
pub async fn concurrent_claims_never_share_a_delivery(store: &dyn Store) {
    let f = fixture(store).await;
    let ids = ingest(store, &f.webhook, 120, T0).await;
    let requests: Vec<ClaimRequest> = (0..8).map(|_| claim_request(T0, 20)).collect();
    let rounds = futures::future::join_all(requests.iter().map(|r| store.claim_due(r))).await;
    let mut claimed: Vec<DeliveryId> = Vec::new();
    for (round, request) in rounds.into_iter().zip(&requests) {
        for c in round.unwrap() {
            assert_eq!(c.lease, request.lease, "claimed under its own lease");
            claimed.push(c.delivery.id);
        }
    }
    let distinct: std::collections::HashSet<&DeliveryId> = claimed.iter().collect();
    assert_eq!(distinct.len(), claimed.len(), "no delivery is leased by two claims");
    // What a claim skipped because another held it is left for the next round.
    let rest = store.claim_due(&claim_request(T0, 200)).await.unwrap();
    claimed.extend(rest.into_iter().map(|c| c.delivery.id));
    claimed.sort();
    let mut all = ids;
    all.sort();
    assert_eq!(claimed, all, "every delivery is leased exactly once");
}

pub async fn the_webhook_limit_holds_under_concurrent_inserts(store: &dyn Store) {
    let f = fixture(store).await; // one webhook already
    let spec = f.webhook.spec.clone();
    let candidates: Vec<Webhook> = (0..8)
        .map(|_| Webhook {
            id: WebhookId::generate(),
            spec: spec.clone(),
            ..f.webhook.clone()
        })
        .collect();
    let inserted = futures::future::join_all(candidates.iter().map(|w| store.insert_webhook(w, 4))).await;
    let written = inserted.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(written, 3, "three more, up to the limit of four");
    assert_eq!(store.list_webhooks(&f.workspace).await.unwrap().len(), 4);
    let other = fixture(store).await;
    let theirs = Webhook {
        id: WebhookId::generate(),
        ..other.webhook.clone()
    };
    assert!(
        store.insert_webhook(&theirs, 2).await.unwrap(),
        "the limit is per workspace"
    );
}

pub async fn a_closed_store_refuses_calls(store: &dyn Store) {
    store.ping().await.unwrap();
    store.close().await;
    assert!(store.ping().await.is_err(), "closed means closed");
    assert!(store.list_workspaces().await.is_err());
}

/// Opens the breakers of two webhooks (three failures each), past their pause.
async fn two_half_open_webhooks(store: &dyn Store) -> (Fixture, Webhook) {
    let f = fixture(store).await;
    let other = webhook(store, &f.workspace).await;
    for hook in [&f.webhook, &other] {
        ingest(store, hook, 4, T0).await;
    }
    for c in store.claim_due(&claim_request(T0, 6)).await.unwrap() {
        assert!(store.finish(&finish_of(&c, DeliveryState::Pending, T0)).await.unwrap());
    }
    (f, other)
}

pub async fn each_half_open_webhook_gets_its_own_probe(store: &dyn Store) {
    let (f, other) = two_half_open_webhooks(store).await;
    let later = T0 + 10_000; // past both pauses (T0 + 5s)
    let first = store.claim_due(&claim_request(later, 1)).await.unwrap();
    assert_eq!(first.len(), 1, "one probe in a claim of one");
    let second = store.claim_due(&claim_request(later, 10)).await.unwrap();
    assert_eq!(
        second.len(),
        1,
        "the other webhook's probe: it was not paused by the first's"
    );
    let probed: std::collections::HashSet<&str> =
        [&first[0], &second[0]].iter().map(|c| c.webhook.id.as_str()).collect();
    assert_eq!(probed, [f.webhook.id.as_str(), other.id.as_str()].into_iter().collect());
    assert!(
        store.claim_due(&claim_request(later, 10)).await.unwrap().is_empty(),
        "one probe each at a time"
    );
}

pub async fn first_attempts_are_preferred_within_a_webhooks_room(store: &dyn Store) {
    let f = fixture(store).await;
    // Ten retries due first, ten first attempts due after them.
    ingest(store, &f.webhook, 10, T0).await;
    for c in store.claim_due(&claim_request(T0, 10)).await.unwrap() {
        let mut failed = finish_of(&c, DeliveryState::Pending, T0);
        failed.health = Health::Unknown; // no breaker here
        failed.failures = 1;
        failed.next_attempt_at = T0 + 1;
        assert!(store.finish(&failed).await.unwrap());
    }
    ingest(store, &f.webhook, 10, T0 + 2).await;
    let mut request = claim_request(T0 + 3, 8);
    request.per_webhook_limit = 8;
    let claimed = store.claim_due(&request).await.unwrap();
    let retries = claimed.iter().filter(|c| c.delivery.failures > 0).count();
    assert_eq!(claimed.len(), 8);
    assert_eq!(
        retries, 2,
        "a quarter for retries, the rest first attempts, though retries are older"
    );
}

pub async fn a_stale_lease_cannot_record_a_result(store: &dyn Store) {
    let f = fixture(store).await;
    ingest(store, &f.webhook, 1, T0).await;
    let first = store.claim_due(&claim_request(T0, 1)).await.unwrap().remove(0);
    let second = store
        .claim_due(&claim_request(T0 + LEASE + 1, 1))
        .await
        .unwrap()
        .remove(0);
    assert_ne!(first.lease.token, second.lease.token);
    assert!(
        !store
            .finish(&finish_of(&first, DeliveryState::Delivered, T0 + LEASE + 2))
            .await
            .unwrap()
    );
    assert!(
        store
            .finish(&finish_of(&second, DeliveryState::Delivered, T0 + LEASE + 3))
            .await
            .unwrap()
    );
    let (delivery, attempts) = store
        .get_delivery(&f.workspace, &second.delivery.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.state, DeliveryState::Delivered);
    assert_eq!(attempts.len(), 1, "only the current lease's result is recorded");
}

pub async fn claims_keep_each_webhook_under_its_in_flight_limit(store: &dyn Store) {
    let f = fixture(store).await;
    let other = webhook(store, &f.workspace).await;
    ingest(store, &f.webhook, 5, T0).await;
    ingest(store, &other, 1, T0).await;
    let mut request = claim_request(T0, 10);
    request.per_webhook_limit = 2;
    request.in_flight.insert(f.webhook.id.clone(), 1);
    let claimed = store.claim_due(&request).await.unwrap();
    let busy = claimed.iter().filter(|c| c.webhook.id == f.webhook.id).count();
    assert_eq!((busy, claimed.len() - busy), (1, 1));
    request.in_flight.insert(f.webhook.id.clone(), 2);
    request.now += 1;
    assert!(
        store.claim_due(&request).await.unwrap().is_empty(),
        "a full webhook gets nothing"
    );
}

pub async fn a_pile_of_one_webhooks_deliveries_does_not_hold_back_another(store: &dyn Store) {
    let f = fixture(store).await;
    let other = webhook(store, &f.workspace).await;
    // Fifty older deliveries of one webhook, then one of another: a claim of four still takes
    // the other's, because webhooks are taken in turn rather than oldest due first overall.
    ingest(store, &f.webhook, 50, T0).await;
    ingest(store, &other, 1, T0 + 1).await;
    let claimed = store.claim_due(&claim_request(T0 + 1, 4)).await.unwrap();
    assert_eq!(claimed.len(), 4);
    assert_eq!(
        claimed.iter().filter(|c| c.webhook.id == other.id).count(),
        1,
        "the other webhook's delivery is among the first claimed"
    );
}

pub async fn deliveries_of_disabled_webhooks_are_held(store: &dyn Store) {
    let f = fixture(store).await;
    ingest(store, &f.webhook, 2, T0).await;
    let mut disabled = f.webhook.clone();
    disabled.spec.enabled = false;
    store.update_webhook(&disabled).await.unwrap();
    assert!(store.claim_due(&claim_request(T0, 10)).await.unwrap().is_empty());
    assert_eq!(store.next_wake_at(3).await.unwrap(), None);
    assert!(
        store
            .enabled_webhooks(std::slice::from_ref(&f.workspace))
            .await
            .unwrap()
            .is_empty()
    );
    store.update_webhook(&f.webhook).await.unwrap();
    assert_eq!(store.claim_due(&claim_request(T0, 10)).await.unwrap().len(), 2);
}

pub async fn an_open_breaker_pauses_a_webhook_then_lets_one_probe_through(store: &dyn Store) {
    let f = fixture(store).await;
    ingest(store, &f.webhook, 4, T0).await;
    // Three failures in a row (the threshold): the breaker opens until T0 + 1 + 5s.
    let claimed = store.claim_due(&claim_request(T0, 3)).await.unwrap();
    for c in &claimed {
        let mut failed = finish_of(c, DeliveryState::Pending, T0 + 1);
        failed.next_attempt_at = T0 + 1 + 5_000;
        failed.failures = 1;
        assert!(store.finish(&failed).await.unwrap());
    }
    assert!(
        store.claim_due(&claim_request(T0 + 2, 10)).await.unwrap().is_empty(),
        "paused: not even the never-tried one"
    );
    assert_eq!(store.next_wake_at(3).await.unwrap(), Some(T0 + 1 + 5_000));
    let probe = store.claim_due(&claim_request(T0 + 6_000, 10)).await.unwrap();
    assert_eq!(probe.len(), 1, "half-open: one probe at a time");
    assert!(
        store
            .claim_due(&claim_request(T0 + 6_001, 10))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .finish(&finish_of(&probe[0], DeliveryState::Delivered, T0 + 6_002))
            .await
            .unwrap()
    );
    assert_eq!(
        store.claim_due(&claim_request(T0 + 6_003, 10)).await.unwrap().len(),
        3,
        "closed: everything flows again"
    );
}

pub async fn first_attempts_are_claimed_before_retries_without_starving_them(store: &dyn Store) {
    let f = fixture(store).await;
    let other = webhook(store, &f.workspace).await;
    // Four retries, due before any first attempt.
    ingest(store, &other, 4, T0).await;
    for c in store.claim_due(&claim_request(T0, 4)).await.unwrap() {
        let mut failed = finish_of(&c, DeliveryState::Pending, T0 + 1);
        failed.failures = 1;
        failed.next_attempt_at = T0 + 2;
        failed.health = Health::Unknown;
        store.finish(&failed).await.unwrap();
    }
    ingest(store, &f.webhook, 8, T0 + 3).await;
    let claimed = store.claim_due(&claim_request(T0 + 10, 4)).await.unwrap();
    let retries = claimed.iter().filter(|c| c.delivery.failures > 0).count();
    assert_eq!(
        (claimed.len(), retries),
        (4, 1),
        "three first attempts, and a quarter for retries"
    );
}
