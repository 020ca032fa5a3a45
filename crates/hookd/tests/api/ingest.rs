//! Ingest: validation, all-or-nothing, limits, idempotency, the documented example bodies.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, data_point};
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn a_request_with_one_invalid_record_changes_nothing_and_names_the_record() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(&ws, json!({ "name": "w", "kind": "data", "url": receiver.url("/") }))
        .await;

    let (status, error) = app
        .ingest(
            &ws,
            "data",
            json!([data_point("a", "t"), { "device_id": "b", "tag": 7, "payload": 1 }]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "[1].tag");
    assert_eq!(error["error"]["code"], "invalid_type");

    assert!(app.deliveries(&ws).await.is_empty());
    app.dispatch_until_idle().await;
    assert!(receiver.requests().is_empty());
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_get_clear_errors() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let url = format!("{}/v1/workspaces/{ws}/data", app.base);
    let response = app
        .http
        .post(&url)
        .bearer_auth(&app.admin)
        .body("{\"device_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");

    let (status, error) = app.ingest(&ws, "events", json!("hello")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["code"], "invalid_type");
    let (status, error) = app.ingest(&ws, "events", json!([])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    let (status, error) = app.ingest(&ws, "events", json!({ "payload": {} })).await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("type"))
    );
}

#[tokio::test]
async fn an_oversized_body_gets_413_and_too_many_records_422() {
    let app = TestApp::spawn_with(|s| {
        s.api.max_body_bytes = 4096;
        s.api.max_records_per_request = 3;
    })
    .await;
    let (ws, _) = app.workspace().await;
    let big = json!({ "device_id": "d", "tag": "t", "payload": "x".repeat(5000) });
    let (status, error) = app.ingest(&ws, "data", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["error"]["code"], "payload_too_large");

    let four: Vec<_> = (0..4).map(|i| data_point(&i.to_string(), "t")).collect();
    let (status, error) = app.ingest(&ws, "data", json!(four)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["code"], "too_many_records");
}

#[tokio::test]
async fn too_deep_json_gets_400_naming_the_field_and_oversized_headers_431() {
    let app = TestApp::spawn_with(|s| {
        s.api.max_json_depth = 4;
        s.api.max_header_bytes = 2048;
    })
    .await;
    let (ws, _) = app.workspace_with_webhook("https://example.com/hook", json!({})).await;
    let deep = json!({ "device_id": "d", "tag": "t", "payload": { "a": { "b": { "c": [1] } } } });
    let (status, error) = app.ingest(&ws, "data", deep).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["code"], "json_too_deep");
    assert_eq!(error["error"]["field"], "payload.a.b.c");
    let (status, _) = app
        .ingest(
            &ws,
            "data",
            json!({ "device_id": "d", "tag": "t", "payload": { "a": { "b": 1 } } }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "4 levels are allowed");

    let response = reqwest::Client::new()
        .get(format!("{}/v1/workspaces", app.base))
        .bearer_auth(&app.admin)
        .header("x-padding", "p".repeat(3000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "headers_too_large");
    assert_eq!(error["error"]["field"], "x-padding");
    assert_eq!(
        app.deliveries(&ws).await.len(),
        1,
        "only the accepted record was ingested"
    );
}

#[tokio::test]
async fn every_example_body_from_the_design_is_accepted_as_it_is() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(
        &ws,
        json!({ "name": "d", "kind": "data", "url": receiver.url("/data") }),
    )
    .await;
    app.webhook(
        &ws,
        json!({ "name": "e", "kind": "event", "url": receiver.url("/events") }),
    )
    .await;
    let data = [
        json!({"timestamp_device": "2023-12-01T09:51:00Z", "tag": "d1", "device_id": "dev-124",
               "asset_id": "ast-1234", "asset_name": "Machine 1", "device_name": "Machine 1",
               "payload": {"ts": 1701424260, "ex": [0, 0], "C": {}}, "fleet_id": "flt-1234"}),
        json!({"device_id": "part-7", "tag": "Readings", "labels": {"org_name": "Acme", "location_name": "Plant 3",
               "machine_name": "arm-1"}, "payload": {"component_name": "temp-sensor", "component_type": "sensor",
               "method_name": "Readings", "data": {"metadata": {"received_at": "2024-03-01T10:00:00Z"},
               "data": {"readings": {"celsius": 81.5}}}}}),
    ];
    let events = [
        json!([{"ts": "2022-03-18T09:34:23.777118453Z", "fleet_id": "flt-123456789", "device_id": "dev-123456789",
                "type": "authentication", "direction": "d2c",
                "payload": {"clientid": "dev-123456789", "proto": "mqtt", "error": "0", "verified": "NONE", "result": "allow"}},
               {"ts": "2022-03-18T09:34:23.793Z", "fleet_id": "flt-123456789", "device_id": "dev-123456789",
                "type": "connection", "direction": "d2c",
                "payload": {"device_ip": "172.0.0.193", "connected_at": "2022-03-18T09:34:23.793Z"}}]),
        json!({"type": "order.created", "payload": {"accountId": "AG-1234567",
               "automationId": "Automation-7a416085-5668-467c-98ad-f903ad1c4187",
               "entityId": "AG-1234567:ORD-1234567", "marketId": "default",
               "orderId": "AG-1234567:ORD-1234567", "partnerId": "9YW9"}}),
        json!({"type": "relay", "device_id": "1_03", "payload": {"dev": "relay", "relay_type": "digital",
               "circuit": "1_03", "value": 0, "pending": false, "mode": "Simple", "modes": ["Simple", "PWM"],
               "glob_dev_id": 2, "pwm_freq": 4800.0, "pwm_duty": 0}}),
    ];
    for body in &data {
        app.send(&ws, "data", body.clone()).await;
    }
    for body in &events {
        app.send(&ws, "events", body.clone()).await;
    }
    app.dispatch_until_idle().await;

    // Delivered unchanged: every field the producer sent arrives with its value.
    let delivered: Vec<serde_json::Value> = receiver
        .requests()
        .iter()
        .flat_map(|r| r.json()["result"].as_array().unwrap().clone())
        .collect();
    let sent: Vec<serde_json::Value> = data
        .iter()
        .chain(&events)
        .flat_map(|b| b.as_array().cloned().unwrap_or_else(|| vec![b.clone()]))
        .collect();
    assert_eq!(delivered.len(), sent.len());
    for original in &sent {
        let found = delivered
            .iter()
            .find(|d| original.as_object().unwrap().iter().all(|(k, v)| d.get(k) == Some(v)));
        assert!(found.is_some(), "{original} was not delivered unchanged");
    }
}

