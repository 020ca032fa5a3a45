//! The storage conformance suite: what every [`Store`] must do, written once and run against
//! each backend with [`store_conformance_tests!`](crate::store_conformance_tests).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use crate::clock::Millis;
use crate::id::new_id;
use crate::record::Kind;
use crate::seal::Sealer;
use crate::store::*;
use crate::webhook::{Webhook, WebhookSpec};

const T0: Millis = 1_700_000_000_000;
const LEASE: Millis = 90_000;

/// Generates one `#[tokio::test]` per check, each on a fresh store from `$fresh`: an async
/// expression evaluating to `Option` of something that derefs to a `Store` (`None` skips the
/// check, e.g. when no PostgreSQL is configured).
#[macro_export]
macro_rules! store_conformance_tests {
    ($fresh:expr) => {
        $crate::store_conformance_tests!(@each $fresh;
            claims_due_deliveries_once_until_the_lease_expires,
            concurrent_claims_never_share_a_delivery,
            the_webhook_limit_holds_under_concurrent_inserts,
            a_closed_store_refuses_calls,
            each_half_open_webhook_gets_its_own_probe,
            first_attempts_are_preferred_within_a_webhooks_room,
            a_stale_lease_cannot_record_a_result,
            claims_keep_each_webhook_under_its_in_flight_limit,
            a_pile_of_one_webhooks_deliveries_does_not_hold_back_another,
            deliveries_of_disabled_webhooks_are_held,
            an_idempotency_key_replays_or_conflicts,
            a_delivery_to_a_deleted_webhook_is_skipped,
            finishing_with_disable_disables_the_webhook,
            retry_and_replay_make_deliveries_due_again,
            deliveries_are_listed_newest_first_by_cursor,
            released_deliveries_are_due_at_once,
            a_delivery_planned_for_later_is_claimed_only_then,
            queue_stats_count_pending_and_due,
            tenants_and_keys_are_stored,
            keys_are_listed_touched_and_revoked_within_their_workspace,
            deleting_a_workspace_deletes_everything_in_it_and_nothing_else,
            records_are_read_back_within_their_workspace,
            a_webhooks_health_keeps_its_last_success_failure_and_breaker,
            an_open_breaker_pauses_a_webhook_then_lets_one_probe_through,
            first_attempts_are_claimed_before_retries_without_starving_them,
            retention_prunes_finished_deliveries_and_unreferenced_records_only,
        );
    };
    (@each $fresh:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let Some(store) = $fresh else { return };
                $crate::conformance::$check(&*store).await;
            }
        )*
    };
}

struct Fixture {
    workspace: String,
    webhook: Webhook,
}

async fn fixture(store: &dyn Store) -> Fixture {
    let workspace = Workspace {
        id: new_id("ws"),
        name: "acme".into(),
        created_at: T0,
    };
    store.create_workspace(&workspace).await.unwrap();
    let webhook = webhook(store, &workspace.id).await;
    Fixture {
        workspace: workspace.id,
        webhook,
    }
}

async fn webhook(store: &dyn Store, workspace: &str) -> Webhook {
    let spec =
        WebhookSpec::from_stored(&json!({ "name": "w", "kind": "data", "url": "https://example.com/" })).unwrap();
    let webhook = Webhook {
        id: new_id("wh"),
        workspace_id: workspace.into(),
        spec,
        secret: crate::signature::generate_secret(),
        previous_secrets: Vec::new(),
        disabled_reason: None,
        created_at: T0,
        updated_at: T0,
        health: Default::default(),
    };
    assert!(store.insert_webhook(&webhook, 1000).await.unwrap());
    webhook
}

/// Ingests `n` records, one delivery each, for `webhook`; returns the delivery ids.
async fn ingest(store: &dyn Store, webhook: &Webhook, n: usize, at: Millis) -> Vec<String> {
    ingest_due(store, webhook, n, at, at).await
}

