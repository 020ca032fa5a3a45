//! The fleet behaviours' storage: ordering keys (one delivery of a key at a time, in order),
//! coalescing keys (later records join the open delivery of their key) and presence.

use super::*;

/// `n` keyed deliveries of one record each, in one commit.
async fn keyed(
    store: &dyn Store,
    webhook: &Webhook,
    keys: &[(Option<&str>, Option<Coalescing>)],
    due: Millis,
) -> Vec<DeliveryId> {
    let mut request = ingest_request(webhook, keys.len(), T0, due);
    for (delivery, (ordering, coalescing)) in request.deliveries.iter_mut().zip(keys) {
        delivery.ordering_key = ordering.map(str::to_owned);
        delivery.coalescing = coalescing.clone();
    }
    let ids = request.deliveries.iter().map(|d| d.id.clone()).collect();
    store.commit_ingest(&[request]).await.unwrap();
    ids
}

/// The claimed deliveries' ids, sorted (claims due at the same time come in any order).
fn ids_of(claimed: &[Claimed]) -> Vec<&DeliveryId> {
    let mut ids: Vec<&DeliveryId> = claimed.iter().map(|c| &c.delivery.id).collect();
    ids.sort();
    ids
}

pub async fn one_delivery_of_an_ordering_key_goes_at_a_time_and_a_dead_one_lets_the_next_go(store: &dyn Store) {
    let f = fixture(store).await;
    let ids = keyed(
        store,
        &f.webhook,
        &[(Some("dev-1"), None), (Some("dev-1"), None), (Some("dev-2"), None)],
        T0,
    )
    .await;
    let first = store.claim_due(&claim_request(T0, 10)).await.unwrap();
    assert_eq!(ids_of(&first), [&ids[0], &ids[2]], "each device's first only");
    let dev_1 = first.iter().find(|c| c.delivery.id == ids[0]).unwrap();
    assert_eq!(dev_1.delivery.ordering_key.as_deref(), Some("dev-1"));
    assert!(
        store.claim_due(&claim_request(T0 + 1, 10)).await.unwrap().is_empty(),
        "the second waits while the first is in flight"
    );
    assert_eq!(
        store.next_wake_at(5).await.unwrap(),
        Some(T0 + LEASE),
        "a held delivery is not due: the dispatcher sleeps until the leases end"
    );
    let mut retry = finish_of(dev_1, DeliveryState::Pending, T0 + 1);
    retry.next_attempt_at = T0 + 5_000;
    store.finish(&retry).await.unwrap();
    assert!(
        store.claim_due(&claim_request(T0 + 2, 10)).await.unwrap().is_empty(),
        "nor while the first waits for its retry"
    );
    let again = store.claim_due(&claim_request(T0 + 5_000, 10)).await.unwrap();
    assert_eq!(ids_of(&again), [&ids[0]], "the retry comes first");
    store
        .finish(&finish_of(&again[0], DeliveryState::Dead, T0 + 5_001))
        .await
        .unwrap();
    let next = store.claim_due(&claim_request(T0 + 5_002, 10)).await.unwrap();
    assert_eq!(ids_of(&next), [&ids[1]], "a dead delivery lets the next one go");
    let (dead, _) = store.get_delivery(&f.workspace, &ids[0]).await.unwrap().unwrap();
    assert!(dead.order_broken, "and the break in order is on it");
    assert!(!next[0].delivery.order_broken);
    // Retried by hand, it waits behind nothing earlier, and stays marked once delivered.
    store
        .finish(&finish_of(&next[0], DeliveryState::Delivered, T0 + 5_003))
        .await
        .unwrap();
    store
        .retry_delivery(&f.workspace, &ids[0], T0 + 6_000, "retried by hand")
        .await
        .unwrap()
        .unwrap();
    let retried = store.claim_due(&claim_request(T0 + 6_000, 10)).await.unwrap();
    assert_eq!(ids_of(&retried), [&ids[0]]);
    store
        .finish(&finish_of(&retried[0], DeliveryState::Delivered, T0 + 6_001))
        .await
        .unwrap();
    let (delivered, _) = store.get_delivery(&f.workspace, &ids[0]).await.unwrap().unwrap();
    assert!(delivered.order_broken, "the order was broken once");
}

