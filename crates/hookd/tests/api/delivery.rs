//! What arrives at the receiver: headers, signature, body shapes.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, data_point};
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn a_signed_batch_arrives_with_the_documented_headers() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(204)).await;
    let (ws, _) = app.workspace().await;
    let webhook = app
        .webhook(
            &ws,
            json!({ "name": "fleet", "kind": "data", "url": receiver.url("/in"), "token": "s3cret-token" }),
        )
        .await;
    let ids = app
        .send(&ws, "data", json!([data_point("dev-1", "t"), data_point("dev-2", "t")]))
        .await;

    assert_eq!(app.dispatch_until_idle().await, 1);
    let got = receiver.requests();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("user-agent"),
        Some(concat!("hookd/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(request.header("x-auth-token"), Some("s3cret-token"));
    let timestamp: i64 = request.header("webhook-timestamp").unwrap().parse().unwrap();
    assert!((timestamp - app.clock_secs()).abs() <= 1);

    // Verified by an independent Standard Webhooks implementation.
    let verifier = standardwebhooks::Webhook::new(webhook["secret"].as_str().unwrap()).unwrap();
    verifier
        .verify(&request.body, &request.headers)
        .expect("the signature verifies");

    let body = request.json();
    let delivery_id = request.header("webhook-id").unwrap();
    assert_eq!(body["batch_id"], delivery_id);
    assert_eq!(body["webhook_id"], webhook["id"]);
    assert_eq!(body["workspace_id"], ws.as_str());
    assert_eq!(body["kind"], "data");
    let result = body["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    assert_eq!(result[0]["id"], ids[0].as_str());
    assert_eq!(result[1]["device_id"], "dev-2");
    assert!(result[0]["timestamp_in"].as_str().unwrap().ends_with('Z'));

    let delivery = app.delivery(&ws, delivery_id).await;
    assert_eq!(delivery["state"], "delivered");
    assert_eq!(delivery["attempts"][0]["status"], 204);
}

#[tokio::test]
async fn a_custom_token_header_carries_the_token() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(
        &ws,
        json!({ "name": "saas", "kind": "event", "url": receiver.url("/"), "token": "v-123", "token_header": "Verifier-Token" }),
    )
    .await;
    app.send(
        &ws,
        "events",
        json!({ "type": "order.created", "payload": { "orderId": "AG-1" } }),
    )
    .await;
    app.dispatch_until_idle().await;
    let got = receiver.requests();
    assert_eq!(got[0].header("verifier-token"), Some("v-123"));
    assert_eq!(got[0].header("x-auth-token"), None);
}

#[tokio::test]
async fn single_format_sends_each_record_as_its_own_body() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(
        &ws,
        json!({ "name": "one", "kind": "data", "url": receiver.url("/"), "format": "single" }),
    )
    .await;
    let ids = app
        .send(
            &ws,
            "data",
            json!([data_point("a", "t"), data_point("b", "t"), data_point("c", "t")]),
        )
        .await;

    assert_eq!(app.dispatch_until_idle().await, 3);
    let mut got: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    assert_eq!(got, ids);
    assert!(receiver.requests().iter().all(|r| r.json().get("batch_id").is_none()));
}

#[tokio::test]
async fn a_large_request_is_cut_into_batches_of_batch_max() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(
        &ws,
        json!({ "name": "b", "kind": "data", "url": receiver.url("/"), "batch_max": 2 }),
    )
    .await;
    let records: Vec<_> = (0..5).map(|i| data_point(&format!("d{i}"), "t")).collect();
    app.send(&ws, "data", json!(records)).await;

    assert_eq!(app.dispatch_until_idle().await, 3);
    let mut sizes: Vec<usize> = receiver
        .requests()
        .iter()
        .map(|r| r.json()["result"].as_array().unwrap().len())
        .collect();
    sizes.sort();
    assert_eq!(sizes, vec![1, 2, 2]);
}

