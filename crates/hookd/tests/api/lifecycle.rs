//! The running process: the dispatcher loop, restarts, graceful shutdown, health and metrics.

use std::time::Duration;

use hookd::Dispatch;
use serde_json::json;

use crate::helpers::{TestApp, data_point, sample, scrape};
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn the_dispatcher_loop_delivers_at_once_after_ingest_without_waiting_for_a_poll() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = TestApp::spawn_in(
        dir,
        |s| s.dispatch.poll_interval = Duration::from_secs(60),
        Dispatch::Loop,
    )
    .await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(&ws, json!({ "name": "w", "kind": "data", "url": receiver.url("/") }))
        .await;
    app.send(&ws, "data", data_point("d", "t")).await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    app.stop().await;
}

#[tokio::test]
async fn deliveries_pending_at_shutdown_are_delivered_after_a_restart() {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let app = TestApp::spawn().await; // dispatcher not running: everything stays pending
    let (ws, _) = app.workspace().await;
    app.webhook(
        &ws,
        json!({ "name": "w", "kind": "data", "url": receiver.url("/"), "format": "single" }),
    )
    .await;
    let records: Vec<_> = (0..5).map(|i| data_point(&format!("d{i}"), "t")).collect();
    let mut ids = app.send(&ws, "data", json!(records)).await;
    let dir = app.dir.clone();
    app.stop().await;
    assert!(receiver.requests().is_empty());

    let restarted = TestApp::spawn_in(dir, |_| {}, Dispatch::Loop).await;
    let got = receiver.wait_for(5, Duration::from_secs(10)).await;
    let mut delivered: Vec<String> = got
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_owned())
        .collect();
    delivered.sort();
    ids.sort();
    assert_eq!(delivered, ids);
    restarted.stop().await;
}

