//! Matching: a record reaches exactly the webhooks whose kind and filters match it.

use std::collections::BTreeMap;

use serde_json::json;

use crate::helpers::TestApp;
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn a_record_reaches_exactly_the_webhooks_whose_filters_match() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    let hooks = [
        ("all-data", json!({ "kind": "data" })),
        ("fleet-f1", json!({ "kind": "data", "filters": { "fleets": ["f1"] } })),
        (
            "tag-temp",
            json!({ "kind": "data", "filters": { "tags": ["temp", "hum"] } }),
        ),
        ("device-d3", json!({ "kind": "data", "filters": { "devices": ["d3"] } })),
        (
            "site-a-f1",
            json!({ "kind": "data", "filters": { "fleets": ["f1"], "labels": { "site": "a" } } }),
        ),
        (
            "conn-events",
            json!({ "kind": "event", "filters": { "event_types": ["connection"] } }),
        ),
        ("all-events", json!({ "kind": "event" })),
    ];
    for (name, spec) in &hooks {
        let mut body = spec.clone();
        body["name"] = json!(name);
        body["url"] = json!(receiver.url(&format!("/{name}")));
        body["format"] = json!("single");
        app.webhook(&ws, body).await;
    }
    app.send(
        &ws,
        "data",
        json!([
            { "device_id": "d1", "tag": "temp", "fleet_id": "f1", "payload": 1, "labels": { "site": "a" } },
            { "device_id": "d2", "tag": "volt", "fleet_id": "f2", "payload": 2 },
            { "device_id": "d3", "tag": "hum", "payload": 3, "labels": { "site": "b" } },
        ]),
    )
    .await;
    app.send(
        &ws,
        "events",
        json!([
            { "type": "connection", "device_id": "d1", "payload": {} },
            { "type": "fota", "device_id": "d1", "payload": {} },
        ]),
    )
    .await;
    app.dispatch_until_idle().await;

    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for request in receiver.requests() {
        let body = request.json();
        let what = body["device_id"]
            .as_str()
            .filter(|_| body.get("tag").is_some())
            .map(str::to_owned);
        let what = what.unwrap_or_else(|| body["type"].as_str().unwrap().to_owned());
        seen.entry(request.path.trim_start_matches('/').to_owned())
            .or_default()
            .push(what);
    }
    for list in seen.values_mut() {
        list.sort();
    }
    let expected: BTreeMap<String, Vec<String>> = [
        ("all-data", vec!["d1", "d2", "d3"]),
        ("fleet-f1", vec!["d1"]),
        ("tag-temp", vec!["d1", "d3"]),
        ("device-d3", vec!["d3"]),
        ("site-a-f1", vec!["d1"]),
        ("conn-events", vec!["connection"]),
        ("all-events", vec!["connection", "fota"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(seen, expected);
}
