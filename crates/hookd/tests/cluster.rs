//! Several `hookd serve` processes on one PostgreSQL (issue: the same guarantees across many
//! processes). Skipped without `HOOKD_TEST_POSTGRES_URL`.

mod common;
#[path = "common/mqtt.rs"]
mod mqtt;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookd::client::Client;
use serde_json::json;

const KEY: &str = "hk_admin_cluster_test_key_0123";
/// Each process's attempt slots. A duplicate is a request the killed process made whose result
/// it had not written: the receiver saw it, the database did not, and once its lease expired
/// another process sent the delivery again. So every duplicate is a delivery the killed process
/// held a lease on when it died, first requested before the kill and again only a lease later:
/// one of its `CONCURRENCY` attempts in flight, or one answered whose result was still on its
/// way to the database (a slot is free once its receiver answers, so these add to the ones in
/// flight; within one commit, shorter than the receiver's delay, each slot answers at most
/// once for the batch being written and once for the batch gathering). Live processes never
/// send a delivery twice: each delivery may be seen at most once more than its attempts
/// recorded.
const CONCURRENCY: usize = 32;
/// The longest the load may take; past it the test fails instead of spinning.
const LOAD_DEADLINE: Duration = Duration::from_secs(60);
/// How long a claim holds a delivery.
const LEASE: Duration = Duration::from_secs(7);

struct DropSchema(String, String);

/// What every process of a test cluster is started with: the database, its schema, the
/// admin key, loopback receivers allowed.
fn cluster_env<'a>(db: &'a str, schema: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("HOOKD_DATABASE_URL", db),
        ("HOOKD_DATABASE__SCHEMA", schema),
        ("HOOKD_ADMIN_KEY", KEY),
        ("HOOKD_DELIVERY__ALLOW_NETWORKS", "127.0.0.1/32"),
        ("HOOKD_DELIVERY__RESTRICT_TO_NETWORKS", "127.0.0.1/32"),
    ]
}

