//! Presence against a real server: the devices a workspace hears from, and the events their
//! silence and their own connection events make, with a manual clock and a stepped sweep.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::receiver::{Receiver, Reply};

/// A workspace with `presence.offline_after` = `offline_after` and an event webhook taking
/// the presence events to a new receiver.
async fn fleet(app: &TestApp, offline_after: Option<&str>) -> (String, Receiver) {
    let (ws, _) = app.workspace().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    app.webhook(
        &ws,
        json!({ "name": "presence", "kind": "event", "url": receiver.url("/"), "format": "single",
                "filters": { "event_types": ["device.offline", "device.online"] } }),
    )
    .await;
    let workspace = app.api.set_presence(&ws, offline_after).await.unwrap();
    assert_eq!(workspace.presence.offline_after.as_deref(), offline_after);
    (ws, receiver)
}

async fn devices(app: &TestApp, ws: &str) -> Vec<Value> {
    let page = app.api.list_devices(ws, None, None).await.unwrap();
    page.data.iter().map(|d| serde_json::to_value(d).unwrap()).collect()
}

#[tokio::test]
async fn a_silent_device_goes_offline_and_its_next_record_brings_it_back() {
    let app = TestApp::spawn().await;
    let (ws, receiver) = fleet(&app, Some("5m")).await;
    let point = json!({ "device_id": "dev-1", "fleet_id": "flt-1", "tag": "t", "payload": { "v": 1 } });
    app.send(&ws, "data", point.clone()).await;
    let listed = devices(&app, &ws).await;
    assert_eq!(
        (&listed[0]["device_id"], &listed[0]["fleet_id"], &listed[0]["state"]),
        (&json!("dev-1"), &json!("flt-1"), &json!("online"))
    );
    assert_eq!(app.presence.sweep().await.unwrap(), 0, "heard just now");

    app.advance(Duration::from_secs(301));
    assert_eq!(app.presence.sweep().await.unwrap(), 1);
    app.dispatch_until_received(&receiver, 1).await;
    let offline = receiver.requests()[0].json();
    assert_eq!(offline["type"], "device.offline");
    assert_eq!(
        (&offline["device_id"], &offline["fleet_id"]),
        (&json!("dev-1"), &json!("flt-1"))
    );
    assert_eq!(offline["payload"]["reason"], "silence");
    assert_eq!(offline["payload"]["last_seen"], listed[0]["last_seen"]);
    assert_eq!(devices(&app, &ws).await[0]["state"], "offline");
    assert_eq!(app.presence.sweep().await.unwrap(), 0, "once");

    app.advance(Duration::from_secs(1));
    app.send(&ws, "data", point).await;
    assert_eq!(app.presence.sweep().await.unwrap(), 1);
    app.dispatch_until_received(&receiver, 2).await;
    let online = receiver.requests()[1].json();
    assert_eq!(
        (&online["type"], &online["payload"]["reason"]),
        (&json!("device.online"), &json!("record"))
    );
    let page = app.api.list_devices(&ws, Some("online"), None).await.unwrap();
    assert_eq!(page.data.len(), 1);
}

#[tokio::test]
async fn a_devices_own_disconnection_and_connection_events_change_it_at_once() {
    let app = TestApp::spawn().await;
    let (ws, receiver) = fleet(&app, Some("1h")).await;
    app.send(
        &ws,
        "events",
        json!({ "type": "disconnection", "device_id": "robot-3", "payload": {} }),
    )
    .await;
    assert_eq!(app.presence.sweep().await.unwrap(), 1, "no silence needed");
    app.send(
        &ws,
        "events",
        json!({ "type": "connection", "device_id": "robot-3", "payload": {} }),
    )
    .await;
    assert_eq!(app.presence.sweep().await.unwrap(), 1);
    app.dispatch_until_received(&receiver, 2).await;
    let events: Vec<(Value, Value)> = receiver
        .requests()
        .iter()
        .map(|r| r.json())
        .map(|e| (e["type"].clone(), e["payload"]["reason"].clone()))
        .collect();
    assert_eq!(
        events,
        [
            (json!("device.offline"), json!("disconnection")),
            (json!("device.online"), json!("connection"))
        ]
    );
}

#[tokio::test]
async fn without_offline_after_there_are_no_presence_events_and_bad_settings_are_refused() {
    let app = TestApp::spawn().await;
    let (ws, _) = fleet(&app, None).await;
    app.send(&ws, "data", json!({ "device_id": "dev-1", "tag": "t", "payload": 1 }))
        .await;
    app.advance(Duration::from_secs(24 * 3600));
    assert_eq!(app.presence.sweep().await.unwrap(), 0);
    assert_eq!(devices(&app, &ws).await.len(), 1, "still listed");
    for (body, field) in [
        (
            json!({ "presence": { "offline_after": "soon" } }),
            "presence.offline_after",
        ),
        (
            json!({ "presence": { "offline_after": "10ms" } }),
            "presence.offline_after",
        ),
        (json!({ "presence": { "after": "5m" } }), "presence.after"),
        (json!({}), ""),
    ] {
        let (status, error) = app
            .call(
                Method::PATCH,
                &format!("/v1/workspaces/{ws}"),
                &app.admin,
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {error}");
        assert_eq!(error["error"]["field"].as_str().unwrap_or(""), field, "{body}: {error}");
    }
    let (status, error) = app.get(&format!("/v1/workspaces/{ws}/devices?state=gone")).await;
    assert_eq!(
        (status, &error["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("state"))
    );
}

#[tokio::test]
async fn the_cli_sets_presence_and_lists_devices() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let set = crate::cli::hookd_json(&app, &["workspaces", "presence", &ws, "--offline-after", "5m"]).await;
    assert_eq!(set["presence"]["offline_after"], "5m");
    app.send(
        &ws,
        "data",
        json!({ "device_id": "dev-9", "fleet_id": "flt-2", "tag": "t", "payload": 1 }),
    )
    .await;
    let listed = crate::cli::hookd_json(&app, &["workspaces", "devices", &ws]).await;
    assert_eq!(
        (&listed[0]["device_id"], &listed[0]["state"]),
        (&json!("dev-9"), &json!("online"))
    );
    let off = crate::cli::hookd_json(&app, &["workspaces", "presence", &ws, "--offline-after", "off"]).await;
    assert!(off["presence"]["offline_after"].is_null());
}
