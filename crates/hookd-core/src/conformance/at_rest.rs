//! What stays stored: retention, and secrets sealed at rest.

use super::*;

pub async fn retention_prunes_finished_deliveries_and_unreferenced_records_only(store: &dyn Store) {
    let f = fixture(store).await;
    let ids = ingest(store, &f.webhook, 3, T0).await;
    // A record no webhook wanted, and an idempotency key.
    let lone = NewRecord {
        id: new_id("rec"),
        workspace_id: f.workspace.clone(),
        kind: Kind::Data,
        body: "{}".into(),
        created_at: T0,
    };
    let request = IngestRequest {
        door: None,
        devices: Vec::new(),
        workspace_id: f.workspace.clone(),
        idempotency: Some(Idempotency {
            key: "old".into(),
            request_hash: "h".into(),
        }),
        records: vec![lone],
        deliveries: vec![],
    };
    store.commit_ingest(&[request]).await.unwrap();
    let claimed = store.claim_due(&claim_request(T0, 3)).await.unwrap();
    let by_id = |id: &str| claimed.iter().find(|c| c.delivery.id == id).unwrap();
    store
        .finish(&finish_of(by_id(&ids[0]), DeliveryState::Delivered, T0 + 1))
        .await
        .unwrap();
    store
        .finish(&finish_of(by_id(&ids[1]), DeliveryState::Dead, T0 + 1))
        .await
        .unwrap();
    // ids[2] stays pending (leased).

    let cutoffs = PruneCutoffs {
        delivered_before: T0 + 10,
        failed_before: T0,
        records_before: T0 + 10,
        keys_before: T0 + 10,
    };
    let report = store.prune(&cutoffs, 100).await.unwrap();
    assert_eq!(
        report,
        PruneReport {
            deliveries: 1,
            records: 2,
            keys: 1,
            source_requests: 0,
        },
        "the delivered one, its record, the lone record, the key"
    );
    assert!(store.get_delivery(&f.workspace, &ids[0]).await.unwrap().is_none());
    assert!(
        store.get_delivery(&f.workspace, &ids[1]).await.unwrap().is_some(),
        "failed ones are kept longer"
    );

    let later = PruneCutoffs {
        failed_before: T0 + 10,
        ..cutoffs
    };
    assert_eq!(
        store.prune(&later, 100).await.unwrap(),
        PruneReport {
            deliveries: 1,
            records: 1,
            keys: 0,
            source_requests: 0,
        }
    );
    assert_eq!(
        store.prune(&later, 100).await.unwrap().total(),
        0,
        "the pending delivery and its record stay"
    );
    let (pending, _) = store.get_delivery(&f.workspace, &ids[2]).await.unwrap().unwrap();
    assert_eq!(pending.state, DeliveryState::Pending);
}

/// Secrets at rest. Not per fresh store like the checks above: `open` must open the same
/// database every time, with the keys it is given.
pub async fn secrets_are_sealed_at_rest(open: impl AsyncFn(Sealer) -> Box<dyn Store>) {
    let (key_a, key_b) = (Sealer::generate_key(), Sealer::generate_key());
    let keys = |keys: &[&String]| Sealer::from_base64(&keys.iter().map(|k| (*k).clone()).collect::<Vec<_>>()).unwrap();

    // Stored before any key was configured: plain, and sealed on the first start with a key.
    let store = open(Sealer::none()).await;
    let f = fixture(&*store).await;
    let src = super::sources::source(&*store, &f.workspace, "gh").await;
    assert_eq!(store.reseal_webhooks().await.unwrap(), 0);
    assert_eq!(store.reseal_sources().await.unwrap(), 0);
    store.close().await;
    let store = open(keys(&[&key_a])).await;
    assert_eq!(store.reseal_webhooks().await.unwrap(), 1);
    assert_eq!(
        store.reseal_sources().await.unwrap(),
        1,
        "a source's spec holds its secrets"
    );
    assert_eq!(store.reseal_sources().await.unwrap(), 0);
    assert_eq!(store.find_source(&src.id).await.unwrap(), Some(src.clone()));
    assert_eq!(
        store.reseal_webhooks().await.unwrap(),
        0,
        "already sealed with the current key"
    );
    let read = store.get_webhook(&f.workspace, &f.webhook.id).await.unwrap().unwrap();
    assert_eq!(
        (read.spec, read.secret),
        (f.webhook.spec.clone(), f.webhook.secret.clone())
    );
    let second = webhook(&*store, &f.workspace).await;
    ingest(&*store, &second, 1, T0).await;
    let claimed = store.claim_due(&claim_request(T0, 10)).await.unwrap();
    assert_eq!(claimed[0].webhook.secret, second.secret, "claims open the secret too");
    store.close().await;

    // Without the key nothing sealed opens, and the error names the key.
    let store = open(Sealer::none()).await;
    let err = with_sources(&store.reseal_webhooks().await.unwrap_err());
    assert!(err.contains("no encryption key is configured"), "{err}");
    assert!(store.reseal_sources().await.is_err() && store.find_source(&src.id).await.is_err());
    assert!(store.get_webhook(&f.workspace, &f.webhook.id).await.is_err());
    store.close().await;
    let store = open(keys(&[&key_b])).await;
    let err = with_sources(&store.list_webhooks(&f.workspace).await.unwrap_err());
    assert!(err.contains(keys(&[&key_a]).current_key_id().unwrap()), "{err}");
    store.close().await;

    // Rotation: the new key first, the old one after it, re-seals everything with the new one.
    let store = open(keys(&[&key_b, &key_a])).await;
    assert_eq!(store.reseal_webhooks().await.unwrap(), 2);
    assert_eq!(store.reseal_sources().await.unwrap(), 1);
    store.close().await;
    let store = open(keys(&[&key_b])).await;
    assert_eq!(store.list_webhooks(&f.workspace).await.unwrap().len(), 2);
    assert_eq!(store.find_source(&src.id).await.unwrap(), Some(src));
    assert_eq!(store.reseal_webhooks().await.unwrap(), 0);
    store.close().await;
}

fn with_sources(err: &dyn std::error::Error) -> String {
    match err.source() {
        Some(source) => format!("{err}: {}", with_sources(source)),
        None => err.to_string(),
    }
}