#[tokio::test]
async fn stamped_fields_are_replaced_and_unknown_fields_kept() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(
        &ws,
        json!({ "name": "s", "kind": "event", "url": receiver.url("/"), "format": "single" }),
    )
    .await;
    let ids = app
        .send(
            &ws,
            "events",
            json!({ "type": "x", "payload": 1, "id": "mine", "workspace_id": "ws_other", "extra": { "k": [1, 2] } }),
        )
        .await;
    app.dispatch_until_idle().await;
    let record = receiver.requests()[0].json();
    assert_eq!(record["id"], ids[0].as_str());
    assert_eq!(record["workspace_id"], ws.as_str());
    assert_eq!(record["extra"], json!({ "k": [1, 2] }));
}

#[tokio::test]
async fn an_idempotency_key_answers_a_repeat_with_the_first_ids_and_refuses_another_body() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(&ws, json!({ "name": "w", "kind": "data", "url": receiver.url("/") }))
        .await;
    let url = format!("{}/v1/workspaces/{ws}/data", app.base);
    let send = |body: serde_json::Value| {
        app.http
            .post(&url)
            .bearer_auth(&app.admin)
            .header("idempotency-key", "batch-42")
            .json(&body)
            .send()
    };
    let first: serde_json::Value = send(data_point("d", "t")).await.unwrap().json().await.unwrap();
    let again = send(data_point("d", "t")).await.unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(again.json::<serde_json::Value>().await.unwrap(), first);
    let other = send(data_point("e", "t")).await.unwrap();
    assert_eq!(other.status(), StatusCode::CONFLICT);

    app.dispatch_until_idle().await;
    assert_eq!(receiver.requests().len(), 1, "the repeat was not ingested twice");
}

#[tokio::test]
async fn concurrent_requests_are_all_committed_and_delivered() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(
        &ws,
        json!({ "name": "w", "kind": "data", "url": receiver.url("/"), "batch_max": 1000 }),
    )
    .await;
    let sends = (0..100).map(|i| app.send(&ws, "data", data_point(&format!("d{i}"), "t")));
    let ids: Vec<Vec<String>> = futures::future::join_all(sends).await;
    assert_eq!(ids.iter().flatten().count(), 100);

    app.dispatch_until_idle().await;
    let delivered: usize = receiver
        .requests()
        .iter()
        .map(|r| r.json()["result"].as_array().unwrap().len())
        .sum();
    assert_eq!(delivered, 100);
}

