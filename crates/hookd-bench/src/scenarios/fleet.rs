//! The fleet behaviours that are not `single` with a field more: `debounce` (deliveries
//! counted until quiet) and `mqtt` (through the broker).

use std::time::{Duration, Instant};

use serde_json::json;

use super::Gateway;
use crate::load::{self, Auth, Measured, drive, wait_delivered};
use crate::receiver::now_us;
use crate::{RunArgs, Scenario, process};

/// `debounce`: 100 devices flapping into a `single` webhook with `min_interval` 250ms: the
/// ingest rate, and the deliveries (one per device per interval, the latest state) until
/// nothing more arrives for twice the interval.
pub(super) async fn debounce(args: &RunArgs) -> anyhow::Result<Measured> {
    const INTERVAL: Duration = Duration::from_millis(250);
    let deadline = Instant::now() + args.deadline();
    let (_receiver, receiver_url) = process::start_receiver(0)?;
    let gateway = Gateway::start(Scenario::Debounce, args).await?;
    gateway
        .webhook(
            json!({ "name": "debounced", "kind": "data", "url": format!("{receiver_url}/hook"),
                         "format": "single", "min_interval": "250ms" }),
        )
        .await?;
    let mark = gateway.mark();
    let shape = load::Shape {
        devices: 100,
        ..args.shape()
    };
    let (latencies, load_seconds) =
        drive(&gateway.ingest_urls(), args.records, 1, shape, &Auth::Bearer, deadline).await?;
    let (stats, complete) = load::wait_quiet(&gateway.client, &receiver_url, INTERVAL * 2, deadline).await?;
    Ok(Measured {
        records: args.records as u64,
        ingest_requests: latencies.len() as u64,
        load_seconds,
        ingest_latencies_us: latencies,
        ..gateway.measured(&mark, stats, complete)
    })
}

/// `mqtt`: hookd restarted with its `[mqtt]` door on the new workspace; QoS 1 messages (a data
/// point's payload each, on `bench/<device>/d1`) from 4 publishers at `--steady-rate` in all
/// (a broker queues only so many messages for a subscriber that falls behind, Mosquitto 1,000
/// by default, and drops the rest: a closed loop would measure the broker's queue); every one
/// delivered.
pub(super) async fn mqtt(args: &RunArgs) -> anyhow::Result<Measured> {
    let deadline = Instant::now() + args.deadline();
    let (_receiver, receiver_url) = process::start_receiver(0)?;
    let mut gateway = Gateway::start(Scenario::Mqtt, args).await?;
    gateway
        .webhook(json!({ "name": "mqtt", "kind": "data", "url": format!("{receiver_url}/hook"), "format": "single" }))
        .await?;
    let (client_id, workspace) = (format!("hookd-bench-{}", std::process::id()), gateway.workspace.clone());
    let env = [
        ("HOOKD_MQTT__URL", args.mqtt_url.as_str()),
        ("HOOKD_MQTT__TOPICS", "[bench/#]"),
        ("HOOKD_MQTT__TOPIC_PATTERN", "bench/{device_id}/{tag}"),
        ("HOOKD_MQTT__WORKSPACE", workspace.as_str()),
        ("HOOKD_MQTT__CLIENT_ID", client_id.as_str()),
    ];
    gateway.restart(&env).await?;
    // A first message, delivered before the measured ones: the subscription is in place.
    loop {
        publish_mqtt(&args.mqtt_url, 1, args.steady_rate, args.record_bytes, deadline).await?;
        let (stats, _) = wait_delivered(
            &gateway.client,
            &receiver_url,
            1,
            Instant::now() + Duration::from_secs(1),
        )
        .await?;
        if stats.records > 0 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "hookd never took a message from the broker");
    }
    let mark = gateway.mark();
    let load_seconds = publish_mqtt(
        &args.mqtt_url,
        args.records,
        args.steady_rate,
        args.record_bytes,
        deadline,
    )
    .await?;
    let (mut stats, complete) =
        wait_delivered(&gateway.client, &receiver_url, args.records as u64 + 1, deadline).await?;
    stats.records = stats.records.saturating_sub(1);
    stats.requests = stats.requests.saturating_sub(1);
    Ok(Measured {
        records: args.records as u64,
        ingest_requests: args.records as u64,
        load_seconds,
        ..gateway.measured(&mark, stats, complete)
    })
}

/// Publishes `records` QoS 1 messages from 4 clients, `rate` per second in all, each a data
/// point's payload stamped with its send time; returns the time it took (every publish
/// acknowledged by the broker).
async fn publish_mqtt(
    url: &str,
    records: usize,
    rate: u32,
    record_bytes: usize,
    deadline: Instant,
) -> anyhow::Result<f64> {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    const PUBLISHERS: usize = 4;
    let parsed = reqwest::Url::parse(url)?;
    let (host, port) = (
        parsed.host_str().unwrap_or("127.0.0.1").to_owned(),
        parsed.port().unwrap_or(1883),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..PUBLISHERS {
        let mut options = MqttOptions::new(format!("bench-pub-{}-{p}", std::process::id()), host.clone(), port);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(options, 256);
        let mine: Vec<usize> = (p..records).step_by(PUBLISHERS).collect();
        let expected = mine.len();
        tasks.push(tokio::spawn(async move {
            let each = Duration::from_secs_f64(PUBLISHERS as f64 / f64::from(rate.max(1)));
            let sender = tokio::spawn(async move {
                let mut pace = tokio::time::interval(each);
                for seq in mine {
                    pace.tick().await;
                    let point = load::data_point(seq, now_us(), record_bytes, 100);
                    let topic = format!("bench/{}/d1", point["device_id"].as_str().unwrap_or("dev-0"));
                    client
                        .publish(topic, QoS::AtLeastOnce, false, point["payload"].to_string())
                        .await?;
                }
                Ok::<_, anyhow::Error>(client)
            });
            let mut acked = 0;
            while acked < expected {
                anyhow::ensure!(Instant::now() < deadline, "publishing did not finish in time");
                if let Event::Incoming(Packet::PubAck(_)) = eventloop.poll().await? {
                    acked += 1;
                }
            }
            let client = sender.await??;
            let _ = client.disconnect().await;
            Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}
