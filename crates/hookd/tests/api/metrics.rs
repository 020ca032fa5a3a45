//! What an operator alerts on: described metrics, per-webhook series, a webhook's health.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, data_point, sample, scrape};
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn every_metric_has_help() {
    let app = TestApp::spawn().await;
    let (_receiver, ws, _) = app.with_receiver(Reply::Status(200), json!({})).await;
    app.send(&ws, "data", data_point("d", "t")).await;
    app.dispatch_until_idle().await;
    let metrics = scrape(&app).await;
    let mut families: Vec<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .map(|name| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name)
        })
        .collect();
    families.sort();
    families.dedup();
    assert!(families.len() >= 8, "{families:?}");
    for family in families {
        assert!(
            metrics.contains(&format!("# HELP {family} ")),
            "no # HELP for {family}:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn failures_and_latency_are_told_apart_per_webhook_up_to_a_bound() {
    let app = TestApp::spawn_with(|s| s.metrics.webhook_labels = 2).await;
    let ok = Receiver::start(Reply::Status(200)).await;
    let busy = Receiver::start(Reply::Status(503)).await;
    let (ws, _) = app.workspace().await;
    let mut ids = Vec::new();
    for (name, receiver) in [("ok", &ok), ("busy", &busy), ("third", &ok)] {
        let hook = app
            .webhook(
                &ws,
                json!({ "name": name, "kind": "data", "url": receiver.url("/"), "format": "single" }),
            )
            .await;
        ids.push(hook["id"].as_str().unwrap().to_owned());
        // One at a time, so which webhook is attempted first is known.
        app.send(
            &ws,
            "data",
            json!({ "device_id": name, "tag": "t", "payload": 1, "labels": { "to": name } }),
        )
        .await;
        app.api
            .update_webhook(
                &ws,
                &ids[ids.len() - 1],
                &json!({ "filters": { "labels": { "to": name } } }),
            )
            .await
            .unwrap();
        app.dispatch_until_idle().await;
    }
    let metrics = scrape(&app).await;
    let series = |webhook: &str, outcome: &str| {
        sample(
            &metrics,
            &format!("hookd_webhook_attempts_total{{webhook=\"{webhook}\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(series(&ids[0], "delivered"), 1.0, "{metrics}");
    assert_eq!(series(&ids[1], "retry"), 1.0, "{metrics}");
    assert_eq!(series(&ids[1], "delivered"), 0.0);
    assert!(
        series("other", "delivered") >= 1.0,
        "the third webhook is past the bound: {metrics}"
    );
    assert!(!metrics.contains(&ids[2]), "no series of its own");
    assert!(metrics.contains(&format!(
        "hookd_webhook_attempt_duration_seconds_bucket{{webhook=\"{}\"",
        ids[1]
    )));
}

#[tokio::test]
async fn a_webhooks_read_shows_its_health() {
    let app = TestApp::spawn_with(|s| s.dispatch.breaker_failures = 2).await;
    let receiver = Receiver::start_scripted(Reply::Status(200), [Reply::Status(503), Reply::Status(503)]).await;
    let (ws, _) = app.workspace().await;
    let hook = app
        .webhook(&ws, json!({ "name": "h", "kind": "data", "url": receiver.url("/"), "format": "single", "retry_schedule": ["10s"] }))
        .await;
    let wh = hook["id"].as_str().unwrap();
    assert_eq!(hook["health"]["breaker"], "closed");
    assert_eq!(hook["health"]["last_success_at"], serde_json::Value::Null);
    app.send(&ws, "data", json!([data_point("a", "t"), data_point("b", "t")]))
        .await;
    app.dispatch_until_idle().await;

    let read = serde_json::to_value(app.api.get_webhook(&ws, wh).await.unwrap()).unwrap();
    let health = &read["health"];
    assert_eq!(health["breaker"], "open", "{health}");
    assert_eq!(health["consecutive_failures"], 2);
    assert!(
        health["last_failure_at"].is_string() && health["paused_until"].is_string(),
        "{health}"
    );
    assert_eq!(health["last_success_at"], serde_json::Value::Null);

    app.advance(Duration::from_secs(13));
    let read = serde_json::to_value(app.api.get_webhook(&ws, wh).await.unwrap()).unwrap();
    assert_eq!(read["health"]["breaker"], "half_open");
    app.dispatch_until_idle().await;
    let read = serde_json::to_value(app.api.get_webhook(&ws, wh).await.unwrap()).unwrap();
    let health = &read["health"];
    assert_eq!(health["breaker"], "closed", "{health}");
    assert_eq!(health["consecutive_failures"], 0);
    assert!(health["last_success_at"].is_string());
    assert!(health["last_failure_at"].is_string(), "the last failure is still shown");
    assert_eq!(health["paused_until"], serde_json::Value::Null);
}