#[tokio::test]
async fn a_body_with_several_bad_fields_names_all_of_them_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let body = json!([
        {"device_id": "d", "tag": "t", "payload": 1, "timestamp_device": "yesterday"},
        {"device_id": "d", "tag": "t", "payload": 1},
        {"tag": "t", "payload": 1, "labels": {"site": "x".repeat(300)}}
    ]);
    let (status, answer) = app.ingest(&ws, "data", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let error = &answer["error"];
    assert_eq!(error["field"], "[0].timestamp_device", "the first problem first");
    assert_eq!(error["code"], "invalid_time");
    let fields: Vec<&str> = error["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["[0].timestamp_device", "[2].device_id", "[2].labels.site"]);
    assert!(app.deliveries(&ws).await.is_empty());

    let (status, answer) = app
        .post(
            &format!("/v1/workspaces/{ws}/webhooks"),
            json!({ "name": "", "kind": "data", "url": "ftp://x", "batch_max": 0 }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["error"]["errors"].as_array().unwrap().len(), 3, "{answer}");
    let (status, single) = app
        .post(
            &format!("/v1/workspaces/{ws}/webhooks"),
            json!({ "name": "n", "kind": "data" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        single["error"].get("errors").is_none(),
        "one problem, no list: {single}"
    );
}

#[tokio::test]
async fn a_workspace_needs_a_name() {
    let app = TestApp::spawn().await;
    for body in [json!({}), json!({ "name": " " })] {
        let (status, answer) = app.post("/v1/workspaces", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["field"], "name");
    }
    let (_, listed) = app.get("/v1/workspaces").await;
    assert_eq!(listed["data"], json!([]), "nothing was created");
}

#[tokio::test]
async fn text_and_form_bodies_are_ingested_like_json_with_the_same_errors() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(
        &ws,
        json!({ "name": "w", "kind": "event", "format": "single", "url": receiver.url("/") }),
    )
    .await;
    let post = |content_type: &'static str, body: String| {
        let request = app
            .http
            .post(format!("{}/v1/workspaces/{ws}/events", app.base))
            .bearer_auth(&app.admin)
            .header("Content-Type", content_type)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let form = |pairs: &[(&str, &str)]| -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    };

    let (status, body) = post("text/plain", r#"{"type": "relay", "payload": {"value": 1}}"#.into()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // A controller posting its JSON array as the form's one key.
    let states = r#"[{"type": "relay", "device_id": "1_03", "payload": {"value": 0}}, {"type": "input", "device_id": "1_01", "payload": {"value": 1}}]"#;
    let (status, body) = post("application/x-www-form-urlencoded", form(&[(states, "")])).await;
    assert_eq!(
        (status, body["ids"].as_array().map(Vec::len)),
        (StatusCode::ACCEPTED, Some(2))
    );
    // A record's fields, with its payload as JSON.
    let fields = form(&[("type", "relay"), ("device_id", "1_04"), ("payload", r#"{"value": 1}"#)]);
    let (status, body) = post("application/x-www-form-urlencoded; charset=utf-8", fields).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    app.dispatch_until_received(&receiver, 4).await;
    let payloads: Vec<serde_json::Value> = receiver
        .requests()
        .iter()
        .map(|r| r.json()["payload"].clone())
        .collect();
    assert!(payloads.contains(&json!({"value": 0})) && payloads.contains(&json!({"value": 1})));
    let with_device: Vec<serde_json::Value> = receiver
        .requests()
        .iter()
        .map(|r| r.json()["device_id"].clone())
        .collect();
    assert!(with_device.contains(&json!("1_04")), "{with_device:?}");

    // The same validation and errors, and nothing stored.
    let (status, error) = post("text/plain", "{\"type\": ".into()).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let bad_payload = form(&[("type", "relay"), ("payload", "{value")]);
    let (status, error) = post("application/x-www-form-urlencoded", bad_payload).await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("payload"))
    );
    let (status, error) = post(
        "application/x-www-form-urlencoded",
        form(&[("device_id", "x"), ("payload", "1")]),
    )
    .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("type"))
    );
    assert_eq!(app.deliveries(&ws).await.len(), 4);
}

#[tokio::test]
async fn a_number_out_of_range_is_invalid_json_wherever_it_is() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    // In a field hookd reads, in the payload, and in a record parsed whole (it has an `id`).
    for body in [
        r#"{"type": 1e400, "payload": 1}"#,
        r#"{"type": "x", "payload": {"v": 1e400}}"#,
        r#"[{"type": "x", "payload": 1}, {"type": "x", "id": "mine", "payload": -1e400}]"#,
    ] {
        let response = app.ingest_text(&ws, "events", "application/json", body).await;
        let status = response.status();
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_json")),
            "{body}: {error}"
        );
    }
    assert!(app.deliveries(&ws).await.is_empty());
}
