//! The queue: ingest and idempotency, results, retry and replay, the delivery log.

use super::*;

pub async fn an_idempotency_key_replays_or_conflicts(store: &dyn Store) {
    let f = fixture(store).await;
    let request = |hash: &str| IngestRequest {
        door: None,
        devices: Vec::new(),
        workspace_id: f.workspace.clone(),
        idempotency: Some(Idempotency {
            key: "k1".into(),
            request_hash: hash.into(),
        }),
        records: vec![NewRecord {
            id: new_id("rec"),
            workspace_id: f.workspace.clone(),
            kind: Kind::Data,
            body: "{}".into(),
            created_at: T0,
        }],
        deliveries: vec![],
    };
    let first = request("h1");
    let first_ids = vec![first.records[0].id.clone()];
    let results = store
        .commit_ingest(&[first, request("h1"), request("h2")])
        .await
        .unwrap();
    assert_eq!(
        results,
        vec![
            IngestResult::Committed(first_ids.clone()),
            IngestResult::Replayed(first_ids),
            IngestResult::KeyConflict
        ]
    );
}

pub async fn a_delivery_to_a_deleted_webhook_is_skipped(store: &dyn Store) {
    let f = fixture(store).await;
    store.delete_webhook(&f.workspace, &f.webhook.id).await.unwrap();
    assert!(matches!(
        store.delete_webhook(&f.workspace, &f.webhook.id).await,
        Err(StoreError::NotFound)
    ));
    ingest(store, &f.webhook, 1, T0).await;
    let list = store
        .list_deliveries(
            &f.workspace,
            &DeliveryQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(list.is_empty());
}

pub async fn finishing_with_disable_disables_the_webhook(store: &dyn Store) {
    let f = fixture(store).await;
    ingest(store, &f.webhook, 1, T0).await;
    let claimed = store.claim_due(&claim_request(T0, 1)).await.unwrap().remove(0);
    let mut finish = finish_of(&claimed, DeliveryState::Failed, T0 + 1);
    finish.disable_webhook = Some("410 Gone".into());
    assert!(store.finish(&finish).await.unwrap());
    let webhook = store.get_webhook(&f.workspace, &f.webhook.id).await.unwrap().unwrap();
    assert!(!webhook.spec.enabled);
    assert_eq!(webhook.disabled_reason.as_deref(), Some("410 Gone"));
}

pub async fn retry_and_replay_make_deliveries_due_again(store: &dyn Store) {
    let f = fixture(store).await;
    let ids = ingest(store, &f.webhook, 2, T0).await;
    for claimed in store.claim_due(&claim_request(T0, 10)).await.unwrap() {
        store
            .finish(&finish_of(&claimed, DeliveryState::Dead, T0 + 1))
            .await
            .unwrap();
    }
    let later = T0 + 10_000;
    let retried = store
        .retry_delivery(&f.workspace, &ids[0], later, "retried by hand")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (retried.state, retried.next_attempt_at, retried.failures),
        (DeliveryState::Pending, later, 0)
    );
    assert_eq!(retried.last_explanation.as_deref(), Some("retried by hand"));
    assert!(
        store
            .retry_delivery("ws_other", &ids[1], later, "x")
            .await
            .unwrap()
            .is_none(),
        "scoped to the workspace"
    );
    let query = ReplayQuery {
        webhook_id: f.webhook.id.clone(),
        since: T0,
        until: T0 + 1,
        states: vec![DeliveryState::Dead],
        note: "replayed".into(),
        dry_run: true,
    };
    assert_eq!(store.replay(&f.workspace, &query, later).await.unwrap(), 1, "counted");
    let (untouched, _) = store.get_delivery(&f.workspace, &ids[1]).await.unwrap().unwrap();
    assert_eq!(untouched.state, DeliveryState::Dead, "a dry run changes nothing");
    let query = ReplayQuery {
        dry_run: false,
        ..query
    };
    assert_eq!(store.replay(&f.workspace, &query, later).await.unwrap(), 1);
    let (replayed, _) = store.get_delivery(&f.workspace, &ids[1]).await.unwrap().unwrap();
    assert_eq!(
        (replayed.state, replayed.failures, replayed.last_explanation.as_deref()),
        (DeliveryState::Pending, 0, Some("replayed"))
    );
    assert_eq!(store.claim_due(&claim_request(later, 10)).await.unwrap().len(), 2);
}

pub async fn deliveries_are_listed_newest_first_by_cursor(store: &dyn Store) {
    let f = fixture(store).await;
    let mut ids = ingest(store, &f.webhook, 5, T0).await;
    ids.reverse();
    let page = |after: Option<DeliveryId>| DeliveryQuery {
        limit: 3,
        after,
        ..Default::default()
    };
    let first = store.list_deliveries(&f.workspace, &page(None)).await.unwrap();
    assert_eq!(first.iter().map(|d| d.id.clone()).collect::<Vec<_>>(), ids[..3]);
    let second = store
        .list_deliveries(&f.workspace, &page(Some(first[2].id.clone())))
        .await
        .unwrap();
    assert_eq!(second.iter().map(|d| d.id.clone()).collect::<Vec<_>>(), ids[3..]);
    let delivered = DeliveryQuery {
        limit: 10,
        state: Some(DeliveryState::Delivered),
        ..Default::default()
    };
    assert!(
        store
            .list_deliveries(&f.workspace, &delivered)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_delivery_planned_for_later_is_claimed_only_then(store: &dyn Store) {
    let f = fixture(store).await;
    let ids = ingest_due(store, &f.webhook, 1, T0, T0 + 5_000).await;
    assert!(
        store
            .claim_due(&claim_request(T0 + 4_999, 10))
            .await
            .unwrap()
            .is_empty(),
        "not before it is due"
    );
    assert_eq!(
        store.next_wake_at(5).await.unwrap(),
        Some(T0 + 5_000),
        "the dispatcher sleeps until then"
    );
    let claimed = store.claim_due(&claim_request(T0 + 5_000, 10)).await.unwrap();
    assert_eq!(claimed.iter().map(|c| &c.delivery.id).collect::<Vec<_>>(), [&ids[0]]);
}

pub async fn released_deliveries_are_due_at_once(store: &dyn Store) {
    let f = fixture(store).await;
    ingest(store, &f.webhook, 1, T0).await;
    let claimed = store.claim_due(&claim_request(T0, 1)).await.unwrap().remove(0);
    store
        .release(&[(claimed.delivery.id.clone(), claimed.lease.token.clone())])
        .await
        .unwrap();
    assert_eq!(store.claim_due(&claim_request(T0 + 1, 1)).await.unwrap().len(), 1);
}

pub async fn queue_stats_count_pending_and_due(store: &dyn Store) {
    let f = fixture(store).await;
    ingest(store, &f.webhook, 2, T0).await;
    ingest(store, &f.webhook, 1, T0 + Duration::from_secs(60).as_millis() as Millis).await;
    let stats = store.queue_stats(T0 + 1).await.unwrap();
    assert_eq!(
        stats,
        QueueStats {
            pending: 3,
            due: 2,
            oldest_pending_at: Some(T0)
        }
    );
}
