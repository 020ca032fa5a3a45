//! One test per row of the outcome table (the README's delivery contract).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, data_point};
use crate::receiver::{Receiver, Reply};

/// A workspace with one data webhook to `url` (plus `extra` fields); returns the workspace id.
async fn setup(app: &TestApp, url: String, extra: Value) -> (String, Value) {
    let (ws, webhook) = app.workspace_with_webhook(&url, extra).await;
    app.send(&ws, "data", json!(data_point("d", "t"))).await;
    (ws, webhook)
}

async fn only_delivery(app: &TestApp, ws: &str) -> Value {
    let list = app.deliveries(ws).await;
    assert_eq!(list.len(), 1);
    app.delivery(ws, list[0]["id"].as_str().unwrap()).await
}

#[tokio::test]
async fn a_2xx_answer_delivers() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(201)).await;
    let (ws, _) = setup(&app, receiver.url("/"), json!({})).await;
    app.dispatch_until_idle().await;
    let delivery = only_delivery(&app, &ws).await;
    assert_eq!(delivery["state"], "delivered");
    assert_eq!(delivery["attempts"][0]["outcome"], "delivered");
    assert!(delivery["attempts"][0]["explanation"].as_str().unwrap().contains("201"));
    assert_eq!(
        delivery["attempts"][0]["response_body"], "ok",
        "the response body is kept"
    );
}

#[tokio::test]
async fn a_3xx_answer_fails_without_retry_and_the_redirect_is_not_followed() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::WithHeader(302, "location", "/elsewhere".into())).await;
    let (ws, _) = setup(&app, receiver.url("/"), json!({})).await;
    app.dispatch_until_idle().await;
    app.advance(Duration::from_secs(3600));
    app.dispatch_until_idle().await;

    assert_eq!(receiver.requests().len(), 1, "no retry, no redirect followed");
    let delivery = only_delivery(&app, &ws).await;
    assert_eq!(delivery["state"], "failed");
    assert!(
        delivery["last_explanation"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed")
    );
}

