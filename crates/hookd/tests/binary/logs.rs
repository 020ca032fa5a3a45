//! What `hookd serve` logs, in text and JSON, and what it never logs.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{self, start as start_with};
use crate::ok_receiver;

#[tokio::test]
async fn secrets_tokens_and_keys_never_appear_in_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hookd.log");
    let admin = "hk_admin_secret_logging_key_0123";
    let server = common::start_logging(
        dir.path(),
        &[
            ("HOOKD_ADMIN_KEY", admin),
            ("HOOKD_LOG__LEVEL", "trace"),
            ("HOOKD_DELIVERY__ALLOW_NETWORKS", "127.0.0.1/32"),
            ("HOOKD_DELIVERY__RESTRICT_TO_NETWORKS", "127.0.0.1/32"),
        ],
        &log,
    );
    let client = hookd::client::Client::new(&server.url, admin);
    let ws = client.create_workspace("load").await.unwrap().id;
    let key = client.create_api_key(&ws).await.unwrap().key;
    let token = "tok-very-secret-0123456789";
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let hook = serde_json::json!({ "name": "w", "kind": "data", "url": ok_receiver().await, "token": token, "secret": secret });
    let webhook = hookd::client::Client::new(&server.url, &key)
        .create_webhook(&ws, &hook)
        .await
        .unwrap();
    client
        .send_data(
            &ws,
            &serde_json::json!({ "device_id": "d", "tag": "t", "payload": 1 }),
            None,
        )
        .await
        .unwrap();
    let rotated = client.rotate_secret(&ws, &webhook.webhook.id, None).await.unwrap();
    client.test_webhook(&ws, &webhook.webhook.id).await.unwrap();
    // A rejected key and a bad body are logged as failures, without their contents.
    assert!(
        hookd::client::Client::new(&server.url, "hk_wrong_key_abcdef")
            .list_workspaces()
            .await
            .is_err()
    );
    assert!(server.terminate().success());

    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.len() > 1000, "trace logging produced output");
    for needle in [
        admin,
        key.as_str(),
        token,
        secret,
        rotated.secret.as_str(),
        "hk_wrong_key_abcdef",
    ] {
        assert!(!logs.contains(needle), "the logs contain a secret: {needle}");
    }
}

