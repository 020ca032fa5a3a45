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
async fn during_a_rotation_both_secrets_sign_until_the_grace_period_ends() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, _) = app.workspace().await;
    let webhook = app
        .webhook(&ws, json!({ "name": "r", "kind": "data", "url": receiver.url("/") }))
        .await;
    let path = format!(
        "/v1/workspaces/{ws}/webhooks/{}/secret",
        webhook["id"].as_str().unwrap()
    );
    let (status, rotated) = app.post(&format!("{path}/rotate"), json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, webhook["secret"].as_str().unwrap());
    assert_eq!(app.get(&path).await.1["secret"], new_secret);

    app.send(&ws, "data", json!(data_point("d", "t"))).await;
    app.dispatch_until_idle().await;
    let request = &receiver.requests()[0];
    assert_eq!(request.header("webhook-signature").unwrap().split(' ').count(), 2);
    for secret in [webhook["secret"].as_str().unwrap(), new_secret] {
        let verifier = standardwebhooks::Webhook::new(secret).unwrap();
        verifier
            .verify(&request.body, &request.headers)
            .expect("both secrets verify during the grace period");
    }

    app.advance(Duration::from_secs(25 * 3600)); // past the default 24h grace
    app.send(&ws, "data", json!(data_point("d", "t"))).await;
    app.dispatch_until_idle().await;
    let later = &receiver.requests()[1];
    assert_eq!(later.header("webhook-signature").unwrap().split(' ').count(), 1);
}
