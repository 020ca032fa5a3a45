//! Workspaces and keys, records, webhook health.

use super::*;

fn api_key(workspace: &str, hash: &str) -> ApiKey {
    ApiKey {
        id: new_id("key"),
        workspace_id: workspace.into(),
        key_hash: hash.into(),
        prefix: "hk_abcd".into(),
        created_at: T0,
        last_used_at: None,
    }
}

pub async fn keys_are_listed_touched_and_revoked_within_their_workspace(store: &dyn Store) {
    let f = fixture(store).await;
    let other = fixture(store).await;
    let first = api_key(&f.workspace, &new_id("hash"));
    let second = api_key(&f.workspace, &new_id("hash"));
    let theirs = api_key(&other.workspace, &new_id("hash"));
    for key in [&first, &second, &theirs] {
        store.create_api_key(key).await.unwrap();
    }
    store.touch_api_key(&first.id, T0 + 60_000).await.unwrap();
    let listed = store.list_api_keys(&f.workspace).await.unwrap();
    assert_eq!(
        listed.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        [first.id.as_str(), second.id.as_str()],
        "oldest first, the workspace's own only"
    );
    assert_eq!(listed[0].last_used_at, Some(T0 + 60_000));
    assert_eq!(listed[1].last_used_at, None);
    assert!(
        !store.revoke_api_key(&f.workspace, &theirs.id).await.unwrap(),
        "another workspace's key is not revoked"
    );
    assert!(store.revoke_api_key(&f.workspace, &first.id).await.unwrap());
    assert!(!store.revoke_api_key(&f.workspace, &first.id).await.unwrap(), "once");
    assert_eq!(store.find_api_key(&first.key_hash).await.unwrap(), None);
    assert!(store.find_api_key(&theirs.key_hash).await.unwrap().is_some());
    assert_eq!(store.list_api_keys(&f.workspace).await.unwrap().len(), 1);
}

pub async fn deleting_a_workspace_deletes_everything_in_it_and_nothing_else(store: &dyn Store) {
    let f = fixture(store).await;
    let other = fixture(store).await;
    let key = api_key(&f.workspace, &new_id("hash"));
    store.create_api_key(&key).await.unwrap();
    let gone = ingest(store, &f.webhook, 3, T0).await;
    let kept = ingest(store, &other.webhook, 2, T0).await;
    for claimed in store.claim_due(&claim_request(T0, 10)).await.unwrap() {
        store
            .finish(&finish_of(&claimed, DeliveryState::Delivered, T0 + 1))
            .await
            .unwrap();
    }
    let deletion = store.delete_workspace(&f.workspace).await.unwrap();
    assert_eq!(
        deletion,
        Some(WorkspaceDeletion {
            webhooks: 1,
            deliveries: 3,
            records: 3,
            keys: 1
        })
    );
    assert_eq!(store.get_workspace(&f.workspace).await.unwrap(), None);
    assert_eq!(store.find_api_key(&key.key_hash).await.unwrap(), None);
    assert!(store.list_webhooks(&f.workspace).await.unwrap().is_empty());
    assert!(store.get_delivery(&f.workspace, &gone[0]).await.unwrap().is_none());
    assert_eq!(store.delete_workspace(&f.workspace).await.unwrap(), None, "once");
    let (delivery, attempts) = store.get_delivery(&other.workspace, &kept[0]).await.unwrap().unwrap();
    assert_eq!((delivery.state, attempts.len()), (DeliveryState::Delivered, 1));
    assert_eq!(
        store
            .get_records(&other.workspace, &delivery.record_ids)
            .await
            .unwrap()
            .len(),
        1,
        "another workspace keeps its records"
    );
    let renamed = store
        .rename_workspace(&other.workspace, "renamed")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renamed.name, "renamed");
    assert_eq!(store.get_workspace(&other.workspace).await.unwrap(), Some(renamed));
    assert_eq!(store.rename_workspace(&f.workspace, "x").await.unwrap(), None);
}

pub async fn records_are_read_back_within_their_workspace(store: &dyn Store) {
    let f = fixture(store).await;
    let other = fixture(store).await;
    let dlv = ingest(store, &f.webhook, 2, T0).await;
    let (delivery, _) = store.get_delivery(&f.workspace, &dlv[1]).await.unwrap().unwrap();
    let mut ids = delivery.record_ids.clone();
    ids.push("rec_missing".into());
    let found = store.get_records(&f.workspace, &ids).await.unwrap();
    assert_eq!(found, vec![(delivery.record_ids[0].clone(), "{}".to_owned())]);
    assert!(
        store.get_records(&other.workspace, &ids).await.unwrap().is_empty(),
        "another workspace's records are not read"
    );
}

async fn health_of(store: &dyn Store, f: &Fixture) -> crate::webhook::WebhookHealth {
    store
        .get_webhook(&f.workspace, &f.webhook.id)
        .await
        .unwrap()
        .unwrap()
        .health
}

pub async fn a_webhooks_health_keeps_its_last_success_failure_and_breaker(store: &dyn Store) {
    let f = fixture(store).await;
    ingest(store, &f.webhook, 3, T0).await;
    let claimed = store.claim_due(&claim_request(T0, 3)).await.unwrap();
    store
        .finish(&finish_of(&claimed[0], DeliveryState::Delivered, T0 + 10))
        .await
        .unwrap();
    store
        .finish(&finish_of(&claimed[1], DeliveryState::Pending, T0 + 20))
        .await
        .unwrap();
    let health = health_of(store, &f).await;
    assert_eq!(
        (
            health.last_success_at,
            health.last_failure_at,
            health.consecutive_failures
        ),
        (T0 + 10, T0 + 20, 1)
    );
    assert_eq!(health.breaker_until, T0 + 20 + 5_000, "the failure's retry time");
    store
        .finish(&finish_of(&claimed[2], DeliveryState::Delivered, T0 + 30))
        .await
        .unwrap();
    let health = health_of(store, &f).await;
    assert_eq!(
        (
            health.last_success_at,
            health.last_failure_at,
            health.consecutive_failures
        ),
        (T0 + 30, T0 + 20, 0),
        "a success keeps the last failure's time"
    );
}

pub async fn tenants_and_keys_are_stored(store: &dyn Store) {
    let f = fixture(store).await;
    let key = api_key(&f.workspace, "abc");
    store.create_api_key(&key).await.unwrap();
    assert_eq!(store.find_api_key("abc").await.unwrap(), Some(key));
    assert_eq!(store.find_api_key("nope").await.unwrap(), None);
    assert!(
        store
            .list_workspaces()
            .await
            .unwrap()
            .iter()
            .any(|w| w.id == f.workspace)
    );
    assert_eq!(
        store.list_webhooks(&f.workspace).await.unwrap(),
        vec![f.webhook.clone()]
    );
    store.ping().await.unwrap();
}