#[tokio::test]
async fn new_records_are_handed_to_the_dispatcher_at_once_and_logged_like_any_delivery() {
    use hookd::client::{Client, DeliveryFilter};
    const KEY: &str = "hk_admin_handoff_test_key_0123456";
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(
        dir.path(),
        &[
            ("HOOKD_ADMIN_KEY", KEY),
            ("HOOKD_DELIVERY__ALLOW_NETWORKS", "127.0.0.1/32"),
        ],
    );
    let client = Client::new(&server.url, KEY);
    let ws = client.create_workspace("handoff").await.unwrap().id;
    let (hook_url, seen) = common::receiver(Duration::ZERO).await;
    let hook = serde_json::json!({ "name": "sink", "kind": "data", "url": hook_url });
    client.create_webhook(&ws, &hook).await.unwrap();
    let mut acked = std::collections::HashSet::new();
    for n in 0..20 {
        let record = serde_json::json!({ "device_id": "d1", "tag": "t", "payload": { "n": n } });
        acked.extend(client.send_data(&ws, &record, None).await.unwrap().ids);
    }
    assert_eq!(common::missing_after(&acked, &seen, Duration::from_secs(30)).await, 0);
    assert_eq!(seen.lock().unwrap().duplicates(), 0);

    let metrics = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let handed: f64 = metrics
        .lines()
        .find(|l| l.starts_with("hookd_deliveries_handed_over_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        handed >= 15.0,
        "an idle dispatcher takes new deliveries at once: {handed} of 20"
    );
    // Each is logged like any delivery: delivered, after one attempt. (Results are written
    // just after the receiver answers, so poll briefly.)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = client.list_deliveries(&ws, &DeliveryFilter::default()).await.unwrap();
        let done = page
            .data
            .iter()
            .filter(|d| d.state == hookd::model::DeliveryState::Delivered && d.attempt_count == 1)
            .count();
        if done == 20 {
            break;
        }
        assert!(Instant::now() < deadline, "{done} of 20 logged as delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.terminate().success());
}

/// A receiver on loopback that always answers 503; returns its URL.
async fn failing_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy") });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Starts hookd logging to a file with `env`, makes a workspace, a webhook to a failing
/// receiver, sends one record and waits for its failed attempt; returns the log.
async fn logs_of_a_failed_delivery(env: &[(&str, &str)]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hookd.log");
    let admin = "hk_admin_access_logging_key_0123";
    let mut all = vec![
        ("HOOKD_ADMIN_KEY", admin),
        ("HOOKD_DELIVERY__ALLOW_NETWORKS", "127.0.0.1/32"),
        ("HOOKD_DELIVERY__RESTRICT_TO_NETWORKS", "127.0.0.1/32"),
    ];
    all.extend_from_slice(env);
    let server = common::start_logging(dir.path(), &all, &log);
    let client = hookd::client::Client::new(&server.url, admin);
    let ws = client.create_workspace("logs").await.unwrap().id;
    let hook = serde_json::json!({ "name": "w", "kind": "data", "url": failing_receiver().await });
    client.create_webhook(&ws, &hook).await.unwrap();
    let record = serde_json::json!({ "device_id": "d", "tag": "t", "payload": 1 });
    client.send_data(&ws, &record, None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = client.list_deliveries(&ws, &Default::default()).await.unwrap();
        if page.data.first().is_some_and(|d| d.attempt_count > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "no attempt within 10s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.health().await.unwrap();
    assert!(server.terminate().success());
    (std::fs::read_to_string(&log).unwrap(), ws)
}

#[tokio::test]
async fn serve_logs_each_api_request_and_each_failed_attempt_without_colours() {
    let (logs, ws) = logs_of_a_failed_delivery(&[]).await;
    assert!(
        !logs.contains('\u{1b}'),
        "no ANSI colours when stderr is a file:\n{logs}"
    );
    let ingest = logs
        .lines()
        .find(|l| l.contains("route=/v1/workspaces/{ws}/data"))
        .unwrap_or_else(|| panic!("no line for the ingest request:\n{logs}"));
    for part in [
        "INFO",
        "request",
        "method=POST",
        "status=202",
        "ms=",
        &format!("workspace={ws}"),
    ] {
        assert!(ingest.contains(part), "no `{part}` in `{ingest}`");
    }
    let attempt = logs
        .lines()
        .find(|l| l.contains("attempt failed"))
        .unwrap_or_else(|| panic!("no line for the failed attempt:\n{logs}"));
    for part in [
        "delivery=dlv_",
        "webhook=wh_",
        "outcome=pending",
        "status=503",
        "retrying in",
    ] {
        assert!(attempt.contains(part), "no `{part}` in `{attempt}`");
    }
    assert!(!logs.contains("route=/healthz"), "probes are not logged at info");
}

#[tokio::test]
async fn serve_logs_json_lines_with_log_format_json() {
    let (logs, _) = logs_of_a_failed_delivery(&[("HOOKD_LOG__FORMAT", "json")]).await;
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "request" && l["status"] == 202),
        "{logs}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "attempt failed" && l["status"] == 503)
    );
    let attempt = lines.iter().find(|l| l["message"] == "attempt failed").unwrap();
    let span = &attempt["span"];
    assert_eq!(span["name"], "attempt", "{attempt}");
    for (field, prefix) in [("delivery_id", "dlv_"), ("webhook_id", "wh_"), ("workspace_id", "ws_")] {
        assert!(
            span[field].as_str().is_some_and(|v| v.starts_with(prefix)),
            "the attempt's span names its {field}: {attempt}"
        );
    }
}

#[test]
fn serve_takes_log_format_as_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["serve", "--log-format", "yaml", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("[possible values: text, json]"));
}