/// As [`ingest`], the deliveries first due at `due`.
async fn ingest_due(store: &dyn Store, webhook: &Webhook, n: usize, at: Millis, due: Millis) -> Vec<String> {
    let mut request = IngestRequest {
        workspace_id: webhook.workspace_id.clone(),
        idempotency: None,
        records: vec![],
        deliveries: vec![],
    };
    for _ in 0..n {
        let record = NewRecord {
            id: new_id("rec"),
            workspace_id: webhook.workspace_id.clone(),
            kind: Kind::Data,
            body: "{}".into(),
            created_at: at,
        };
        request.deliveries.push(NewDelivery {
            id: new_id("dlv"),
            workspace_id: webhook.workspace_id.clone(),
            webhook_id: webhook.id.clone(),
            record_ids: vec![record.id.clone()],
            created_at: at,
            due_at: due,
            lease: None,
        });
        request.records.push(record);
    }
    let ids = request.deliveries.iter().map(|d| d.id.clone()).collect();
    store.commit_ingest(&[request]).await.unwrap();
    ids
}

fn claim_request(now: Millis, limit: usize) -> ClaimRequest {
    ClaimRequest {
        now,
        lease: Lease {
            token: new_id("lse"),
            until: now + LEASE,
        },
        limit,
        per_webhook_limit: 100,
        reserve: 0,
        breaker_threshold: 3,
        in_flight: HashMap::new(),
    }
}

fn finish_of(claimed: &Claimed, state: DeliveryState, now: Millis) -> Finish {
    Finish {
        delivery_id: claimed.delivery.id.clone(),
        webhook_id: claimed.webhook.id.clone(),
        health: match state {
            DeliveryState::Delivered => Health::Up,
            _ => Health::Down {
                at: now,
                retry_at: now + 5_000,
            },
        },
        lease_token: claimed.lease.token.clone(),
        attempt: Attempt {
            id: new_id("att"),
            delivery_id: claimed.delivery.id.clone(),
            started_at: now,
            duration_ms: 3,
            status: Some(200),
            response_headers: "{}".into(),
            response_body: None,
            error_kind: None,
            explanation: "ok".into(),
            outcome: state,
        },
        state,
        failures: 0,
        next_attempt_at: now,
        now,
        disable_webhook: None,
    }
}

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
    let mut claimed: Vec<String> = Vec::new();
    for (round, request) in rounds.into_iter().zip(&requests) {
        for c in round.unwrap() {
            assert_eq!(c.lease, request.lease, "claimed under its own lease");
            claimed.push(c.delivery.id);
        }
    }
    let distinct: std::collections::HashSet<&String> = claimed.iter().collect();
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
            id: new_id("wh"),
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
        id: new_id("wh"),
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

pub async fn an_idempotency_key_replays_or_conflicts(store: &dyn Store) {
    let f = fixture(store).await;
    let request = |hash: &str| IngestRequest {
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
    let page = |after: Option<String>| DeliveryQuery {
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
    let health = store
        .get_webhook(&f.workspace, &f.webhook.id)
        .await
        .unwrap()
        .unwrap()
        .health;
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
    let health = store
        .get_webhook(&f.workspace, &f.webhook.id)
        .await
        .unwrap()
        .unwrap()
        .health;
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
            keys: 1
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
            keys: 0
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
    assert_eq!(store.reseal_webhooks().await.unwrap(), 0);
    store.close().await;
    let store = open(keys(&[&key_a])).await;
    assert_eq!(store.reseal_webhooks().await.unwrap(), 1);
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
    assert!(store.get_webhook(&f.workspace, &f.webhook.id).await.is_err());
    store.close().await;
    let store = open(keys(&[&key_b])).await;
    let err = with_sources(&store.list_webhooks(&f.workspace).await.unwrap_err());
    assert!(err.contains(keys(&[&key_a]).current_key_id().unwrap()), "{err}");
    store.close().await;

    // Rotation: the new key first, the old one after it, re-seals everything with the new one.
    let store = open(keys(&[&key_b, &key_a])).await;
    assert_eq!(store.reseal_webhooks().await.unwrap(), 2);
    store.close().await;
    let store = open(keys(&[&key_b])).await;
    assert_eq!(store.list_webhooks(&f.workspace).await.unwrap().len(), 2);
    assert_eq!(store.reseal_webhooks().await.unwrap(), 0);
    store.close().await;
}

fn with_sources(err: &dyn std::error::Error) -> String {
    match err.source() {
        Some(source) => format!("{err}: {}", with_sources(source)),
        None => err.to_string(),
    }
}