pub async fn a_delivery_joins_the_open_one_of_its_coalescing_key(store: &dyn Store) {
    let f = fixture(store).await;
    let window = |key: &str| Coalescing {
        key: key.into(),
        merge: Merge::Append { max: 3, early: true },
        spacing: 0,
        superseded: 0,
    };
    let due = T0 + 2_000;
    let first = keyed(store, &f.webhook, &[(None, Some(window("")))], due).await;
    let later = keyed(
        store,
        &f.webhook,
        &[(None, Some(window(""))), (None, Some(window("other")))],
        due,
    )
    .await;
    assert!(
        store
            .claim_due(&claim_request(T0 + 1_999, 10))
            .await
            .unwrap()
            .is_empty(),
        "the window is open"
    );
    let claimed = store.claim_due(&claim_request(due, 10)).await.unwrap();
    assert_eq!(ids_of(&claimed), [&first[0], &later[1]], "one batch per key");
    assert_eq!(
        claimed[0].delivery.record_ids.len(),
        2,
        "the later record joined the open batch"
    );
    assert_eq!(claimed[0].records.len(), 2);
    // A claimed delivery is closed: the next record starts a batch, and two more fill it.
    let next = keyed(
        store,
        &f.webhook,
        &[
            (None, Some(window(""))),
            (None, Some(window(""))),
            (None, Some(window(""))),
        ],
        due + 10_000,
    )
    .await;
    let full = store.claim_due(&claim_request(due + 1, 10)).await.unwrap();
    assert_eq!(ids_of(&full), [&next[0]], "a full batch is due at once");
    assert_eq!(full[0].delivery.coalesced, 3);
}

pub async fn a_superseded_record_is_no_longer_referenced(store: &dyn Store) {
    let f = fixture(store).await;
    let latest = |rank| Coalescing {
        key: "dev-1".into(),
        merge: Merge::Latest { rank: Some(rank) },
        spacing: 1_000,
        superseded: 0,
    };
    let first = keyed(store, &f.webhook, &[(None, Some(latest(20)))], T0).await;
    keyed(store, &f.webhook, &[(None, Some(latest(10)))], T0).await;
    keyed(store, &f.webhook, &[(None, Some(latest(30)))], T0).await;
    let claimed = store.claim_due(&claim_request(T0, 10)).await.unwrap();
    assert_eq!(ids_of(&claimed), [&first[0]], "the device's one delivery");
    let d = &claimed[0].delivery;
    assert_eq!((d.coalesced, d.superseded), (3, 2));
    let cutoffs = PruneCutoffs {
        delivered_before: T0,
        failed_before: T0,
        records_before: T0 + 10,
        keys_before: T0,
    };
    let report = store.prune(&cutoffs, 100).await.unwrap();
    assert_eq!(report.records, 2, "the two superseded records, not the one carried");
    let bodies = store.get_records(&f.workspace, &d.record_ids).await.unwrap();
    assert_eq!(bodies.len(), 1, "the carried record is kept");
    // The next one of the device is spaced an interval after the first was due.
    keyed(store, &f.webhook, &[(None, Some(latest(40)))], T0).await;
    assert!(store.claim_due(&claim_request(T0 + 999, 10)).await.unwrap().is_empty());
    assert_eq!(store.claim_due(&claim_request(T0 + 1_000, 10)).await.unwrap().len(), 1);
}

pub async fn one_holder_sweeps_presence_at_a_time_and_a_device_changes_once(store: &dyn Store) {
    assert!(store.claim_presence_sweep("a", T0, T0 + 30_000).await.unwrap());
    assert!(
        !store.claim_presence_sweep("b", T0 + 1, T0 + 30_001).await.unwrap(),
        "a holds it"
    );
    assert!(
        store.claim_presence_sweep("a", T0 + 1, T0 + 30_001).await.unwrap(),
        "a renews it"
    );
    assert!(
        store.claim_presence_sweep("b", T0 + 30_001, T0 + 60_000).await.unwrap(),
        "a's lease ended"
    );

    let f = fixture(store).await;
    let mut request = ingest_request(&f.webhook, 1, T0, T0);
    let seen = |at| DeviceSeen {
        device_id: "dev-1".into(),
        fleet_id: Some("flt-1".into()),
        at,
        heard: Heard::Record,
    };
    request.devices = vec![seen(T0 - 10), seen(T0)];
    store.commit_ingest(&[request]).await.unwrap();
    let listed = store
        .list_devices(
            &f.workspace,
            &DeviceQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "one row per device");
    assert_eq!((listed[0].state, listed[0].last_seen), (DeviceState::Online, T0));
    assert!(
        store.presence_changes(T0 + 5_000, 10).await.unwrap().is_empty(),
        "presence is off"
    );
    store
        .set_offline_after(&f.workspace, Some(1_000))
        .await
        .unwrap()
        .unwrap();
    assert!(store.presence_changes(T0 + 500, 10).await.unwrap().is_empty());
    let changes = store.presence_changes(T0 + 2_000, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].to, changes[0].reason),
        (DeviceState::Offline, PresenceReason::Silence)
    );
    store.apply_presence(&changes, T0 + 2_000).await.unwrap();
    assert!(store.presence_changes(T0 + 2_001, 10).await.unwrap().is_empty(), "once");
    let offline = DeviceQuery {
        state: Some(DeviceState::Offline),
        limit: 10,
        ..Default::default()
    };
    let listed = store.list_devices(&f.workspace, &offline).await.unwrap();
    assert_eq!((listed.len(), listed[0].since), (1, T0 + 2_000));
}