#[tokio::test]
async fn a_410_answer_fails_and_disables_the_webhook_with_a_reason() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(410)).await;
    let (ws, webhook) = setup(&app, receiver.url("/"), json!({})).await;
    app.dispatch_until_idle().await;

    assert_eq!(only_delivery(&app, &ws).await["state"], "failed");
    let (_, webhook) = app
        .get(&format!(
            "/v1/workspaces/{ws}/webhooks/{}",
            webhook["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(webhook["enabled"], false);
    assert!(
        webhook["disabled_reason"].as_str().unwrap().contains("410"),
        "{webhook}"
    );

    // A disabled webhook gets no new deliveries.
    app.send(&ws, "data", json!(data_point("d", "t"))).await;
    app.dispatch_until_idle().await;
    assert_eq!(app.deliveries(&ws).await.len(), 1);
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn other_4xx_answers_fail_without_retry() {
    for code in [400, 401, 403, 404, 413, 422] {
        let app = TestApp::spawn().await;
        let receiver = Receiver::start(Reply::Status(code)).await;
        let (ws, _) = setup(&app, receiver.url("/"), json!({})).await;
        app.dispatch_until_idle().await;
        app.advance(Duration::from_secs(3600));
        app.dispatch_until_idle().await;
        assert_eq!(receiver.requests().len(), 1, "{code} is not retried");
        let delivery = only_delivery(&app, &ws).await;
        assert_eq!(delivery["state"], "failed", "{code}");
        assert_eq!(delivery["attempts"][0]["status"], code);
    }
}

#[tokio::test]
async fn answers_408_425_429_and_5xx_are_retried_with_the_same_webhook_id() {
    for code in [408, 425, 429, 500, 502, 503, 504] {
        let app = TestApp::spawn().await;
        let receiver = Receiver::start_scripted(Reply::Status(200), [Reply::Status(code)]).await;
        let (ws, _) = setup(&app, receiver.url("/"), json!({})).await;
        app.dispatch_until_idle().await;
        let delivery = only_delivery(&app, &ws).await;
        assert_eq!(delivery["state"], "pending", "{code}");
        assert!(
            delivery["last_explanation"].as_str().unwrap().contains("retrying in"),
            "{delivery}"
        );

        app.advance(Duration::from_secs(4)); // below the first step's 5s - 20 %
        assert_eq!(
            app.dispatch_until_idle().await,
            0,
            "{code}: not before the schedule says"
        );
        app.advance(Duration::from_secs(3)); // past 5s + 20 %
        assert_eq!(app.dispatch_until_idle().await, 1, "{code}");

        let got = receiver.requests();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
        assert_ne!(got[0].header("webhook-timestamp"), got[1].header("webhook-timestamp"));
        assert_eq!(only_delivery(&app, &ws).await["state"], "delivered");
    }
}

#[tokio::test]
async fn retry_after_on_429_and_503_pushes_the_retry_back() {
    let http_date = |app: &TestApp, secs: u64| {
        httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + Duration::from_millis(app.clock_secs() as u64 * 1000 + secs * 1000),
        )
    };
    for (code, seconds_form) in [(429, true), (503, false)] {
        let app = TestApp::spawn().await;
        let retry_after = if seconds_form {
            "120".to_owned()
        } else {
            http_date(&app, 120)
        };
        let receiver = Receiver::start_scripted(
            Reply::Status(200),
            [Reply::WithHeader(code, "retry-after", retry_after)],
        )
        .await;
        let (ws, _) = setup(&app, receiver.url("/"), json!({})).await;
        app.dispatch_until_idle().await;

        app.advance(Duration::from_secs(60)); // the schedule alone would retry after ~5s
        assert_eq!(app.dispatch_until_idle().await, 0, "{code}: Retry-After is honoured");
        app.advance(Duration::from_secs(61));
        assert_eq!(app.dispatch_until_idle().await, 1, "{code}");
        assert_eq!(only_delivery(&app, &ws).await["state"], "delivered");
    }
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out_and_is_retried() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start_scripted(Reply::Status(200), [Reply::Hang]).await;
    let (ws, _) = setup(&app, receiver.url("/"), json!({ "timeout": "200ms" })).await;
    app.dispatch_until_idle().await;
    let delivery = only_delivery(&app, &ws).await;
    assert_eq!(delivery["state"], "pending");
    let attempt = &delivery["attempts"][0];
    assert_eq!(attempt["error_kind"], "timeout");
    assert!(attempt["duration_ms"].as_u64().unwrap() >= 200);

    app.advance(Duration::from_secs(7));
    app.dispatch_until_idle().await;
    assert_eq!(only_delivery(&app, &ws).await["state"], "delivered");
}

#[tokio::test]
async fn a_connection_broken_mid_response_is_retried() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start_scripted(Reply::Status(200), [Reply::BreakMidResponse]).await;
    let (ws, _) = setup(&app, receiver.url("/"), json!({})).await;
    app.dispatch_until_idle().await;
    let delivery = only_delivery(&app, &ws).await;
    assert_eq!(delivery["state"], "pending");
    assert_eq!(delivery["attempts"][0]["error_kind"], "reset");

    app.advance(Duration::from_secs(7));
    app.dispatch_until_idle().await;
    assert_eq!(only_delivery(&app, &ws).await["state"], "delivered");
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    let app = TestApp::spawn().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (ws, _) = setup(&app, format!("http://{closed}/"), json!({})).await;
    app.dispatch_until_idle().await;
    let delivery = only_delivery(&app, &ws).await;
    assert_eq!(delivery["state"], "pending");
    assert_eq!(delivery["attempts"][0]["error_kind"], "connect");
}

#[tokio::test]
async fn a_host_name_that_does_not_resolve_is_retried() {
    let app = TestApp::spawn().await;
    let (ws, _) = setup(&app, "http://no-such-host.invalid/".into(), json!({})).await;
    app.dispatch_until_idle().await;
    let delivery = only_delivery(&app, &ws).await;
    assert_eq!(delivery["state"], "pending");
    assert_eq!(delivery["attempts"][0]["error_kind"], "dns");
}

#[tokio::test]
async fn a_failed_tls_handshake_is_retried() {
    let app = TestApp::spawn().await;
    let plain = Receiver::start(Reply::Status(200)).await; // speaks plain HTTP, not TLS
    let (ws, _) = setup(&app, plain.url("/").replace("http://", "https://"), json!({})).await;
    app.dispatch_until_idle().await;
    let delivery = only_delivery(&app, &ws).await;
    assert_eq!(delivery["state"], "pending");
    assert_eq!(delivery["attempts"][0]["error_kind"], "tls", "{delivery}");
}

#[tokio::test]
async fn an_address_blocked_by_the_ssrf_policy_fails_without_retry() {
    // No allow-list: loopback is blocked, whether written as an address or a host name.
    let app = TestApp::spawn_with(|s| s.delivery.allow_networks.clear()).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    for url in [receiver.url("/"), receiver.url("/").replace("127.0.0.1", "localhost")] {
        let (ws, webhook) = setup(&app, url, json!({})).await;
        app.dispatch_until_idle().await;
        let delivery = only_delivery(&app, &ws).await;
        assert_eq!(delivery["state"], "failed");
        assert_eq!(delivery["attempts"][0]["error_kind"], "blocked");
        assert!(delivery["last_explanation"].as_str().unwrap().contains("SSRF"));
        // No receiver was asked: the attempt says nothing about its health either way.
        let (_, read) = app
            .get(&format!(
                "/v1/workspaces/{ws}/webhooks/{}",
                webhook["id"].as_str().unwrap()
            ))
            .await;
        let health = &read["health"];
        assert_eq!(health["last_success_at"], serde_json::Value::Null, "{read}");
        assert_eq!(health["last_failure_at"], serde_json::Value::Null, "{read}");
        assert_eq!(health["consecutive_failures"], 0, "{read}");
    }
    assert!(receiver.requests().is_empty(), "nothing reached the blocked address");
}

#[tokio::test]
async fn a_delivery_still_failing_after_the_last_step_is_dead_and_replayable() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start_scripted(Reply::Status(200), [Reply::Status(500), Reply::Status(500)]).await;
    let (ws, webhook) = setup(&app, receiver.url("/"), json!({ "retry_schedule": ["1s"] })).await;
    app.dispatch_until_idle().await;
    app.advance(Duration::from_secs(2));
    app.dispatch_until_idle().await;

    let delivery = only_delivery(&app, &ws).await;
    assert_eq!(delivery["state"], "dead");
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 2);
    assert!(
        delivery["last_explanation"]
            .as_str()
            .unwrap()
            .contains("no retries left after 2 attempts")
    );

    let (status, replayed) = app
        .post(
            &format!(
                "/v1/workspaces/{ws}/webhooks/{}/replay",
                webhook["id"].as_str().unwrap()
            ),
            json!({ "since": "2000-01-01T00:00:00Z", "states": ["dead"] }),
        )
        .await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["replayed"], 1);
    app.dispatch_until_idle().await;
    let delivery = only_delivery(&app, &ws).await;
    assert_eq!(delivery["state"], "delivered");
    let got = receiver.requests();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].header("webhook-id"), got[2].header("webhook-id"));
}

