//! The MQTT door against the real broker: messages published by a real client become
//! records, delivered like any other, their topic's segments as fields.

use std::time::Duration;

use hookd::Dispatch;
use serde_json::json;

use crate::helpers::{TestApp, sample, scrape};
use crate::mqtt::{BROKER, broker_up, prefix, publish, publisher};
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn published_messages_become_records_with_their_topic_fields_and_are_delivered() {
    if !broker_up("published_messages_become_records_with_their_topic_fields_and_are_delivered") {
        return;
    }
    let receiver = Receiver::start(Reply::Status(200)).await;
    let first = TestApp::spawn().await;
    let (ws, _) = first.workspace().await;
    first
        .webhook(
            &ws,
            json!({ "name": "w", "kind": "data", "url": receiver.url("/"), "format": "single" }),
        )
        .await;
    let dir = first.dir.clone();
    first.stop().await;

    let topics = prefix();
    let (workspace, bare, filter, pattern) = (
        ws.clone(),
        format!("{topics}-bare/#"),
        format!("{topics}/fleets/+/devices/+/+"),
        format!("{topics}/fleets/{{fleet_id}}/devices/{{device_id}}/{{tag}}"),
    );
    let app = TestApp::spawn_in(
        dir,
        move |s| {
            s.mqtt.url = Some(BROKER.into());
            s.mqtt.topics = vec![filter, bare];
            s.mqtt.topic_pattern = Some(pattern);
            s.mqtt.workspace = Some(workspace);
            s.mqtt.client_id = Some(hookd_core::id::new_id("hookd-test"));
        },
        Dispatch::Manual,
    )
    .await;
    wait_ready(&app).await;
    let client = publisher().await;
    publish(
        &client,
        &format!("{topics}/fleets/flt-1/devices/dev-7/temperature"),
        br#"{"celsius": 21.5}"#,
    )
    .await;
    publish(&client, &format!("{topics}/fleets/flt-1/devices/dev-7/relay"), b"ON").await;
    // No device in the topic: not a data point.
    publish(&client, &format!("{topics}-bare/x"), b"1").await;
    app.dispatch_until_received(&receiver, 2).await;
    let mut bodies: Vec<serde_json::Value> = receiver.requests().iter().map(|r| r.json()).collect();
    bodies.sort_by_key(|b| b["tag"].as_str().unwrap().to_owned());
    assert_eq!(
        (&bodies[0]["tag"], &bodies[0]["payload"], &bodies[0]["device_id"]),
        (&json!("relay"), &json!("ON"), &json!("dev-7")),
        "not JSON: a string"
    );
    assert_eq!(
        (&bodies[1]["tag"], &bodies[1]["payload"], &bodies[1]["fleet_id"]),
        (&json!("temperature"), &json!({"celsius": 21.5}), &json!("flt-1"))
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = scrape(&app).await;
        let counted = (
            sample(&metrics, "hookd_mqtt_messages_total{outcome=\"committed\"}"),
            sample(&metrics, "hookd_mqtt_messages_total{outcome=\"invalid\"}"),
            sample(&metrics, "hookd_mqtt_connected"),
        );
        if counted == (2.0, 1.0, 1.0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "metrics say {counted:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

/// Polls `/readyz` until the MQTT door is connected.
async fn wait_ready(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, health) = app.get("/readyz").await;
        if health["status"] == "ready" {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "not connected: {health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
