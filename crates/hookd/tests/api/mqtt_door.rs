//! The MQTT door against the real broker: messages published by a real client become
//! records, delivered like any other, their topic's segments as fields.

use std::time::Duration;

use hookd::Dispatch;
use serde_json::json;

use crate::helpers::{TestApp, sample, scrape};
use crate::mqtt::{BROKER, broker_up, prefix, publish, publisher};
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn published_messages_become_records_with_their_topic_fields_and_are_delivered() {
    if !broker_up("published_messages_become_records_with_their_topic_fields_and_are_delivered") {
        return;
    }
    let (receiver, dir, ws) = workspace_with_receiver().await;

    let topics = prefix();
    let (workspace, bare, filter, pattern) = (
        ws.clone(),
        format!("{topics}-bare/#"),
        format!("{topics}/fleets/+/devices/+/+"),
        format!("{topics}/fleets/{{fleet_id}}/devices/{{device_id}}/{{tag}}"),
    );
    let app = TestApp::spawn_in(
        dir,
        move |s| {
            s.mqtt.url = Some(BROKER.into());
            s.mqtt.topics = vec![filter, bare];
            s.mqtt.topic_pattern = Some(pattern);
            s.mqtt.workspace = Some(workspace);
            s.mqtt.client_id = Some(hookd_core::id::new_id("hookd-test"));
        },
        Dispatch::Manual,
    )
    .await;
    wait_ready(&app).await;
    let client = publisher().await;
    publish(
        &client,
        &format!("{topics}/fleets/flt-1/devices/dev-7/temperature"),
        br#"{"celsius": 21.5}"#,
    )
    .await;
    publish(&client, &format!("{topics}/fleets/flt-1/devices/dev-7/relay"), b"ON").await;
    // No device in the topic: not a data point.
    publish(&client, &format!("{topics}-bare/x"), b"1").await;
    app.dispatch_until_received(&receiver, 2).await;
    let mut bodies: Vec<serde_json::Value> = receiver.requests().iter().map(|r| r.json()).collect();
    bodies.sort_by_key(|b| b["tag"].as_str().unwrap().to_owned());
    assert_eq!(
        (&bodies[0]["tag"], &bodies[0]["payload"], &bodies[0]["device_id"]),
        (&json!("relay"), &json!("ON"), &json!("dev-7")),
        "not JSON: a string"
    );
    assert_eq!(
        (&bodies[1]["tag"], &bodies[1]["payload"], &bodies[1]["fleet_id"]),
        (&json!("temperature"), &json!({"celsius": 21.5}), &json!("flt-1"))
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = scrape(&app).await;
        let counted = (
            sample(&metrics, "hookd_mqtt_messages_total{outcome=\"committed\"}"),
            sample(&metrics, "hookd_mqtt_messages_total{outcome=\"invalid\"}"),
            sample(&metrics, "hookd_mqtt_connected"),
        );
        if counted == (2.0, 1.0, 1.0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "metrics say {counted:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

/// A data directory holding a workspace with a `single` data webhook to a new receiver (the
/// app that made them stopped, so the next one can start with `[mqtt]` naming the workspace).
async fn workspace_with_receiver() -> (Receiver, std::sync::Arc<tempfile::TempDir>, String) {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let first = TestApp::spawn().await;
    let (ws, _) = first.workspace().await;
    first
        .webhook(
            &ws,
            json!({ "name": "w", "kind": "data", "url": receiver.url("/"), "format": "single" }),
        )
        .await;
    let dir = first.dir.clone();
    first.stop().await;
    (receiver, dir, ws)
}

/// Polls `/readyz` until the MQTT door is connected.
async fn wait_ready(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, health) = app.get("/readyz").await;
        if health["status"] == "ready" {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "not connected: {health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Mosquitto of the test's own: a plain listener and a TLS one with a certificate from a CA
/// made for the test. Stopped when dropped.
struct TlsBroker {
    child: std::process::Child,
    plain: u16,
    tls: u16,
    ca_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn tls_broker() -> Option<TlsBroker> {
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::tls::Ca::new("broker");
    let (cert, key) = ca.issue(&["localhost"], (-1, 30));
    let path = |name: &str| dir.path().join(name);
    for (name, pem) in [("ca.pem", &ca.pem), ("server.pem", &cert), ("server-key.pem", &key)] {
        std::fs::write(path(name), pem).unwrap();
    }
    let (plain, tls) = (free_port(), free_port());
    let config = format!(
        "user root\npersistence false\nallow_anonymous true\nlistener {plain} 127.0.0.1\nlistener {tls} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
        path("server.pem").display(),
        path("server-key.pem").display()
    );
    std::fs::write(path("mosquitto.conf"), config).unwrap();
    let child = match std::process::Command::new("mosquitto")
        .arg("-c")
        .arg(path("mosquitto.conf"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            assert!(
                std::env::var("HOOKD_TEST_REQUIRE_MQTT").as_deref() != Ok("1"),
                "HOOKD_TEST_REQUIRE_MQTT=1 but mosquitto cannot be started: {err}"
            );
            eprintln!("SKIPPED the TLS broker test: mosquitto cannot be started ({err})");
            return None;
        }
    };
    let broker = TlsBroker {
        child,
        plain,
        tls,
        ca_file: path("ca.pem"),
        _dir: dir,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", tls)).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the test's mosquitto did not listen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Some(broker)
}

#[tokio::test]
async fn an_mqtts_broker_with_a_private_ca_is_trusted_through_ca_file() {
    if !broker_up("an_mqtts_broker_with_a_private_ca_is_trusted_through_ca_file") {
        return;
    }
    let Some(broker) = tls_broker().await else { return };
    let (receiver, dir, ws) = workspace_with_receiver().await;
    let url = format!("mqtts://localhost:{}", broker.tls);

    // Without the CA the broker's certificate is refused, and /readyz says why.
    let untrusting = TestApp::spawn_in(
        dir.clone(),
        {
            let (url, workspace) = (url.clone(), ws.clone());
            move |s| {
                s.mqtt.url = Some(url);
                s.mqtt.topics = vec!["plant/#".into()];
                s.mqtt.workspace = Some(workspace);
                s.mqtt.client_id = Some(hookd_core::id::new_id("hookd-untrusting"));
            }
        },
        Dispatch::Manual,
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, health) = untrusting.get("/readyz").await;
        let reason = health["reason"].as_str().unwrap_or_default().to_owned();
        if health["status"] == "degraded" && reason.contains("certificate") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    untrusting.stop().await;

    let (workspace, ca_file) = (ws.clone(), broker.ca_file.clone());
    let app = TestApp::spawn_in(
        dir,
        move |s| {
            s.mqtt.url = Some(url);
            s.mqtt.topics = vec!["plant/#".into()];
            s.mqtt.topic_pattern = Some("plant/{device_id}/{tag}".into());
            s.mqtt.workspace = Some(workspace);
            s.mqtt.client_id = Some(hookd_core::id::new_id("hookd-tls"));
            s.mqtt.ca_file = Some(ca_file);
        },
        Dispatch::Manual,
    )
    .await;
    wait_ready(&app).await;
    let client = crate::mqtt::publisher_on(broker.plain).await;
    publish(&client, "plant/press-4/pressure", b"7.5").await;
    app.dispatch_until_received(&receiver, 1).await;
    let body = receiver.requests()[0].json();
    assert_eq!((&body["device_id"], &body["payload"]), (&json!("press-4"), &json!(7.5)));
    app.stop().await;
}
