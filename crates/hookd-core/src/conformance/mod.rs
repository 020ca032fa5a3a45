//! The storage conformance suite: what every [`Store`] must do, written once and run against
//! each backend with [`store_conformance_tests!`](crate::store_conformance_tests).
//!
//! The checks by concept: `claims` (leases, limits, the breaker), `queue` (ingest, results,
//! retry and replay, the log), `tenants` (workspaces, keys, records, health), `at_rest`
//! (retention, sealed secrets), `fleet` (ordering and coalescing keys, presence), `sources` (sources, their request log, replay protection), `dashboard` (attempt tallies, sign-ins and portal links). Fixtures are here.

mod at_rest;
mod claims;
mod dashboard;
mod fleet;
mod queue;
mod sources;
mod tenants;

pub use at_rest::*;
pub use claims::*;
pub use dashboard::*;
pub use fleet::*;
pub use queue::*;
pub use sources::*;
pub use tenants::*;

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use crate::clock::Millis;
use crate::id::{DeliveryId, LeaseToken, WebhookId, new_id};
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
            one_delivery_of_an_ordering_key_goes_at_a_time_and_a_dead_one_lets_the_next_go,
            a_delivery_joins_the_open_one_of_its_coalescing_key,
            a_superseded_record_is_no_longer_referenced,
            one_holder_sweeps_presence_at_a_time_and_a_device_changes_once,
            queue_stats_count_pending_and_due,
            tenants_and_keys_are_stored,
            keys_are_listed_touched_and_revoked_within_their_workspace,
            deleting_a_workspace_deletes_everything_in_it_and_nothing_else,
            records_are_read_back_within_their_workspace,
            a_webhooks_health_keeps_its_last_success_failure_and_breaker,
            an_open_breaker_pauses_a_webhook_then_lets_one_probe_through,
            first_attempts_are_claimed_before_retries_without_starving_them,
            retention_prunes_finished_deliveries_and_unreferenced_records_only,
            sources_are_stored_within_their_workspace,
            the_request_log_is_listed_filtered_replaced_and_pruned,
            a_message_is_remembered_once_until_its_window_ends,
            attempts_are_tallied_per_minute_and_per_webhook,
            passes_expire_are_deleted_with_what_they_granted_and_links_are_listed,
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
        offline_after: None,
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
        id: WebhookId::generate(),
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
async fn ingest(store: &dyn Store, webhook: &Webhook, n: usize, at: Millis) -> Vec<DeliveryId> {
    ingest_due(store, webhook, n, at, at).await
}

/// As [`ingest`], the deliveries first due at `due`.
async fn ingest_due(store: &dyn Store, webhook: &Webhook, n: usize, at: Millis, due: Millis) -> Vec<DeliveryId> {
    let request = ingest_request(webhook, n, at, due);
    let ids = request.deliveries.iter().map(|d| d.id.clone()).collect();
    store.commit_ingest(&[request]).await.unwrap();
    ids
}

/// `n` records of `webhook`'s workspace, one delivery each, made at `at` and first due at `due`.
fn ingest_request(webhook: &Webhook, n: usize, at: Millis, due: Millis) -> IngestRequest {
    let mut request = IngestRequest {
        door: None,
        devices: Vec::new(),
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
            id: DeliveryId::generate(),
            workspace_id: webhook.workspace_id.clone(),
            webhook_id: webhook.id.clone(),
            record_ids: vec![record.id.clone()],
            created_at: at,
            due_at: due,
            ordering_key: None,
            coalescing: None,
            lease: None,
        });
        request.records.push(record);
    }
    request
}

fn claim_request(now: Millis, limit: usize) -> ClaimRequest {
    ClaimRequest {
        now,
        lease: Lease {
            token: LeaseToken::generate(),
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