#[tokio::test]
async fn a_failing_webhook_is_paused_as_a_whole_and_probed_until_it_recovers() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(503)).await;
    let watcher = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(
        &ws,
        json!({ "name": "w", "kind": "data", "url": receiver.url("/"), "format": "single" }),
    )
    .await;
    let ops = json!({ "name": "ops", "kind": "event", "url": watcher.url("/"), "filters": { "event_types": ["webhook.recovered"] } });
    app.webhook(&ws, ops).await;
    let records: Vec<_> = (0..20).map(|i| data_point(&format!("d{i}"), "t")).collect();
    app.send(&ws, "data", json!(records)).await;
    app.dispatch_until_idle().await;
    assert_eq!(
        receiver.requests().len(),
        20,
        "the first round fails: the breaker opens"
    );

    app.advance(Duration::from_secs(7)); // every retry is due now
    app.dispatch_until_idle().await;
    assert_eq!(receiver.requests().len(), 21, "one probe, not twenty retries");
    assert!(
        watcher.requests().is_empty(),
        "the probe failed: nothing has recovered yet"
    );

    receiver.answer_with(Reply::Status(200));
    app.advance(Duration::from_secs(7 * 60)); // past the probe's next retry (5m + 20 %)
    app.dispatch_until_idle().await;
    assert_eq!(
        receiver.requests().len(),
        41,
        "the probe succeeds and the queued deliveries follow"
    );
    app.dispatch_until_received(&watcher, 1).await;
    assert_eq!(watcher.event_types(), ["webhook.recovered"]);
    let states: Vec<Value> = app.deliveries(&ws).await.iter().map(|d| d["state"].clone()).collect();
    assert!(states.iter().all(|s| s == "delivered"), "{states:?}");
}

