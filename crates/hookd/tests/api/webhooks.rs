//! The webhook API: CRUD, validation, the test send, and the delivery log routes.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, data_point};
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn a_webhook_is_created_read_listed_updated_and_deleted() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let created = app
        .webhook(
            &ws,
            json!({
                "name": "plant", "kind": "event", "url": "https://example.com/hook", "filters": { "event_types": ["connection"] },
                "token": "t", "token_header": "Verifier-Token", "headers": { "X-Site": "{{labels.site}}" },
                "format": "single", "batch_max": 50, "timeout": "10s", "retry_schedule": ["5s", "5m", "30m"]
            }),
        )
        .await;
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["has_token"], true);
    assert!(created.get("token").is_none(), "tokens are never shown");
    let path = format!("/v1/workspaces/{ws}/webhooks/{}", created["id"].as_str().unwrap());

    let (status, read) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["retry_schedule"], json!(["5s", "5m", "30m"]));
    assert_eq!(read["timeout"], "10s");
    assert!(read.get("secret").is_none());

    let (status, patched) = app
        .call(
            Method::PATCH,
            &path,
            &app.admin.clone(),
            Some(json!({ "name": "renamed", "enabled": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "renamed");
    assert_eq!(patched["format"], "single", "fields not named are kept");
    assert_eq!(patched["enabled"], false);
    assert!(patched["disabled_reason"].as_str().unwrap().contains("API"));
    let (status, enabled) = app
        .call(
            Method::PATCH,
            &path,
            &app.admin.clone(),
            Some(json!({ "enabled": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabled_reason"], serde_json::Value::Null);
    assert_eq!(app.get(&path).await.1["enabled"], true, "stored enabled");

    let (_, list) = app.get(&format!("/v1/workspaces/{ws}/webhooks")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    let (status, _) = app.call(Method::DELETE, &path, &app.admin.clone(), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn invalid_webhooks_are_refused_with_the_field_named_and_nothing_is_created() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let cases = [
        (
            json!({ "name": "n", "kind": "data", "url": "ftp://example.com" }),
            "url",
            "invalid_url",
        ),
        (
            json!({ "name": "n", "kind": "logs", "url": "https://example.com" }),
            "kind",
            "invalid_value",
        ),
        (
            json!({ "name": "", "kind": "data", "url": "https://example.com" }),
            "name",
            "invalid_value",
        ),
        (
            json!({ "name": "n", "kind": "data", "url": "https://example.com", "retry_schedule": ["5s", "often"] }),
            "retry_schedule[1]",
            "invalid_duration",
        ),
        (
            json!({ "name": "n", "kind": "data", "url": "https://example.com", "batch_max": 5000 }),
            "batch_max",
            "invalid_value",
        ),
        (
            json!({ "name": "n", "kind": "data", "url": "https://example.com", "secret": "plain" }),
            "secret",
            "invalid_secret",
        ),
        (
            json!({ "name": "n", "kind": "event", "url": "https://example.com", "filters": { "tags": ["t"] } }),
            "filters.tags",
            "invalid_value",
        ),
        (
            json!({ "kind": "data", "url": "https://example.com" }),
            "name",
            "missing_field",
        ),
    ];
    for (body, field, code) in cases {
        let (status, error) = app.post(&format!("/v1/workspaces/{ws}/webhooks"), body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            (error["error"]["field"].as_str(), error["error"]["code"].as_str()),
            (Some(field), Some(code)),
            "{body}"
        );
    }
    let (_, list) = app.get(&format!("/v1/workspaces/{ws}/webhooks")).await;
    assert!(list["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_test_send_makes_one_attempt_with_a_record_of_the_webhooks_kind() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    for (kind, field, value) in [("data", "tag", "TEST"), ("event", "type", "TEST")] {
        let webhook = app
            .webhook(&ws, json!({ "name": kind, "kind": kind, "url": receiver.url("/") }))
            .await;
        let before = receiver.requests().len();
        let (status, answer) = app
            .post(
                &format!("/v1/workspaces/{ws}/webhooks/{}/test", webhook["id"].as_str().unwrap()),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["attempt"]["status"], 200);
        assert_eq!(answer["attempt"]["outcome"], "delivered");
        let got = receiver.requests();
        assert_eq!(got.len(), before + 1, "sent at once, without the dispatcher");
        let body = got[before].json();
        assert_eq!(body["kind"], kind);
        let record = &body["result"][0];
        assert_eq!(record[field], value, "{kind} webhook: {record}");
        if kind == "data" {
            assert_eq!(record["device_id"], "hookd-test");
            assert!(record.get("type").is_none(), "a data point, not an event: {record}");
        }
        let delivery = app.delivery(&ws, answer["delivery_id"].as_str().unwrap()).await;
        assert_eq!(delivery["state"], "delivered");
        assert_eq!(app.dispatch_until_idle().await, 0, "nothing left to send");
    }
}

#[tokio::test]
async fn a_failed_test_send_is_never_retried() {
    let app = TestApp::spawn().await;
    let (receiver, ws, webhook) = app.with_receiver(Reply::Status(503), json!({})).await;
    let wh = webhook["id"].as_str().unwrap();
    let (status, answer) = app
        .post(&format!("/v1/workspaces/{ws}/webhooks/{wh}/test"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["attempt"]["status"], 503);
    assert_eq!(answer["attempt"]["outcome"], "failed");
    let explanation = answer["attempt"]["explanation"].as_str().unwrap();
    assert!(explanation.contains("never retried"), "{explanation}");
    let delivery = app.delivery(&ws, answer["delivery_id"].as_str().unwrap()).await;
    assert_eq!(delivery["state"], "failed");
    assert_eq!(delivery["next_attempt_at"], serde_json::Value::Null);
    // Past every step of the retry schedule, nothing is attempted again.
    app.advance(Duration::from_secs(3 * 24 * 3600));
    assert_eq!(app.dispatch_until_idle().await, 0);
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_with_filters_and_a_cursor() {
    let app = TestApp::spawn().await;
    let ok = Receiver::start(Reply::Status(200)).await;
    let bad = Receiver::start(Reply::Status(400)).await;
    let (ws, _) = app.workspace().await;
    let good_hook = app
        .webhook(
            &ws,
            json!({ "name": "ok", "kind": "data", "url": ok.url("/"), "format": "single" }),
        )
        .await;
    app.webhook(
        &ws,
        json!({ "name": "bad", "kind": "data", "url": bad.url("/"), "format": "single" }),
    )
    .await;
    for i in 0..3 {
        app.send(&ws, "data", data_point(&format!("d{i}"), "t")).await;
    }
    app.dispatch_until_idle().await;

    let all = app.deliveries(&ws).await;
    assert_eq!(all.len(), 6);
    let ids: Vec<&str> = all.iter().map(|d| d["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");

    let (_, failed) = app.get(&format!("/v1/workspaces/{ws}/deliveries?state=failed")).await;
    assert_eq!(failed["data"].as_array().unwrap().len(), 3);
    let (_, mine) = app
        .get(&format!(
            "/v1/workspaces/{ws}/deliveries?webhook_id={}",
            good_hook["id"].as_str().unwrap()
        ))
        .await;
    let mine = mine["data"].as_array().unwrap();
    assert_eq!(mine.len(), 3, "the good webhook's three deliveries, and only them");
    assert!(
        mine.iter()
            .all(|d| d["state"] == "delivered" && d["webhook_id"] == good_hook["id"])
    );

    let (_, page1) = app.get(&format!("/v1/workspaces/{ws}/deliveries?limit=4")).await;
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = app
        .get(&format!("/v1/workspaces/{ws}/deliveries?limit=4&after={cursor}"))
        .await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 2);
    assert_eq!(page2["next_cursor"], serde_json::Value::Null);

    let (status, error) = app.get(&format!("/v1/workspaces/{ws}/deliveries?state=lost")).await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("state"))
    );
    let (status, error) = app.get(&format!("/v1/workspaces/{ws}/deliveries?limit=0")).await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit"))
    );
}

#[tokio::test]
async fn a_failed_delivery_can_be_retried_now() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start_scripted(Reply::Status(200), [Reply::Status(400)]).await;
    let (ws, _) = app.workspace().await;
    app.webhook(&ws, json!({ "name": "w", "kind": "data", "url": receiver.url("/") }))
        .await;
    app.send(&ws, "data", data_point("d", "t")).await;
    app.dispatch_until_idle().await;
    let id = app.deliveries(&ws).await[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.delivery(&ws, &id).await["state"], "failed");

    let (status, retried) = app
        .post(&format!("/v1/workspaces/{ws}/deliveries/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(retried["state"], "pending");
    app.dispatch_until_idle().await;
    let delivery = app.delivery(&ws, &id).await;
    assert_eq!(delivery["state"], "delivered");
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_disabled_webhook_holds_its_deliveries_until_enabled() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    let webhook = app
        .webhook(&ws, json!({ "name": "w", "kind": "data", "url": receiver.url("/") }))
        .await;
    let path = format!("/v1/workspaces/{ws}/webhooks/{}", webhook["id"].as_str().unwrap());
    app.send(&ws, "data", data_point("d", "t")).await;
    app.call(
        Method::PATCH,
        &path,
        &app.admin.clone(),
        Some(json!({ "enabled": false })),
    )
    .await;
    assert_eq!(app.dispatch_until_idle().await, 0);

    app.call(
        Method::PATCH,
        &path,
        &app.admin.clone(),
        Some(json!({ "enabled": true })),
    )
    .await;
    app.advance(Duration::from_millis(1));
    assert_eq!(app.dispatch_until_idle().await, 1);
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn a_url_the_ssrf_policy_blocks_is_flagged_when_the_webhook_is_saved() {
    let app = TestApp::spawn_with(|s| {
        s.delivery.allow_networks.clear();
        s.delivery.restrict_to_networks.clear(); // nothing below is ever delivered to
    })
    .await;
    let (ws, _) = app.workspace().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
    ] {
        let created = app
            .webhook(&ws, json!({ "name": "n", "kind": "data", "url": url }))
            .await;
        let warning = created["warnings"][0].as_str().unwrap_or_default();
        assert!(warning.contains("SSRF"), "{url}: {created}");
    }
    let fine = app
        .webhook(
            &ws,
            json!({ "name": "n", "kind": "data", "url": "http://93.184.216.34/hook" }),
        )
        .await;
    assert!(fine.get("warnings").is_none(), "{fine}");
}

#[tokio::test]
async fn a_workspace_cannot_exceed_its_webhook_limit() {
    let app = TestApp::spawn_with(|s| s.api.max_webhooks_per_workspace = 2).await;
    let (ws, _) = app.workspace().await;
    let body = json!({ "name": "n", "kind": "data", "url": "https://example.com/hook" });
    app.webhook(&ws, body.clone()).await;
    app.webhook(&ws, body.clone()).await;
    let (status, error) = app.post(&format!("/v1/workspaces/{ws}/webhooks"), body).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["error"]["code"], "limit_reached");
    let (_, list) = app.get(&format!("/v1/workspaces/{ws}/webhooks")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn credentials_in_a_webhook_url_are_used_but_never_shown() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    let real = receiver
        .url("/hook?site=3&token=t0ps3cret")
        .replace("http://", "http://user:pa55word@");
    let created = app
        .webhook(&ws, json!({ "name": "creds", "kind": "data", "url": real }))
        .await;
    let wh = created["id"].as_str().unwrap();
    let shown = created["url"].as_str().unwrap();
    assert!(
        shown.contains("user:***@") && shown.contains("token=***") && shown.contains("site=3"),
        "{shown}"
    );
    for (_, body) in [
        app.get(&format!("/v1/workspaces/{ws}/webhooks/{wh}")).await,
        app.get(&format!("/v1/workspaces/{ws}/webhooks")).await,
    ] {
        let text = body.to_string();
        assert!(!text.contains("pa55word") && !text.contains("t0ps3cret"), "{text}");
    }
    let listed = crate::cli::hookd(&app, &["webhooks", "get", "-w", &ws, wh]).await;
    let printed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        printed.contains("user:***@") && !printed.contains("pa55word"),
        "{printed}"
    );

    // Sending the shown URL back (a read-modify-write) keeps the real one.
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/workspaces/{ws}/webhooks/{wh}"),
            &app.admin.clone(),
            Some(json!({ "url": shown, "name": "renamed" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.send(&ws, "data", data_point("d", "t")).await;
    app.dispatch_until_idle().await;
    let got = &receiver.requests()[0];
    assert_eq!(got.path, "/hook?site=3&token=t0ps3cret", "delivered to the real URL");
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("user:pa55word");
    assert_eq!(got.header("authorization"), Some(format!("Basic {basic}").as_str()));
}

#[tokio::test]
async fn a_webhook_changed_through_one_process_is_matched_by_another_at_once() {
    let Some(url) = hookd_postgres::testing::url().await else {
        return;
    };
    let schema = hookd_postgres::testing::schema_name();
    let configure = |s: &mut hookd::Settings| {
        s.database_url = Some(url.clone());
        s.database.schema = Some(schema.clone());
        s.admin_key = Some("hk_admin_registry_test_0123456789".into());
    };
    let one = TestApp::spawn_with(configure).await;
    let two = TestApp::spawn_with(configure).await;
    let (ws, _) = one.workspace().await;
    two.send(&ws, "data", data_point("d", "t")).await;
    assert!(one.deliveries(&ws).await.is_empty(), "no webhook yet: two keeps none");

    let webhook = one
        .webhook(
            &ws,
            json!({ "name": "w", "kind": "data", "url": "https://example.com/" }),
        )
        .await;
    // Two hears of the new webhook through PostgreSQL; each record sent meanwhile either is
    // matched to it or not, and once one is, every later one is.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let before = one.deliveries(&ws).await.len();
        two.send(&ws, "data", data_point("d", "t")).await;
        if one.deliveries(&ws).await.len() > before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "process two never matched the new webhook"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let id = webhook["id"].as_str().unwrap();
    let patch = json!({ "filters": { "devices": ["another"] } });
    one.api.update_webhook(&ws, id, &patch).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let before = one.deliveries(&ws).await.len();
        two.send(&ws, "data", data_point("d", "t")).await;
        if one.deliveries(&ws).await.len() == before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "process two never saw the new filter"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    one.stop().await;
    two.stop().await;
    hookd_postgres::testing::drop_schema(&url, &schema);
}
