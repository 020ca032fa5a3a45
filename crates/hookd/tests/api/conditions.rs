//! Webhook conditions: jq on each record, `trigger_condition` on what is delivered, errors and
//! hostile programs taken as no match without failing the ingest.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, sample, scrape};
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn only_records_the_condition_yields_true_for_are_delivered_carrying_it() {
    let app = TestApp::spawn().await;
    let hot = Receiver::start(Reply::Status(200)).await;
    let all = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    let condition = ".payload.data.readings.celsius + 0 > 80";
    let webhook = app
        .webhook(
            &ws,
            json!({"name": "hot", "kind": "data", "url": hot.url("/"), "format": "single", "condition": condition}),
        )
        .await;
    assert_eq!(webhook["condition"], condition);
    app.webhook(&ws, json!({"name": "all", "kind": "data", "url": all.url("/")}))
        .await;
    // The robot cloud's sensor readings: one hot, one cool, one whose reading is not a number.
    let reading = |part: &str, celsius: serde_json::Value| json!({"device_id": part, "tag": "Readings", "payload": {"component_name": "temp-sensor", "data": {"readings": {"celsius": celsius}}}});
    let (status, body) = app
        .ingest(
            &ws,
            "data",
            json!([
                reading("part-1", json!(81.5)),
                reading("part-2", json!(20)),
                reading("part-3", json!("n/a"))
            ]),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "a failing condition never fails the ingest"
    );
    app.dispatch_until_received(&all, 1).await;
    app.dispatch_until_idle().await;

    let delivered = hot.requests();
    assert_eq!(delivered.len(), 1, "only the hot reading");
    let record = delivered[0].json();
    assert_eq!(
        (record["device_id"].as_str(), record["id"].as_str()),
        (Some("part-1"), body["ids"][0].as_str())
    );
    assert_eq!(record["trigger_condition"], condition);
    assert_eq!(all.requests()[0].json()["result"].as_array().unwrap().len(), 3);
    assert!(all.requests()[0].json()["result"][0].get("trigger_condition").is_none());
    let metrics = scrape(&app).await;
    assert_eq!(
        sample(&metrics, "hookd_condition_errors_total"),
        1.0,
        "the `n/a` reading"
    );
}

#[tokio::test]
async fn a_condition_that_does_not_compile_is_refused_naming_its_position() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let (status, error) = app
        .post(
            &format!("/v1/workspaces/{ws}/webhooks"),
            json!({"name": "bad", "kind": "event", "url": "http://127.0.0.1:9/", "condition": ".payload.temp >"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "condition");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("at character"), "{message}");
    let (status, webhooks) = app.get(&format!("/v1/workspaces/{ws}/webhooks")).await;
    assert_eq!(
        (status, webhooks["data"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );

    // The same on update, and the webhook keeps its condition.
    let webhook = app
        .webhook(
            &ws,
            json!({"name": "ok", "kind": "event", "url": "http://127.0.0.1:9/", "condition": ".type == \"relay\""}),
        )
        .await;
    let path = format!("/v1/workspaces/{ws}/webhooks/{}", webhook["id"].as_str().unwrap());
    let (status, error) = app
        .call(
            reqwest::Method::PATCH,
            &path,
            &app.admin,
            Some(json!({"condition": "def f: ;"})),
        )
        .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("condition"))
    );
    let (_, kept) = app.get(&path).await;
    assert_eq!(kept["condition"], ".type == \"relay\"");
}

#[tokio::test]
async fn a_hostile_condition_is_stopped_and_matches_nothing_while_other_webhooks_go_on() {
    let app = TestApp::spawn_with(|s| s.sources.transform_timeout = std::time::Duration::from_millis(300)).await;
    let hostile = Receiver::start(Reply::Status(200)).await;
    let plain = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(
        &ws,
        json!({"name": "loop", "kind": "event", "url": hostile.url("/"), "condition": "def f: f; f"}),
    )
    .await;
    app.webhook(
        &ws,
        json!({"name": "plain", "kind": "event", "url": plain.url("/"), "condition": ".type == \"relay\""}),
    )
    .await;
    for _ in 0..2 {
        let (status, _) = app
            .ingest(&ws, "events", json!({"type": "relay", "payload": {"value": 1}}))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    app.dispatch_until_received(&plain, 2).await;
    app.dispatch_until_idle().await;
    assert!(hostile.requests().is_empty());
    let metrics = scrape(&app).await;
    assert_eq!(
        sample(&metrics, "hookd_condition_errors_total"),
        2.0,
        "stopped once, then benched"
    );
}

#[tokio::test]
async fn a_preview_shows_which_recent_records_a_draft_condition_would_match() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let webhook = app
        .webhook(
            &ws,
            json!({"name": "hot", "kind": "data", "url": "http://127.0.0.1:9/", "filters": {"tags": ["Readings"]}}),
        )
        .await;
    let reading = |part: &str, tag: &str, celsius: serde_json::Value| json!({"device_id": part, "tag": tag, "payload": {"celsius": celsius}});
    let ids = app
        .send(
            &ws,
            "data",
            json!([
                reading("a", "Readings", json!(90)),
                reading("b", "Readings", json!(10)),
                reading("c", "Other", json!(95)),
                reading("d", "Readings", json!("n/a"))
            ]),
        )
        .await;
    app.send(&ws, "events", json!({"type": "not-data", "payload": {"celsius": 99}}))
        .await;
    let path = format!(
        "/v1/workspaces/{ws}/webhooks/{}/preview",
        webhook["id"].as_str().unwrap()
    );
    let deliveries = app.deliveries(&ws).await.len();

    let (status, preview) = app
        .post(&path, json!({"condition": ".payload.celsius + 0 > 80", "limit": 10}))
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let rows = preview["data"].as_array().unwrap();
    let seen: Vec<&str> = rows.iter().map(|r| r["record_id"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(seen, newest_first, "the data records only, newest first");
    let by_id = |i: usize| rows.iter().find(|r| r["record_id"] == ids[i]).unwrap();
    assert_eq!(
        (by_id(0)["matched"].as_bool(), by_id(0)["filters"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(by_id(1)["matched"], false);
    assert_eq!(
        (by_id(2)["matched"].as_bool(), by_id(2)["filters"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(by_id(3)["matched"], false);
    assert!(by_id(3)["error"].as_str().is_some(), "{}", by_id(3));

    let (status, error) = app.post(&path, json!({"condition": ".payload.celsius >"})).await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("condition"))
    );
    let (status, error) = app.post(&path, json!({"condition": "true", "limit": 0})).await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("limit"))
    );
    assert_eq!(
        app.deliveries(&ws).await.len(),
        deliveries,
        "a preview makes no deliveries"
    );
}
