//! The fleet behaviours against a real server and real receivers: batch windows, debounce
//! and per-device ordering. The clock is manual and the dispatcher stepped, so "inside the
//! interval" and "after the window" are exact.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::receiver::{Received, Receiver, Reply};

/// A data point of `device` with a sequence number and the device's own time (ms).
fn reading(device: &str, seq: u64, device_ms: u64) -> Value {
    let at = hookd_core::timefmt::rfc3339(1_764_000_000_000 + device_ms as i64);
    json!({ "device_id": device, "tag": "relay", "timestamp_device": at, "payload": { "seq": seq } })
}

/// The records a request carried (one for `single`, the batch's for `batch`).
fn records(request: &Received) -> Vec<Value> {
    let body = request.json();
    match body.get("result") {
        Some(batch) => batch.as_array().cloned().unwrap(),
        None => vec![body],
    }
}

fn seqs(requests: &[Received]) -> Vec<u64> {
    requests
        .iter()
        .flat_map(records)
        .map(|r| r["payload"]["seq"].as_u64().unwrap())
        .collect()
}

fn device_of(request: &Received) -> String {
    records(request)[0]["device_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_batch_window_gathers_records_of_separate_requests_and_a_full_batch_goes_at_once() {
    let app = TestApp::spawn().await;
    let (receiver, ws, _) = app
        .with_receiver(
            Reply::Status(200),
            json!({ "format": "batch", "batch_max": 3, "batch_window": "2s" }),
        )
        .await;
    app.send(&ws, "data", reading("dev-1", 1, 0)).await;
    app.send(&ws, "data", reading("dev-2", 2, 0)).await;
    app.dispatch_until_idle().await;
    assert!(receiver.requests().is_empty(), "the window is open");
    app.advance(Duration::from_secs(2));
    app.dispatch_until_received(&receiver, 1).await;
    assert_eq!(seqs(&receiver.requests()), [1, 2], "one batch from two requests");

    for seq in 3..=5 {
        app.send(&ws, "data", reading("dev-1", seq, 0)).await;
    }
    app.dispatch_until_received(&receiver, 2).await;
    let requests = receiver.requests();
    assert_eq!(
        seqs(&requests[1..]),
        [3, 4, 5],
        "full at batch_max: sent before the window ends"
    );
}

#[tokio::test]
async fn a_flapping_relay_yields_one_delivery_per_interval_carrying_its_latest_state() {
    let app = TestApp::spawn().await;
    let (receiver, ws, _) = app
        .with_receiver(Reply::Status(200), json!({ "format": "single", "min_interval": "1s" }))
        .await;
    app.send(&ws, "data", reading("relay-7", 0, 0)).await;
    app.dispatch_until_received(&receiver, 1).await;
    // Fifty state changes inside one second, each its own request, one arriving out of order.
    for seq in 1..=50 {
        let device_ms = if seq == 25 { 1 } else { seq * 20 };
        app.send(&ws, "data", reading("relay-7", seq, device_ms)).await;
    }
    app.send(&ws, "data", reading("relay-8", 100, 0)).await;
    app.dispatch_until_received(&receiver, 2).await;
    app.dispatch_until_idle().await;
    let requests = receiver.requests();
    assert_eq!(
        requests.len(),
        2,
        "relay-7 waits for its interval; relay-8 goes at once"
    );
    assert_eq!(device_of(&requests[1]), "relay-8");

    app.advance(Duration::from_secs(1));
    app.dispatch_until_received(&receiver, 3).await;
    app.dispatch_until_idle().await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "one delivery for the interval");
    assert_eq!(seqs(&requests[2..]), [50], "the newest state by the device's time");
    assert_eq!(requests[2].header("hookd-coalesced"), Some("50"));
    assert_eq!(requests[2].header("hookd-superseded"), Some("49"));
    let id = requests[2].header("webhook-id").unwrap();
    let delivery = app.delivery(&ws, id).await;
    assert_eq!(
        (delivery["coalesced"].as_u64(), delivery["superseded"].as_u64()),
        (Some(50), Some(49))
    );
    assert_eq!(delivery["record_ids"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn coalesce_all_sends_an_intervals_records_as_one_batch() {
    let app = TestApp::spawn().await;
    let (receiver, ws, _) = app
        .with_receiver(
            Reply::Status(200),
            json!({ "format": "batch", "min_interval": "1s", "coalesce": "all" }),
        )
        .await;
    app.send(&ws, "data", reading("dev-1", 0, 0)).await;
    app.dispatch_until_received(&receiver, 1).await;
    for seq in 1..=4 {
        app.send(&ws, "data", reading("dev-1", seq, seq)).await;
    }
    app.dispatch_until_idle().await;
    assert_eq!(receiver.requests().len(), 1, "inside the interval");
    app.advance(Duration::from_secs(1));
    app.dispatch_until_received(&receiver, 2).await;
    assert_eq!(
        seqs(&receiver.requests()[1..]),
        [1, 2, 3, 4],
        "everything, in one batch"
    );
}

#[tokio::test]
async fn a_devices_records_sent_out_of_order_in_one_request_arrive_in_its_time_order() {
    let app = TestApp::spawn().await;
    let (receiver, ws, _) = app
        .with_receiver(Reply::Status(200), json!({ "format": "single", "ordering": "device" }))
        .await;
    let body = json!([
        reading("dev-1", 3, 300),
        reading("dev-2", 10, 0),
        reading("dev-1", 1, 100),
        reading("dev-1", 2, 200),
    ]);
    app.send(&ws, "data", body).await;
    app.dispatch_until_received(&receiver, 4).await;
    let dev_1: Vec<Received> = receiver
        .requests()
        .into_iter()
        .filter(|r| device_of(r) == "dev-1")
        .collect();
    assert_eq!(seqs(&dev_1), [1, 2, 3]);
    let delivery = &app.deliveries(&ws).await[0];
    assert!(delivery["ordering_key"].is_string(), "{delivery}");
}

#[tokio::test]
async fn a_slow_receiver_sees_one_delivery_per_device_at_a_time_and_devices_in_parallel() {
    let app = TestApp::spawn().await;
    let (receiver, ws, _) = app
        .with_receiver(
            Reply::Delay(Duration::from_millis(150), 200),
            json!({ "format": "single", "ordering": "device" }),
        )
        .await;
    let body: Vec<Value> = (0..3)
        .flat_map(|seq| ["dev-a", "dev-b", "dev-c"].map(|d| reading(d, seq, seq * 10)))
        .collect();
    app.send(&ws, "data", Value::Array(body)).await;
    app.dispatch_until_received(&receiver, 9).await;
    let (overall, per_device) = receiver.most_in_flight(device_of);
    assert_eq!(per_device, 1, "never two of one device at once");
    assert!(overall >= 2, "devices proceed in parallel (at most {overall} at once)");
    for device in ["dev-a", "dev-b", "dev-c"] {
        let mine: Vec<Received> = receiver
            .requests()
            .into_iter()
            .filter(|r| device_of(r) == device)
            .collect();
        assert_eq!(seqs(&mine), [0, 1, 2], "{device}");
    }
}

#[tokio::test]
async fn a_retried_delivery_holds_back_its_device_and_a_dead_one_releases_it() {
    let app = TestApp::spawn().await;
    // dev-1's first record fails twice (dead after its one retry); dev-2's goes through between.
    let script = [Reply::Status(500), Reply::Status(200), Reply::Status(500)];
    let receiver = Receiver::start_scripted(Reply::Status(200), script).await;
    let (ws, _) = app
        .workspace_with_webhook(
            &receiver.url("/"),
            json!({ "format": "single", "ordering": "device", "retry_schedule": ["1s"] }),
        )
        .await;
    let events = Receiver::start(Reply::Status(200)).await;
    app.webhook(
        &ws,
        json!({ "name": "ops", "kind": "event", "url": events.url("/"),
                "filters": { "event_types": ["delivery.order_broken"] } }),
    )
    .await;
    app.send(&ws, "data", json!([reading("dev-1", 1, 1), reading("dev-1", 2, 2)]))
        .await;
    app.dispatch_until_received(&receiver, 1).await;
    app.dispatch_until_idle().await;
    assert_eq!(
        receiver.requests().len(),
        1,
        "the second waits while the first is retried"
    );
    app.send(&ws, "data", reading("dev-2", 9, 0)).await;
    app.dispatch_until_received(&receiver, 2).await;
    assert_eq!(seqs(&receiver.requests()[1..]), [9], "another device is not held");

    app.advance(Duration::from_secs(2)); // the 1s step, with its jitter
    app.dispatch_until_received(&receiver, 4).await;
    let requests = receiver.requests();
    assert_eq!(
        seqs(&requests[2..]),
        [1, 2],
        "the retry (dead after it), then the next one"
    );
    let dead_id = requests[2].header("webhook-id").unwrap();
    let dead = app.delivery(&ws, dead_id).await;
    assert_eq!(dead["state"], "dead");
    assert_eq!(dead["order_broken"], true, "{dead}");
    app.dispatch_until_received(&events, 1).await;
    let event = records(&events.requests()[0]).remove(0);
    assert_eq!(event["type"], "delivery.order_broken");
    assert_eq!(event["payload"]["device_id"], "dev-1");
    assert_eq!(event["payload"]["delivery_id"], dead_id);
}

#[tokio::test]
async fn contradictory_fleet_fields_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let url = "http://127.0.0.1:9/";
    for (extra, field) in [
        (json!({ "format": "single", "batch_window": "2s" }), "batch_window"),
        (json!({ "batch_window": "2s", "min_interval": "1s" }), "batch_window"),
        (
            json!({ "format": "single", "min_interval": "1s", "coalesce": "all" }),
            "coalesce",
        ),
        (json!({ "ordering": "fleet" }), "ordering"),
        (json!({ "min_interval": "often" }), "min_interval"),
    ] {
        let mut body = json!({ "name": "w", "kind": "data", "url": url });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, error) = app.post(&format!("/v1/workspaces/{ws}/webhooks"), body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error["error"]["field"], field, "{body}: {error}");
    }
    let made = app
        .webhook(
            &ws,
            json!({ "name": "w", "kind": "data", "url": url, "min_interval": "5s", "ordering": "device" }),
        )
        .await;
    assert_eq!(
        (made["min_interval"].as_str(), made["ordering"].as_str()),
        (Some("5s"), Some("device"))
    );
    assert_eq!(
        (made["coalesce"].as_str(), made["batch_window"].as_str()),
        (Some("latest"), Some("0s"))
    );
}