#[tokio::test]
async fn an_attempt_in_flight_at_shutdown_is_released_and_retried_after_a_restart() {
    let receiver = Receiver::start_scripted(Reply::Status(200), [Reply::Hang]).await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = TestApp::spawn_in(
        dir.clone(),
        |s| s.dispatch.shutdown_grace = Duration::from_millis(100),
        Dispatch::Loop,
    )
    .await;
    let (ws, _) = app.workspace().await;
    app.webhook(&ws, json!({ "name": "w", "kind": "data", "url": receiver.url("/") }))
        .await;
    app.send(&ws, "data", data_point("d", "t")).await;
    receiver.wait_for(1, Duration::from_secs(5)).await; // the first attempt hangs
    app.stop().await;

    // Without the release, the 90s lease would hold the delivery back.
    let restarted = TestApp::spawn_in(dir, |_| {}, Dispatch::Loop).await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    restarted.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = TestApp::spawn().await;
    let (_receiver, ws, _) = app.with_receiver(Reply::Status(200), json!({})).await;
    app.send(&ws, "data", data_point("d", "t")).await;

    let get = |path: &str| app.http.get(format!("{}{path}", app.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert_eq!(sample(&metrics, "hookd_deliveries_pending"), 1.0, "{metrics}");
    assert_eq!(sample(&metrics, "hookd_deliveries_due"), 1.0);
    assert_eq!(sample(&metrics, "hookd_records_ingested_total{kind=\"data\"}"), 1.0);
    assert_eq!(sample(&metrics, "hookd_attempts_total{outcome=\"delivered\"}"), 0.0);

    app.dispatch_until_idle().await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert_eq!(sample(&metrics, "hookd_deliveries_pending"), 0.0);
    assert_eq!(sample(&metrics, "hookd_attempts_total{outcome=\"delivered\"}"), 1.0);
    assert_eq!(sample(&metrics, "hookd_attempt_duration_seconds_count"), 1.0);
    assert_eq!(sample(&metrics, "hookd_ingest_commit_requests_count"), 1.0);
}

#[tokio::test]
async fn a_slow_webhook_cannot_hold_up_a_healthy_one() {
    let app = looping(|s| s.dispatch.per_webhook_in_flight = 2).await;
    let slow = Receiver::start(Reply::Hang).await;
    let healthy = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(&ws, tagged(slow.url("/"), "slow")).await;
    app.webhook(&ws, tagged(healthy.url("/"), "fast")).await;
    let backlog: Vec<_> = (0..20).map(|i| data_point(&format!("d{i}"), "slow")).collect();
    app.send(&ws, "data", json!(backlog)).await;
    slow.wait_for(2, Duration::from_secs(5)).await;

    app.send(&ws, "data", data_point("x", "fast")).await;
    healthy.wait_for(1, Duration::from_secs(2)).await;
    assert_eq!(
        slow.requests().len(),
        2,
        "the slow webhook stays at its in-flight limit"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_retry_comes_due_and_is_claimed_while_other_attempts_hang() {
    let app = looping(|s| s.dispatch.poll_interval = Duration::from_secs(60)).await;
    let slow = Receiver::start(Reply::Hang).await;
    let flaky = Receiver::start_scripted(Reply::Status(200), [Reply::Status(503)]).await;
    let (ws, _) = app.workspace().await;
    app.webhook(&ws, tagged(slow.url("/"), "slow")).await;
    app.webhook(&ws, tagged(flaky.url("/"), "flaky")).await;
    app.send(&ws, "data", data_point("s", "slow")).await;
    slow.wait_for(1, Duration::from_secs(5)).await;

    // The retry is not new work handed over at ingest: only a claim round finds it, and the
    // loop must make one while the slow attempt is still in flight.
    app.send(&ws, "data", data_point("f", "flaky")).await;
    make_the_retry_due(&app, &ws, &flaky).await;
    let got = flaky.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "the same delivery, retried"
    );
    assert_eq!(slow.requests().len(), 1, "the slow attempt still hangs");
    app.stop().await;
}

/// hookd with its dispatcher loop running (fresh data directory, a short shutdown grace),
/// configured further by `configure`.
async fn looping(configure: impl FnOnce(&mut hookd::config::Settings)) -> TestApp {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let with_grace = |s: &mut hookd::config::Settings| {
        s.dispatch.shutdown_grace = Duration::from_millis(100);
        configure(s);
    };
    TestApp::spawn_in(dir, with_grace, Dispatch::Loop).await
}

/// A `single` data webhook to `url` for records tagged `tag`: 30 s timeout, one retry after 1 s.
fn tagged(url: String, tag: &str) -> serde_json::Value {
    json!({ "name": tag, "kind": "data", "url": url, "format": "single", "timeout": "30s", "retry_schedule": ["1s"], "filters": { "tags": [tag] } })
}

/// Waits until the delivery the receiver got first has its failed attempt recorded, then moves
/// the manual clock past its one-second retry.
async fn make_the_retry_due(app: &TestApp, ws: &str, flaky: &Receiver) {
    let first = flaky.wait_for(1, Duration::from_secs(5)).await;
    let id = first[0].header("webhook-id").unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.delivery(ws, &id).await["attempts"].as_array().map_or(0, Vec::len) < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the failed attempt was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.advance(Duration::from_secs(2));
}

#[tokio::test]
async fn claimed_deliveries_hold_their_slots_until_answered() {
    let receiver = Receiver::start(Reply::Hang).await;
    let flaky = Receiver::start_scripted(Reply::Status(200), [Reply::Status(503)]).await;
    let app = TestApp::spawn().await; // stepped: what is sent stays pending, for claims
    let (ws, _) = app.workspace().await;
    app.webhook(&ws, tagged(receiver.url("/"), "slow")).await;
    app.webhook(&ws, tagged(flaky.url("/"), "flaky")).await;
    let pile: Vec<_> = (0..10).map(|i| data_point(&format!("d{i}"), "slow")).collect();
    app.send(&ws, "data", json!(pile)).await;
    let dir = app.dir.clone();
    app.stop().await;

    let app = TestApp::spawn_in(
        dir,
        |s| {
            s.dispatch.per_webhook_in_flight = 2;
            s.dispatch.poll_interval = Duration::from_secs(60);
            s.dispatch.shutdown_grace = Duration::from_millis(100);
        },
        Dispatch::Loop,
    )
    .await;
    receiver.wait_for(2, Duration::from_secs(5)).await;
    // Rounds go on while those two hang: one claims the flaky webhook's retry.
    app.send(&ws, "data", data_point("f", "flaky")).await;
    make_the_retry_due(&app, &ws, &flaky).await;
    flaky.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(
        receiver.requests().len(),
        2,
        "claimed attempts count against the webhook's limit"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_webhook_holding_many_slots_cannot_take_the_reserved_quarter() {
    let app = looping(|s| {
        s.dispatch.concurrency = 20; // a quarter, 5, reserved
        s.dispatch.per_webhook_in_flight = 20;
    })
    .await;
    let slow = Receiver::start(Reply::Hang).await;
    let healthy = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(&ws, tagged(slow.url("/"), "slow")).await;
    app.webhook(&ws, tagged(healthy.url("/"), "fast")).await;
    let pile: Vec<_> = (0..30).map(|i| data_point(&format!("d{i}"), "slow")).collect();
    app.send(&ws, "data", json!(pile)).await;
    slow.wait_for(16, Duration::from_secs(5)).await;
    app.send(&ws, "data", data_point("x", "fast")).await;
    healthy.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(
        slow.requests().len(),
        16,
        "past 15 of the 20 slots, only webhooks with fewer than 16 in flight take one"
    );
    app.stop().await;
}

#[tokio::test]
async fn one_commit_hands_over_no_more_than_the_free_slots_each_with_its_record() {
    let app = looping(|s| s.dispatch.concurrency = 4).await;
    let slow = Receiver::start(Reply::Hang).await;
    let (ws, _) = app.workspace().await;
    for i in 0..8 {
        let spec = json!({ "name": format!("w{i}"), "kind": "data", "url": slow.url(&format!("/{i}")), "format": "single", "timeout": "30s" });
        app.webhook(&ws, spec).await;
    }
    let ids = app.send(&ws, "data", data_point("dev-7", "t")).await;
    assert_eq!(
        sample(&scrape(&app).await, "hookd_deliveries_handed_over_total"),
        4.0,
        "eight deliveries in one commit, four free slots"
    );
    for request in slow.wait_for(4, Duration::from_secs(5)).await {
        assert_eq!(
            request.json()["id"],
            ids[0].as_str(),
            "a handed-over delivery carries its record"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn deliveries_handed_over_at_commit_send_the_dispatcher_to_the_store_for_nothing() {
    let app = looping(|_| {}).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(
        &ws,
        json!({ "name": "w", "kind": "data", "url": receiver.url("/"), "format": "single" }),
    )
    .await;
    let rounds = |metrics: &str| sample(metrics, r#"hookd_claim_rounds_total{found="none"}"#);
    let before = rounds(&scrape(&app).await);
    let started = std::time::Instant::now();
    for i in 0..40 {
        app.send(&ws, "data", data_point(&format!("d{i}"), "t")).await;
    }
    receiver.wait_for(40, Duration::from_secs(10)).await;
    let took = started.elapsed();
    let after = scrape(&app).await;
    assert_eq!(
        sample(&after, "hookd_deliveries_handed_over_total"),
        40.0,
        "every delivery went at once"
    );
    // Nothing was written unleased, so a round is made only as time passes: at most one per
    // 20 ms (while attempts are in flight), never one per commit or per attempt (two per
    // delivery before).
    let empty = rounds(&after) - before;
    let by_time = (took.as_millis() / 20) as f64 + 2.0;
    assert!(
        empty <= by_time,
        "{empty} claim rounds found nothing in {took:?} (at most {by_time})"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_background_pruner_deletes_what_is_past_retention_batch_by_batch_every_interval() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = TestApp::spawn_in(
        dir,
        |s| {
            s.retention.interval = Duration::from_millis(50);
            s.retention.batch = 2;
        },
        Dispatch::Loop,
    )
    .await;
    let (receiver, ws, _) = app
        .with_receiver(Reply::Status(200), json!({ "format": "single" }))
        .await;
    let records: Vec<_> = (0..5).map(|i| data_point(&format!("d{i}"), "t")).collect();
    app.send(&ws, "data", json!(records)).await;
    receiver.wait_for(5, Duration::from_secs(5)).await;
    let ids: Vec<String> = app
        .deliveries(&ws)
        .await
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 5);

    // Several intervals pass: nothing is old enough, nothing goes.
    let pruned = |metrics: &str, kind: &str| sample(metrics, &format!("hookd_pruned_total{{kind=\"{kind}\"}}"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.deliveries(&ws).await.len(), 5, "kept within retention");
    assert_eq!(pruned(&scrape(&app).await, "deliveries"), 0.0);

    // Past the default 7 days: the next passes prune all five, two per transaction.
    app.advance(Duration::from_secs(8 * 24 * 3600));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !app.deliveries(&ws).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the pruner never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, _) = app.get(&format!("/v1/workspaces/{ws}/deliveries/{}", ids[0])).await;
    assert_eq!(status, 404);
    let metrics = scrape(&app).await;
    assert_eq!(pruned(&metrics, "deliveries"), 5.0, "{metrics}");
    assert_eq!(pruned(&metrics, "records"), 5.0, "their records went with them");
    app.stop().await;
}

#[tokio::test]
async fn one_prune_call_deletes_at_most_a_batch_of_each_kind() {
    use hookd_core::clock::Clock;
    let app = TestApp::spawn().await;
    let (_receiver, ws, _) = app
        .with_receiver(Reply::Status(200), json!({ "format": "single" }))
        .await;
    let records: Vec<_> = (0..5).map(|i| data_point(&format!("d{i}"), "t")).collect();
    app.send(&ws, "data", json!(records)).await;
    app.dispatch_until_idle().await;
    app.advance(Duration::from_secs(8 * 24 * 3600));
    let cutoffs = hookd_core::store::PruneCutoffs {
        delivered_before: app.clock.now() - 7 * 24 * 3600 * 1000,
        failed_before: 0,
        records_before: app.clock.now() - 7 * 24 * 3600 * 1000,
        keys_before: 0,
    };
    let first = app.store.prune(&cutoffs, 2).await.unwrap();
    assert_eq!(first.deliveries, 2, "one batch");
    let rest = app.store.prune(&cutoffs, 10).await.unwrap();
    assert_eq!(rest.deliveries, 3);
    assert_eq!(app.store.prune(&cutoffs, 10).await.unwrap().total(), 0);
}

#[tokio::test]
async fn operational_events_reach_subscribers_but_never_the_webhook_they_are_about() {
    let app = TestApp::spawn_with(|s| s.dispatch.failing_event_after = 1).await;
    let failing = Receiver::start(Reply::Status(503)).await;
    let watcher = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    // An event webhook subscribed to the very events its own failures cause: only the rule
    // that an event about a webhook never goes to it keeps them away.
    let subscribed = ["relay", "delivery.failing", "delivery.dead"];
    app.webhook(
        &ws,
        json!({ "name": "a", "kind": "event", "url": failing.url("/"), "retry_schedule": ["1s"], "format": "single",
                "filters": { "event_types": subscribed } }),
    )
    .await;
    app.webhook(
        &ws,
        json!({ "name": "ops", "kind": "event", "url": watcher.url("/"), "format": "single" }),
    )
    .await;
    app.send(
        &ws,
        "events",
        json!({ "type": "relay", "device_id": "1_03", "payload": { "value": 0 } }),
    )
    .await;

    app.dispatch_until_received(&watcher, 2).await; // the relay event, then delivery.failing
    app.advance(Duration::from_secs(2));
    app.dispatch_until_received(&watcher, 3).await; // fails again, no retries left: delivery.dead

    let types = |r: &Receiver| -> Vec<String> {
        r.requests()
            .iter()
            .map(|req| req.json()["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(types(&watcher), ["relay", "delivery.failing", "delivery.dead"]);
    let dead = &watcher.requests()[2].json()["payload"];
    assert_eq!(dead["attempts"], 2);
    // Nothing more is due for the failing webhook: no event about itself ever was.
    app.advance(Duration::from_secs(60));
    app.dispatch_until_idle().await;
    assert_eq!(
        types(&failing),
        ["relay", "relay"],
        "the failing webhook got only its relay event, twice"
    );
}

#[tokio::test]
async fn a_webhook_failing_for_the_whole_auto_disable_period_is_disabled_and_says_so() {
    let app = TestApp::spawn_with(|s| s.dispatch.auto_disable_after = Duration::from_secs(60)).await;
    let failing = Receiver::start(Reply::Status(500)).await;
    let watcher = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    let webhook = app
        .webhook(
            &ws,
            json!({ "name": "a", "kind": "data", "url": failing.url("/"), "retry_schedule": ["30s", "30s", "30s"] }),
        )
        .await;
    app.webhook(&ws, json!({ "name": "ops", "kind": "event", "url": watcher.url("/"), "filters": { "event_types": ["webhook.disabled"] } }))
        .await;
    app.send(&ws, "data", data_point("d", "t")).await;
    app.dispatch_until_idle().await; // failing since now
    app.advance(Duration::from_secs(40));
    app.dispatch_until_idle().await; // 40s: still within the period
    let path = format!("/v1/workspaces/{ws}/webhooks/{}", webhook["id"].as_str().unwrap());
    assert_eq!(app.get(&path).await.1["enabled"], true);

    app.advance(Duration::from_secs(40));
    app.dispatch_until_idle().await; // 80s of failures: disabled
    let (_, read) = app.get(&path).await;
    assert_eq!(read["enabled"], false);
    assert!(
        read["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failing without a success"),
        "{read}"
    );
    app.dispatch_until_received(&watcher, 1).await;
    assert_eq!(watcher.event_types(), ["webhook.disabled"]);
}

#[tokio::test]
async fn the_api_reference_is_served_at_docs() {
    let app = TestApp::spawn().await;
    for docs in ["/docs", "/docs/"] {
        let page = app.http.get(format!("{}{docs}", app.base)).send().await.unwrap();
        assert_eq!(page.status(), 200, "{docs}");
        assert!(
            page.text().await.unwrap().contains("/docs/redoc.standalone.js"),
            "{docs}"
        );
    }
}

#[tokio::test]
async fn an_idle_dispatcher_is_woken_by_a_retry_and_a_replay() {
    // Polling once a minute: only a wake-up can make these prompt.
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = TestApp::spawn_in(
        dir,
        |s| s.dispatch.poll_interval = Duration::from_secs(60),
        Dispatch::Loop,
    )
    .await;
    let receiver = Receiver::start_scripted(Reply::Status(200), [Reply::Status(400)]).await;
    let (ws, webhook) = app.workspace_with_webhook(&receiver.url("/"), json!({})).await;
    let wh = webhook["id"].as_str().unwrap();
    app.send(&ws, "data", data_point("d", "t")).await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    let dlv = app.deliveries(&ws).await.remove(0)["id"].as_str().unwrap().to_owned();
    let settled = async |state: &str| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while app.delivery(&ws, &dlv).await["state"] != state {
            assert!(tokio::time::Instant::now() < deadline, "never {state}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    settled("failed").await; // 400: not retried by itself
    app.api.retry_delivery(&ws, &dlv).await.unwrap();
    receiver.wait_for(2, Duration::from_secs(5)).await;
    settled("delivered").await;
    let replay = hookd::model::ReplayIn {
        since: "2000-01-01T00:00:00Z".into(),
        until: None,
        states: Some(vec![hookd::model::DeliveryState::Delivered]),
        dry_run: None,
    };
    assert_eq!(app.api.replay(&ws, wh, &replay).await.unwrap().replayed, 1);
    receiver.wait_for(3, Duration::from_secs(5)).await;
    app.stop().await;
}