#[tokio::test]
async fn the_response_body_kept_with_an_attempt_is_capped() {
    let app = TestApp::spawn_with(|s| s.delivery.response_body_max = 1).await;
    let receiver = Receiver::start(Reply::Status(200)).await; // answers "ok"
    let (ws, _) = setup(&app, receiver.url("/"), json!({})).await;
    app.dispatch_until_idle().await;
    assert_eq!(only_delivery(&app, &ws).await["attempts"][0]["response_body"], "o");
}

#[tokio::test]
async fn the_breaker_opens_at_its_threshold_and_not_one_failure_before() {
    let app = TestApp::spawn_with(|s| s.dispatch.breaker_failures = 3).await;
    let receiver = Receiver::start(Reply::Status(503)).await;
    let (ws, _) = setup(
        &app,
        receiver.url("/"),
        json!({ "format": "single", "retry_schedule": ["1h"] }),
    )
    .await;
    app.dispatch_until_idle().await; // failure 1 (setup sent one record)
    for failures in 2..=3 {
        // Below the threshold, a new delivery is still attempted.
        app.send(&ws, "data", data_point(&format!("d{failures}"), "t")).await;
        assert_eq!(app.dispatch_until_idle().await, 1, "failure {failures}: attempted");
    }
    assert_eq!(receiver.requests().len(), 3);
    // Three failures in a row: the webhook is paused; a new delivery waits.
    app.send(&ws, "data", data_point("d4", "t")).await;
    assert_eq!(app.dispatch_until_idle().await, 0, "paused at the threshold");
    assert_eq!(receiver.requests().len(), 3);
    let wh = app.api.list_webhooks(&ws).await.unwrap().remove(0);
    assert_eq!(
        serde_json::to_value(&wh.health).unwrap()["breaker"],
        "open",
        "{:?}",
        wh.health
    );
}

#[tokio::test]
async fn a_failing_event_is_recorded_at_exactly_failing_event_after_failures() {
    let app = TestApp::spawn_with(|s| {
        s.dispatch.failing_event_after = 2;
        s.dispatch.breaker_failures = 100;
    })
    .await;
    let failing = Receiver::start(Reply::Status(503)).await;
    let watcher = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = setup(
        &app,
        failing.url("/"),
        json!({ "retry_schedule": ["1s", "1s", "1s", "1s"] }),
    )
    .await;
    let ops = json!({ "name": "ops", "kind": "event", "url": watcher.url("/"), "filters": { "event_types": ["delivery.failing"] } });
    app.webhook(&ws, ops).await;
    // Stepping includes the events the attempts cause, so absence is absence.
    app.dispatch_until_idle().await; // failure 1: no event yet
    assert_eq!(watcher.requests().len(), 0, "one failure is below failing_event_after");
    app.advance(Duration::from_secs(2));
    app.dispatch_until_idle().await; // failure 2: the event
    assert_eq!(watcher.requests().len(), 1);
    app.advance(Duration::from_secs(2));
    app.dispatch_until_idle().await; // failure 3: once is enough
    assert_eq!(
        watcher.event_types(),
        ["delivery.failing"],
        "recorded once, at two failures"
    );
    assert_eq!(watcher.requests()[0].json()["result"][0]["payload"]["attempts"], 2);
}

#[tokio::test]
async fn a_retry_after_longer_than_a_day_is_capped_at_a_day() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start_scripted(
        Reply::Status(200),
        [Reply::WithHeader(503, "retry-after", (3 * 24 * 3600).to_string())],
    )
    .await;
    let (ws, _) = setup(&app, receiver.url("/"), json!({})).await;
    app.dispatch_until_idle().await;
    app.advance(Duration::from_secs(24 * 3600 - 60));
    assert_eq!(app.dispatch_until_idle().await, 0, "not before the day is up");
    app.advance(Duration::from_secs(120));
    assert_eq!(app.dispatch_until_idle().await, 1, "a day, not the three days asked");
    assert_eq!(only_delivery(&app, &ws).await["state"], "delivered");
}