#[tokio::test]
async fn get_webhooks_send_no_body_and_templated_headers_carry_record_fields() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    let webhook = app
        .webhook(
            &ws,
            json!({
                "name": "presence", "kind": "event", "url": receiver.url("/presence"), "method": "GET",
                "headers": { "X-Machine": "{{labels.machine_name}}", "X-Device": "{{device_id}}", "X-Static": "yes" }
            }),
        )
        .await;
    app.send(
        &ws,
        "events",
        json!({ "type": "online", "device_id": "arm-1", "labels": { "machine_name": "arm" }, "payload": {} }),
    )
    .await;
    app.dispatch_until_idle().await;

    let request = &receiver.requests()[0];
    assert_eq!(request.method, "GET");
    assert!(request.body.is_empty());
    assert_eq!(request.header("content-type"), None);
    assert_eq!(request.header("x-machine"), Some("arm"));
    assert_eq!(request.header("x-device"), Some("arm-1"));
    assert_eq!(request.header("x-static"), Some("yes"));
    let verifier = standardwebhooks::Webhook::new(webhook["secret"].as_str().unwrap()).unwrap();
    verifier
        .verify(&request.body, &request.headers)
        .expect("an empty body is signed too");
}

#[tokio::test]
async fn query_templates_carry_record_fields_and_malformed_templates_are_refused_by_field() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    // The robot cloud's machine-online webhook: context in headers, the part in the query.
    app.webhook(
        &ws,
        json!({
            "name": "online", "kind": "event", "url": receiver.url("/machine?fixed=1"), "method": "GET",
            "headers": {"Org-Id": "{{labels.org_id}}", "Location-Id": "{{labels.location_id}}", "Part-Id": "{{device_id}}",
                        "Robot-Id": "{{labels.robot_id}}", "Machine-Name": "{{labels.machine_name}}"},
            "query": {"part": "{{device_id}}", "event": "{{type}}", "state": "{{payload.state}}", "missing": "{{payload.nope}}"}
        }),
    )
    .await;
    let labels = json!({"org_id": "org-1", "location_id": "loc-3", "robot_id": "rb-9", "machine_name": "arm & co"});
    app.send(
        &ws,
        "events",
        json!({"type": "machine.online", "device_id": "part-7", "labels": labels, "payload": {"state": "up/ok"}}),
    )
    .await;
    app.dispatch_until_received(&receiver, 1).await;
    let request = &receiver.requests()[0];
    assert_eq!(
        request.path,
        "/machine?fixed=1&event=machine.online&missing=&part=part-7&state=up%2Fok"
    );
    for (header, value) in [
        ("org-id", "org-1"),
        ("location-id", "loc-3"),
        ("part-id", "part-7"),
        ("robot-id", "rb-9"),
        ("machine-name", "arm & co"),
    ] {
        assert_eq!(request.header(header), Some(value), "{header}");
    }

    for (field, body) in [
        ("query.part", json!({"query": {"part": "{{device_id"}})),
        ("headers.X-Part", json!({"headers": {"X-Part": "{{ $device }}"}})),
        ("query.", json!({"query": {"": "x"}})),
    ] {
        let mut webhook = json!({"name": "bad", "kind": "event", "url": receiver.url("/"), "method": "GET"});
        webhook
            .as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let (status, error) = app.post(&format!("/v1/workspaces/{ws}/webhooks"), webhook).await;
        assert_eq!(
            (status, error["error"]["field"].as_str()),
            (reqwest::StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_get_webhook_gets_one_request_per_record_and_cannot_be_made_to_batch() {
    let app = TestApp::spawn().await;
    let (receiver, ws, webhook) = app.with_receiver(Reply::Status(200), json!({ "method": "GET" })).await;
    assert_eq!(webhook["format"], "single");
    let devices = ["a", "b", "c"];
    app.send(&ws, "data", json!(devices.map(|d| data_point(d, "t")))).await;
    app.dispatch_until_received(&receiver, 3).await;
    let mut seen: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    seen.dedup();
    assert_eq!(seen.len(), 3, "every record has its own request");

    let id = webhook["id"].as_str().unwrap();
    let path = format!("/v1/workspaces/{ws}/webhooks/{id}");
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            &path,
            &app.admin,
            Some(json!({ "format": "batch" })),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "format", "{body}");
    let (status, body) = app
        .post(
            &format!("/v1/workspaces/{ws}/webhooks"),
            json!({ "name": "g", "kind": "data", "url": receiver.url("/"), "method": "GET", "format": "batch" }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "format", "{body}");
}

#[tokio::test]
async fn during_a_rotation_both_secrets_sign_until_the_grace_period_ends_then_only_the_new_one() {
    let grace = Duration::from_secs(3600);
    let app = TestApp::spawn_with(|s| s.delivery.secret_rotation_grace = grace).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    let webhook = app
        .webhook(&ws, json!({ "name": "r", "kind": "data", "url": receiver.url("/") }))
        .await;
    let old_secret = webhook["secret"].as_str().unwrap().to_owned();
    let path = format!(
        "/v1/workspaces/{ws}/webhooks/{}/secret",
        webhook["id"].as_str().unwrap()
    );
    let (status, rotated) = app.post(&format!("{path}/rotate"), json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    assert_eq!(app.get(&path).await.1["secret"], new_secret.as_str());

    // Sends one record now and returns the request it made.
    let deliver = async || {
        app.send(&ws, "data", json!(data_point("d", "t"))).await;
        app.dispatch_until_idle().await;
        receiver.requests().pop().unwrap()
    };
    // Checked at the request's own (manual) time: the signature, not the clock, is the point.
    let verifies = |request: &crate::receiver::Received, secret: &str| {
        let header = |name: &str| request.header(name).unwrap();
        let at: i64 = header("webhook-timestamp").parse().unwrap();
        let (id, timestamp, signature) = (
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
        );
        hookd_core::signature::verify(secret, id, timestamp, signature, &request.body, at, 0).is_ok()
    };

    // Just before the grace period ends, both secrets sign.
    app.advance(grace - Duration::from_secs(1));
    let before = deliver().await;
    assert_eq!(before.header("webhook-signature").unwrap().split(' ').count(), 2);
    assert!(verifies(&before, &old_secret), "the old secret still signs");
    assert!(verifies(&before, &new_secret));

    // Just after, only the new one does.
    app.advance(Duration::from_secs(2));
    let after = deliver().await;
    assert_eq!(after.header("webhook-signature").unwrap().split(' ').count(), 1);
    assert!(verifies(&after, &new_secret), "the new secret signs");
    assert!(!verifies(&after, &old_secret), "the old secret no longer does");
    assert_eq!(
        app.get(&path).await.1["previous"],
        json!([]),
        "the expired secret is no longer listed"
    );
}

#[tokio::test]
async fn a_delivery_shows_the_body_it_sends_and_its_records_read_back_as_stored() {
    let app = TestApp::spawn().await;
    let (receiver, ws, _) = app.with_receiver(Reply::Status(200), json!({})).await;
    let ids = app
        .send(&ws, "data", json!([data_point("dev-1", "t"), data_point("dev-2", "t")]))
        .await;
    app.dispatch_until_idle().await;
    let sent = receiver.requests()[0].json();
    let dlv = sent["batch_id"].as_str().unwrap();
    let delivery = app.delivery(&ws, dlv).await;
    assert_eq!(delivery["request_body"], sent, "the body shown is the body sent");

    let record = app.api.get_record(&ws, &ids[1]).await.unwrap();
    assert_eq!(
        record, sent["result"][1],
        "the record as stored is the record delivered"
    );
    let (other, other_key) = app.workspace().await;
    let (status, _) = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/workspaces/{other}/records/{}", ids[1]),
            &other_key,
            None,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "another workspace's record");

    // A GET webhook sends no body, and says so.
    let (get_receiver, ws, _) = app.with_receiver(Reply::Status(200), json!({ "method": "GET" })).await;
    app.send(&ws, "data", data_point("dev-3", "t")).await;
    app.dispatch_until_idle().await;
    let dlv = get_receiver.requests()[0].header("webhook-id").unwrap().to_owned();
    let delivery = app.delivery(&ws, &dlv).await;
    assert_eq!(delivery["request_body"], serde_json::Value::Null);
    assert_eq!(delivery["request_body_note"], "GET webhooks send no body");
}

#[tokio::test]
async fn after_a_retry_or_a_replay_the_summary_says_the_delivery_is_due_again() {
    let app = TestApp::spawn().await;
    let (receiver, ws, webhook) = app
        .with_receiver(Reply::Status(503), json!({ "retry_schedule": ["1s"] }))
        .await;
    let wh = webhook["id"].as_str().unwrap();
    app.send(&ws, "data", data_point("d", "t")).await;
    app.dispatch_until_idle().await;
    app.advance(Duration::from_secs(2));
    app.dispatch_until_idle().await;
    let dlv = app.deliveries(&ws).await[0]["id"].as_str().unwrap().to_owned();
    let dead = app.delivery(&ws, &dlv).await;
    assert_eq!(dead["state"], "dead");
    assert!(
        dead["last_explanation"].as_str().unwrap().contains("no retries left"),
        "{dead}"
    );

    let retried = app.api.retry_delivery(&ws, &dlv).await.unwrap();
    let summary = retried.last_explanation.unwrap();
    assert!(summary.starts_with("retried by hand at "), "{summary}");
    assert!(!summary.contains("no retries left") && !summary.contains("retrying in"));
    assert_eq!(app.delivery(&ws, &dlv).await["last_explanation"], summary.as_str());

    // It fails again: the summary is the new attempt's, on a fresh schedule.
    app.dispatch_until_idle().await;
    let again = app.delivery(&ws, &dlv).await;
    let summary = again["last_explanation"].as_str().unwrap();
    assert!(
        summary.contains("retrying in ") && summary.ends_with("(attempt 2 of 2)"),
        "{summary}"
    );
    app.advance(Duration::from_secs(2));
    app.dispatch_until_idle().await;
    assert_eq!(app.delivery(&ws, &dlv).await["state"], "dead");

    let dry = hookd::model::ReplayIn {
        since: "2000-01-01T00:00:00Z".into(),
        until: None,
        states: None,
        dry_run: Some(true),
    };
    let counted = app.api.replay(&ws, wh, &dry).await.unwrap();
    assert_eq!((counted.replayed, counted.dry_run), (1, true), "a dry run counts");
    assert_eq!(app.delivery(&ws, &dlv).await["state"], "dead", "and changes nothing");
    let replay = hookd::model::ReplayIn { dry_run: None, ..dry };
    assert_eq!(app.api.replay(&ws, wh, &replay).await.unwrap().replayed, 1);
    let replayed = app.delivery(&ws, &dlv).await;
    let summary = replayed["last_explanation"].as_str().unwrap();
    assert_eq!(replayed["state"], "pending");
    assert!(summary.starts_with("replayed at "), "{summary}");
    assert_eq!(receiver.requests().len(), 4);
}

#[tokio::test]
async fn a_record_arrives_as_the_producer_wrote_it_without_its_whitespace() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(204)).await;
    let (ws, _) = app.workspace().await;
    app.webhook(&ws, json!({ "name": "w", "kind": "event", "url": receiver.url("/") }))
        .await;
    // Pretty-printed, as a script's `json.dumps(indent=2)` sends it, with a number and an
    // escape a parser would write differently; then a record with an `id` of its own.
    let sent = "[\n  {\n    \"type\": \"reading\",\n    \"payload\": {\"n\": 1.50, \"s\": \"caf\\u00e9 \\\"x\\\"\", \"e\": [ ]}\n  },\n  {\"type\": \"other\", \"id\": \"mine\", \"payload\": 1}\n]";
    let response = app.ingest_text(&ws, "events", "application/json", sent).await;
    assert_eq!(response.status(), 202);
    let ids: serde_json::Value = response.json().await.unwrap();

    app.dispatch_until_received(&receiver, 1).await;
    let body = String::from_utf8(receiver.requests()[0].body.to_vec()).unwrap();
    for id in ids["ids"].as_array().unwrap() {
        let stamped = format!(r#"{{"id":{id},"workspace_id":"{ws}","timestamp_in":"#);
        assert!(body.contains(&stamped), "{body}");
    }
    assert!(
        body.contains(r#""type":"reading","payload":{"n":1.50,"s":"caf\u00e9 \"x\"","e":[]}}"#),
        "the producer's text, whitespace outside strings dropped: {body}"
    );
    assert!(
        body.contains(r#""type":"other","payload":1}"#) && !body.contains("mine"),
        "hookd's id replaces the producer's: {body}"
    );
}
