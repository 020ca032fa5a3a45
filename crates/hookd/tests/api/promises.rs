//! What README.md promises and no other test pins: replay's range and defaults, idempotency
//! on events and its scope and expiry, name and URL limits, the SSRF policy's other spellings
//! of an address, `restrict_to_networks` end to end, and shutdown within its grace.

use std::time::Duration;

use hookd::Dispatch;
use hookd_core::clock::Clock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, data_point};
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn replay_takes_a_range_defaults_to_dead_and_failed_and_restarts_the_schedule() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(503)).await;
    let (ws, _) = app.workspace().await;
    let spec = |tag: &str, extra: Value| {
        let mut spec = json!({ "name": tag, "kind": "data", "url": receiver.url("/"), "format": "single", "filters": { "tags": [tag] } });
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        spec
    };
    let hook = app
        .webhook(&ws, spec("dead", json!({ "retry_schedule": ["1s"] })))
        .await;
    let wh = hook["id"].as_str().unwrap();
    // Three deliveries a minute apart, all dead after two attempts.
    let mut created = Vec::new();
    for i in 0..3 {
        app.send(&ws, "data", data_point(&format!("d{i}"), "dead")).await;
        created.push(app.clock.now());
        app.dispatch_until_idle().await;
        app.advance(Duration::from_secs(2));
        app.dispatch_until_idle().await;
        app.advance(Duration::from_secs(60));
    }
    // A delivered one, which the default states leave alone.
    receiver.answer_with(Reply::Status(200));
    app.send(&ws, "data", data_point("ok", "dead")).await;
    app.dispatch_until_idle().await;
    let before = receiver.requests().len();

    // `until` is exclusive: the third delivery is outside [first, third).
    let at = |ms: i64| hookd_core::timefmt::rfc3339(ms);
    let (status, answer) = app
        .post(
            &format!("/v1/workspaces/{ws}/webhooks/{wh}/replay"),
            json!({ "since": at(created[0]), "until": at(created[2]) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["replayed"], 2,
        "the first two dead ones, not the third, not the delivered one"
    );
    receiver.answer_with(Reply::Status(503));
    app.dispatch_until_idle().await;
    assert_eq!(receiver.requests().len(), before + 2);
    // The schedule starts over: each failed again and waits its first step (1s), not dead.
    let deliveries = app.deliveries(&ws).await;
    let pending: Vec<&Value> = deliveries.iter().filter(|d| d["state"] == "pending").collect();
    assert_eq!(pending.len(), 2, "{deliveries:?}");
    for d in pending {
        assert!(
            d["last_explanation"].as_str().unwrap().contains("(attempt 2 of 2)"),
            "{d}"
        );
    }
    let states: Vec<&str> = deliveries.iter().map(|d| d["state"].as_str().unwrap()).collect();
    assert_eq!(states.iter().filter(|s| **s == "delivered").count(), 1);
    assert_eq!(
        states.iter().filter(|s| **s == "dead").count(),
        1,
        "the third stays dead"
    );
}

#[tokio::test]
async fn an_idempotency_key_holds_for_events_within_its_workspace_until_it_expires() {
    let app = TestApp::spawn_in(
        std::sync::Arc::new(tempfile::tempdir().unwrap()),
        |s| s.retention.idempotency_keys = Duration::from_secs(3600),
        Dispatch::Manual,
    )
    .await;
    let (ws, _) = app.workspace().await;
    let (other, _) = app.workspace().await;
    let event = json!({ "type": "relay", "payload": { "value": 1 } });
    let first = app.api.send_events(&ws, &event, Some("k-1")).await.unwrap();
    let repeat = app.api.send_events(&ws, &event, Some("k-1")).await.unwrap();
    assert_eq!(repeat.ids, first.ids, "events are idempotent too");
    let elsewhere = app.api.send_events(&other, &event, Some("k-1")).await.unwrap();
    assert_ne!(elsewhere.ids, first.ids, "a key is scoped to its workspace");
    let conflict = app
        .api
        .send_events(&ws, &json!({ "type": "relay", "payload": 2 }), Some("k-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, hookd::client::ClientError::Api { status, .. } if status == 409),
        "{conflict}"
    );

    // Past `retention.idempotency_keys`, the pruner forgets the key: the same request is new.
    app.advance(Duration::from_secs(2 * 3600));
    let settings = crate::helpers::settings(app.dir.path());
    let retention = hookd::config::RetentionSettings {
        idempotency_keys: Duration::from_secs(3600),
        ..settings.retention
    };
    let metrics = hookd::metrics::Metrics::new(0);
    let pruned = hookd::retention::prune_all(app.store.as_ref(), &app.clock, &retention, &metrics)
        .await
        .unwrap();
    assert_eq!(pruned.keys, 2);
    let later = app.api.send_events(&ws, &event, Some("k-1")).await.unwrap();
    assert_ne!(later.ids, first.ids, "an expired key makes a new request");
}

#[tokio::test]
async fn names_and_urls_have_length_limits() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let path = format!("/v1/workspaces/{ws}/webhooks");
    let create = |name: String, url: String| app.post(&path, json!({ "name": name, "kind": "data", "url": url }));
    let base = "https://example.com/";
    assert_eq!(create("n".repeat(200), base.into()).await.0, StatusCode::CREATED);
    let (status, body) = create("n".repeat(201), base.into()).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
    );
    let longest = format!("{base}{}", "p".repeat(2048 - base.len()));
    assert_eq!(create("n".into(), longest.clone()).await.0, StatusCode::CREATED);
    let (status, body) = create("n".into(), format!("{longest}p")).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("url"))
    );
    let (status, body) = app.post("/v1/workspaces", json!({ "name": "w".repeat(201) })).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
    );
}

