//! The MQTT broker the tests publish to: Mosquitto on 127.0.0.1:1883, as on the project's
//! machines. Without it the MQTT tests are skipped with one line, unless
//! `HOOKD_TEST_REQUIRE_MQTT=1` (as in CI), when they fail.

#![allow(unreachable_pub)] // shared by test binaries

use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, MqttOptions};

pub const BROKER: &str = "mqtt://127.0.0.1:1883";

/// Whether the broker answers; says why a test is skipped when it does not.
pub fn broker_up(test: &str) -> bool {
    let up = std::net::TcpStream::connect_timeout(&"127.0.0.1:1883".parse().unwrap(), Duration::from_secs(1)).is_ok();
    if !up {
        assert!(
            std::env::var("HOOKD_TEST_REQUIRE_MQTT").as_deref() != Ok("1"),
            "HOOKD_TEST_REQUIRE_MQTT=1 but no MQTT broker answers on 127.0.0.1:1883"
        );
        eprintln!(
            "SKIPPED {test}: no MQTT broker on 127.0.0.1:1883 (start mosquitto; HOOKD_TEST_REQUIRE_MQTT=1 fails instead)"
        );
    }
    up
}

/// A topic prefix of this test's own, so tests running at once do not hear each other.
pub fn prefix() -> String {
    format!("hookd-test/{}", hookd_core::id::new_id("t"))
}

/// A publishing client, connected (its event loop runs in the background).
pub async fn publisher() -> AsyncClient {
    publisher_on(1883).await
}

/// A publishing client of the broker on 127.0.0.1:`port`.
pub async fn publisher_on(port: u16) -> AsyncClient {
    let mut options = MqttOptions::new(hookd_core::id::new_id("pub"), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    client
}

pub async fn publish(client: &AsyncClient, topic: &str, payload: &[u8]) {
    client
        .publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
        .await
        .expect("the publish is queued");
}
