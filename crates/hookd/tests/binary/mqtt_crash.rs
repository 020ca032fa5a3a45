//! The MQTT door's promise across a crash: a message the broker delivered is acknowledged only
//! once its record is committed, so hookd killed in between gets it again when it restarts.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common;
use crate::mqtt::{BROKER, broker_up, prefix, publish, publisher};

const KEY: &str = "hk_admin_mqtt_crash_test_key_0123";

async fn metric(url: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "{what} did not happen within 30s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_message_received_but_not_committed_when_hookd_is_killed_is_redelivered_after_a_restart() {
    if !broker_up("a_message_received_but_not_committed_when_hookd_is_killed_is_redelivered_after_a_restart") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (hook_url, seen) = common::receiver(Duration::ZERO).await;
    let plain = [
        ("HOOKD_ADMIN_KEY", KEY),
        ("HOOKD_DELIVERY__ALLOW_NETWORKS", "127.0.0.1/32"),
    ];
    let first = common::start(dir.path(), &plain);
    let client = hookd::client::Client::new(&first.url, KEY);
    let ws = client.create_workspace("plant").await.unwrap().id;
    let hook = json!({ "name": "w", "kind": "data", "url": hook_url, "format": "single" });
    client.create_webhook(&ws, &hook).await.unwrap();
    assert!(first.terminate().success());

    let topics = prefix();
    let (filter, client_id) = (format!("[{topics}/#]"), hookd_core::id::new_id("hookd-crash"));
    let mut env = plain.to_vec();
    env.extend([
        ("HOOKD_MQTT__URL", BROKER),
        ("HOOKD_MQTT__TOPICS", filter.as_str()),
        ("HOOKD_MQTT__TOPIC_PATTERN", "hookd-test/{asset_id}/{device_id}/{tag}"),
        ("HOOKD_MQTT__WORKSPACE", ws.as_str()),
        ("HOOKD_MQTT__CLIENT_ID", client_id.as_str()),
    ]);
    let running = common::start(dir.path(), &env);
    until("connecting", async || {
        metric(&running.url, "hookd_mqtt_connected").await == 1.0
    })
    .await;

    // Another writer holds the database: hookd takes the message but cannot commit it.
    let mut lock = rusqlite::Connection::open(dir.path().join("hookd.db")).unwrap();
    let held = lock
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .unwrap();
    let publishing = publisher().await;
    publish(&publishing, &format!("{topics}/dev-1/relay"), br#"{"value": 1}"#).await;
    until("receiving", async || {
        metric(&running.url, "hookd_mqtt_messages_total{outcome=\"received\"}").await == 1.0
    })
    .await;
    assert_eq!(
        metric(&running.url, "hookd_mqtt_messages_total{outcome=\"committed\"}").await,
        0.0
    );
    running.kill();
    held.rollback().unwrap();
    drop(lock);
    assert!(seen.lock().unwrap().records.is_empty(), "nothing was committed");

    let restarted = common::start(dir.path(), &env);
    until("the redelivered message's delivery", async || {
        !seen.lock().unwrap().records.is_empty()
    })
    .await;
    assert_eq!(
        metric(&restarted.url, "hookd_mqtt_messages_total{outcome=\"committed\"}").await,
        1.0,
        "the broker sent it again, and it was committed"
    );
    assert!(restarted.terminate().success());
}