#[tokio::test]
async fn loopback_written_as_a_decimal_hex_or_octal_number_is_blocked_too() {
    let app = TestApp::spawn_with(|s| {
        s.delivery.allow_networks.clear();
        s.delivery.restrict_to_networks.clear();
    })
    .await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let port = receiver.url("").rsplit(':').next().unwrap().to_owned();
    let (ws, _) = app.workspace().await;
    for host in ["2130706433", "0x7f000001", "0x7f.0.0.1", "0177.0.0.1", "127.1"] {
        let url = format!("http://{host}:{port}/hook");
        let created = app
            .webhook(
                &ws,
                json!({ "name": host, "kind": "data", "url": url, "filters": { "tags": [host] } }),
            )
            .await;
        assert!(
            created["warnings"][0].as_str().unwrap_or_default().contains("SSRF"),
            "{host}: {created}"
        );
        app.send(&ws, "data", data_point("d", host)).await;
    }
    app.dispatch_until_idle().await;
    assert!(receiver.requests().is_empty(), "nothing reached loopback");
    for delivery in app.deliveries(&ws).await {
        assert_eq!(delivery["state"], "failed", "{delivery}");
        let detail = app.delivery(&ws, delivery["id"].as_str().unwrap()).await;
        assert_eq!(detail["attempts"][0]["error_kind"], "blocked");
    }
}

#[tokio::test]
async fn restrict_to_networks_keeps_deliveries_inside_the_networks_named() {
    // Loopback is allowed past the SSRF policy, but deliveries are restricted to 10.0.0.0/8.
    let app = TestApp::spawn_with(|s| s.delivery.restrict_to_networks = vec!["10.0.0.0/8".parse().unwrap()]).await;
    let (receiver, ws, webhook) = app.with_receiver(Reply::Status(200), json!({})).await;
    let warning = webhook["warnings"][0].as_str().unwrap_or_default();
    assert!(warning.contains("restrict_to_networks"), "{webhook}");
    app.send(&ws, "data", data_point("d", "t")).await;
    app.dispatch_until_idle().await;
    assert!(receiver.requests().is_empty());
    let delivery = app.deliveries(&ws).await.remove(0);
    assert_eq!(delivery["state"], "failed");
    let detail = app.delivery(&ws, delivery["id"].as_str().unwrap()).await;
    assert_eq!(detail["attempts"][0]["error_kind"], "blocked");
}

#[tokio::test]
async fn shutdown_lets_an_attempt_in_flight_finish_within_the_grace_period() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = TestApp::spawn_in(
        dir.clone(),
        |s| s.dispatch.shutdown_grace = Duration::from_secs(10),
        Dispatch::Loop,
    )
    .await;
    let receiver = Receiver::start(Reply::Delay(Duration::from_millis(500), 200)).await;
    let (ws, _) = app.workspace_with_webhook(&receiver.url("/"), json!({})).await;
    app.send(&ws, "data", data_point("d", "t")).await;
    receiver.wait_for(1, Duration::from_secs(5)).await; // the attempt is in flight
    let stopping = std::time::Instant::now();
    app.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "it waited for the answer, not the whole grace"
    );
    // The attempt finished and was recorded: after a restart nothing is sent again.
    let app = TestApp::spawn_in(dir, |_| {}, Dispatch::Manual).await;
    let delivery = app.deliveries(&ws).await.remove(0);
    assert_eq!(
        (delivery["state"].as_str(), delivery["attempt_count"].as_u64()),
        (Some("delivered"), Some(1))
    );
    assert_eq!(app.dispatch_until_idle().await, 0);
    assert_eq!(receiver.requests().len(), 1);
}