/// One process per data directory, started together: migrations run under an advisory
/// lock, so they do not race.
fn start_together(dirs: &[tempfile::TempDir], env: &[(&str, &str)]) -> Vec<common::Server> {
    std::thread::scope(|s| {
        let handles: Vec<_> = dirs.iter().map(|d| s.spawn(|| common::start(d.path(), env))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        hookd_postgres::testing::drop_schema(&self.0, &self.1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_lose_no_acknowledged_record_when_one_is_killed_mid_load() {
    let Some(db) = hookd_postgres::testing::url().await else {
        return;
    };
    let schema = hookd_postgres::testing::schema_name();
    let _cleanup = DropSchema(db.clone(), schema.clone());
    // A little work per request, so the killed process has attempts in flight.
    let (hook_url, seen) = common::receiver(Duration::from_millis(20)).await;
    let concurrency = CONCURRENCY.to_string();
    let lease = format!("{}s", LEASE.as_secs());
    let mut env = cluster_env(&db, &schema);
    env.extend([
        ("HOOKD_DELIVERY__MAX_TIMEOUT", "2s"),
        ("HOOKD_DISPATCH__LEASE", &lease),
        ("HOOKD_DISPATCH__CONCURRENCY", &concurrency),
    ]);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers: Vec<Option<common::Server>> = start_together(&dirs, &env).into_iter().map(Some).collect();
    let urls: Vec<String> = servers.iter().map(|s| s.as_ref().unwrap().url.clone()).collect();
    let clients: Vec<Client> = urls.iter().map(|u| Client::new(u, KEY)).collect();

    let ws = clients[0].create_workspace("cluster").await.unwrap().id;
    let hook = json!({ "name": "sink", "kind": "data", "url": hook_url, "format": "single", "timeout": "2s" });
    clients[0].create_webhook(&ws, &hook).await.unwrap();

    // Load: 300 requests of 10 records over 12 connections, round robin over the processes
    // alive; process 1 is killed with SIGKILL after 100 requests, then started again.
    let requests = 300;
    let done = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(HashSet::<String>::new()));
    let started = Instant::now();
    let senders: Vec<_> = (0..12)
        .map(|worker| {
            let (clients, ws, done, killed, acked) =
                (clients.clone(), ws.clone(), done.clone(), killed.clone(), acked.clone());
            tokio::spawn(async move {
                let mut n = worker;
                loop {
                    assert!(
                        started.elapsed() < LOAD_DEADLINE,
                        "the load did not finish within {LOAD_DEADLINE:?}"
                    );
                    let seq = done.load(Ordering::SeqCst);
                    if seq >= requests {
                        return;
                    }
                    let target = n % 3;
                    n += 1;
                    if target == 1 && killed.load(Ordering::SeqCst) {
                        continue;
                    }
                    let records: Vec<_> = (0..10)
                        .map(|i| json!({ "device_id": format!("d{worker}"), "tag": "t", "payload": { "n": i } }))
                        .collect();
                    // Only a 202 counts: a request cut off by the kill was never acknowledged.
                    if let Ok(accepted) = clients[target].send_data(&ws, &json!(records), None).await {
                        acked.lock().unwrap().extend(accepted.ids);
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    while done.load(Ordering::SeqCst) < requests / 3 {
        assert!(
            started.elapsed() < LOAD_DEADLINE,
            "a third of the load did not finish in time"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killed.store(true, Ordering::SeqCst);
    servers[1].take().unwrap().kill();
    let kill_time = Instant::now();
    let killed_at = kill_time - started;
    for sender in senders {
        sender.await.unwrap();
    }
    let restarted = common::start(dirs[1].path(), &env);

    let acked: HashSet<String> = acked.lock().unwrap().clone();
    let missing = common::missing_after(&acked, &seen, Duration::from_secs(120)).await;
    let (duplicates, distinct, by_delivery) = {
        let seen = seen.lock().unwrap();
        (seen.duplicates(), seen.records.len(), seen.by_delivery.clone())
    };
    eprintln!(
        "acknowledged {} records; delivered {distinct} distinct; missing {missing}; duplicate requests {duplicates}; killed after {killed_at:?}; all delivered after {:?}",
        acked.len(),
        started.elapsed()
    );
    assert_eq!(missing, 0, "every acknowledged record is delivered");
    assert!(
        duplicates <= 3 * CONCURRENCY,
        "duplicates ({duplicates}) stay within what the killed process had leased"
    );
    // The delivery was claimed a little before it arrived; its lease ran from the claim.
    let claim_to_arrival = Duration::from_secs(1);
    for (delivery, arrivals) in by_delivery.iter().filter(|(_, at)| at.len() > 1) {
        assert_eq!(arrivals.len(), 2, "{delivery} was requested {} times", arrivals.len());
        assert!(arrivals[0] < kill_time, "{delivery} was first requested after the kill");
        let again = arrivals[1] - arrivals[0];
        assert!(
            again + claim_to_arrival >= LEASE,
            "{delivery} was requested again after {again:?}, before its lease expired"
        );
    }
    // Each delivery was requested at most once more than its attempts recorded: only the
    // killed process can have lost a result, and it died once.
    let mut recorded = std::collections::HashMap::new();
    let mut filter = hookd::client::DeliveryFilter {
        limit: Some(250),
        ..Default::default()
    };
    loop {
        let page = clients[0].list_deliveries(&ws, &filter).await.unwrap();
        recorded.extend(page.data.iter().map(|d| (d.id.clone(), d.attempt_count as usize)));
        match page.next_cursor {
            Some(cursor) => filter.after = Some(cursor),
            None => break,
        }
    }
    for (delivery, arrivals) in &by_delivery {
        let requests = arrivals.len();
        let attempts = recorded.get(delivery).copied().unwrap_or(0);
        assert!(
            requests <= attempts + 1,
            "{delivery} was requested {requests} times with {attempts} attempt(s) recorded"
        );
    }
    for server in servers.into_iter().flatten() {
        assert!(server.terminate().success());
    }
    assert!(restarted.terminate().success());
}

/// What the ordered receiver saw: each device's sequence numbers in arrival order, and the
/// most requests of one device it ever had in flight at once.
#[derive(Default)]
struct InOrder {
    by_device: std::collections::HashMap<String, Vec<u64>>,
    in_flight: std::collections::HashMap<String, usize>,
    most_at_once: usize,
    total: usize,
}

/// A receiver answering 200 after `delay`, recording [`InOrder`] of single data points.
async fn ordered_receiver(delay: Duration) -> (String, Arc<Mutex<InOrder>>) {
    use axum::body::Bytes;
    use axum::extract::State;
    type Shared = Arc<Mutex<InOrder>>;
    let seen: Shared = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(move |State(seen): State<Shared>, body: Bytes| async move {
            let record: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let device = record["device_id"].as_str().unwrap_or_default().to_owned();
            {
                let mut seen = seen.lock().unwrap();
                let now = {
                    let n = seen.in_flight.entry(device.clone()).or_default();
                    *n += 1;
                    *n
                };
                seen.most_at_once = seen.most_at_once.max(now);
                seen.total += 1;
                let seq = record["payload"]["seq"].as_u64().unwrap_or(u64::MAX);
                seen.by_device.entry(device.clone()).or_default().push(seq);
            }
            tokio::time::sleep(delay).await;
            *seen.lock().unwrap().in_flight.get_mut(&device).unwrap() -= 1;
            "ok"
        })
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Per-device ordering holds across processes: two processes ingest a device's records in
/// turn and both deliver, yet each device's records arrive in order, one at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_keep_each_devices_records_in_order_one_at_a_time() {
    let Some(db) = hookd_postgres::testing::url().await else {
        return;
    };
    let schema = hookd_postgres::testing::schema_name();
    let _cleanup = DropSchema(db.clone(), schema.clone());
    let (hook_url, seen) = ordered_receiver(Duration::from_millis(3)).await;
    let env = cluster_env(&db, &schema);
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let servers = start_together(&dirs, &env);
    let clients: Vec<Client> = servers.iter().map(|s| Client::new(&s.url, KEY)).collect();
    let ws = clients[0].create_workspace("fleet").await.unwrap().id;
    let hook = json!({ "name": "ordered", "kind": "data", "url": hook_url, "format": "single", "ordering": "device" });
    clients[0].create_webhook(&ws, &hook).await.unwrap();

    // Round r goes to process r % 2: one record per device, device times rising, the
    // devices shuffled within the request.
    let (devices, rounds) = (6u64, 20u64);
    for round in 0..rounds {
        let records: Vec<_> = (0..devices)
            .map(|d| (d * 7 + round) % devices)
            .map(|d| {
                let at = format!("2026-12-01T00:00:{round:02}Z");
                json!({ "device_id": format!("dev-{d}"), "tag": "t", "timestamp_device": at, "payload": { "seq": round } })
            })
            .collect();
        clients[(round % 2) as usize]
            .send_data(&ws, &json!(records), None)
            .await
            .unwrap();
    }
    let expected = (devices * rounds) as usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().total < expected {
        assert!(
            Instant::now() < deadline,
            "{} of {expected} delivered in time",
            seen.lock().unwrap().total
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = seen.lock().unwrap();
    for (device, seqs) in &seen.by_device {
        assert_eq!(seqs, &(0..rounds).collect::<Vec<_>>(), "{device} in order");
    }
    assert_eq!(seen.most_at_once, 1, "never two of one device at once");
    drop(seen);
    for server in servers {
        assert!(server.terminate().success());
    }
}

/// On PostgreSQL the processes share the MQTT subscription: each message is ingested once,
/// by one of them, not once per process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_mqtt_subscription_and_ingest_each_message_once() {
    let Some(db) = hookd_postgres::testing::url().await else {
        return;
    };
    if !mqtt::broker_up("two_processes_share_the_mqtt_subscription_and_ingest_each_message_once") {
        return;
    }
    let schema = hookd_postgres::testing::schema_name();
    let _cleanup = DropSchema(db.clone(), schema.clone());
    let (hook_url, seen) = common::receiver(Duration::ZERO).await;
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let first = common::start(dirs[0].path(), &cluster_env(&db, &schema));
    let client = Client::new(&first.url, KEY);
    let ws = client.create_workspace("plant").await.unwrap().id;
    let hook = json!({ "name": "w", "kind": "data", "url": hook_url, "format": "single" });
    client.create_webhook(&ws, &hook).await.unwrap();
    assert!(first.terminate().success());

    let topics = mqtt::prefix();
    let filter = format!("[{topics}/#]");
    let mut env = cluster_env(&db, &schema);
    env.extend([
        ("HOOKD_MQTT__URL", mqtt::BROKER),
        ("HOOKD_MQTT__TOPICS", filter.as_str()),
        ("HOOKD_MQTT__TOPIC_PATTERN", "hookd-test/{asset_id}/{device_id}/{tag}"),
        ("HOOKD_MQTT__WORKSPACE", ws.as_str()),
    ]);
    let servers = start_together(&dirs, &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    for server in &servers {
        loop {
            let health: serde_json::Value = reqwest::get(format!("{}/readyz", server.url))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if health["status"] == "ready" {
                break;
            }
            assert!(Instant::now() < deadline, "not connected: {health}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let publisher = mqtt::publisher().await;
    let messages = 40;
    for i in 0..messages {
        mqtt::publish(
            &publisher,
            &format!("{topics}/dev-{i}/relay"),
            format!("{{\"n\": {i}}}").as_bytes(),
        )
        .await;
    }
    while seen.lock().unwrap().records.len() < messages {
        assert!(
            Instant::now() < deadline,
            "{} of {messages} delivered",
            seen.lock().unwrap().records.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut per_process = Vec::new();
    for server in &servers {
        let text = reqwest::get(format!("{}/metrics", server.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let committed: f64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("hookd_mqtt_messages_total{outcome=\"committed\"} ")?
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0);
        per_process.push(committed as usize);
    }
    assert_eq!(
        per_process.iter().sum::<usize>(),
        messages,
        "each message once: {per_process:?}"
    );
    assert_eq!(seen.lock().unwrap().records.len(), messages);
    for server in servers {
        assert!(server.terminate().success());
    }
}
