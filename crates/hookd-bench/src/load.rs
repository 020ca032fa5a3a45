//! The load generator: closed-loop (as fast as answers come) or paced, and the receiver's
//! counts it waits on.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::ADMIN_KEY;
use crate::receiver::{Stats, now_us};

/// What one run measured.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct Measured {
    pub(crate) records: u64,
    pub(crate) delivered_records: u64,
    pub(crate) delivered_requests: u64,
    pub(crate) duplicates: u64,
    pub(crate) ingest_requests: u64,
    pub(crate) load_seconds: f64,
    pub(crate) delivery_seconds: f64,
    pub(crate) ingest_latencies_us: Vec<u64>,
    pub(crate) e2e_latencies_us: Vec<u64>,
    /// `isolation`: the healthy webhook's latencies without the slow ones.
    pub(crate) alone_e2e_latencies_us: Vec<u64>,
    /// `backlog`: the database's size with every delivery pending.
    pub(crate) database_mib: f64,
    pub(crate) hookd_cpu_seconds: f64,
    /// How busy all cores were (hookd, database, receiver, load generator), percent.
    pub(crate) machine_busy_percent: f64,
    pub(crate) hookd_peak_rss_mib: f64,
    pub(crate) ready_ms: f64,
    pub(crate) idle_rss_mib: f64,
    pub(crate) complete: bool,
}

/// Devices the records of most scenarios come from.
pub(crate) const DEVICES: usize = 1000;

/// An IoT cloud's data point (the shape of `examples/readings.ndjson`), stamped with the send
/// time, its payload padded so the record is about `bytes` long as sent.
pub(crate) fn data_point(seq: usize, sent: u64, bytes: usize, devices: usize) -> Value {
    let mut record = json!({
        "timestamp_device": "2023-12-01T09:51:00Z",
        "tag": "d1",
        "device_id": format!("dev-{}", seq % devices.max(1)),
        "asset_id": "ast-1234",
        "asset_name": "Machine 1",
        "device_name": "Machine 1",
        "fleet_id": "flt-1234",
        "payload": { "ts": 1701424260, "ex": [0, 0], "C": { "celsius": 21.5 }, "sent_at_us": sent, "seq": seq, "pad": "" },
    });
    let unpadded = record.to_string().len();
    record["payload"]["pad"] = Value::String("x".repeat(bytes.saturating_sub(unpadded)));
    record
}

/// A body of `n` data points of about `record_bytes` each, from `devices` devices in turn,
/// stamped with the send time.
fn body(n: usize, seq: usize, record_bytes: usize, devices: usize) -> Value {
    let sent = now_us();
    let records: Vec<Value> = (0..n)
        .map(|i| data_point(seq + i, sent, record_bytes, devices))
        .collect();
    if n == 1 {
        records.into_iter().next().unwrap_or_default()
    } else {
        Value::Array(records)
    }
}

/// How each request says who sends it.
#[derive(Debug, Clone)]
pub(crate) enum Auth {
    /// The admin key, as a producer calling the API.
    Bearer,
    /// A GitHub webhook signature with this secret (`X-Hub-Signature-256`), and a
    /// `X-GitHub-Delivery` id per request, as GitHub posts to a source.
    Github(String),
}

impl Auth {
    fn apply(&self, request: reqwest::RequestBuilder, body: &[u8], seq: usize) -> reqwest::RequestBuilder {
        use hmac::Mac;
        match self {
            Self::Bearer => request.bearer_auth(ADMIN_KEY),
            Self::Github(secret) => {
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
                mac.update(body);
                let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
                request
                    .header("X-Hub-Signature-256", format!("sha256={hex}"))
                    .header("X-GitHub-Delivery", format!("bench-{seq}"))
                    .header("X-GitHub-Event", "push")
            }
        }
    }
}

/// How the load is sent: over how many connections, with records of about what size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) connections: usize,
    pub(crate) record_bytes: usize,
    /// Devices the records come from, in turn.
    pub(crate) devices: usize,
}

/// Posts `requests` bodies of `per_request` records over the shape's connections, round robin
/// over `urls`. Returns each request's latency (µs) and the wall time the load took.
pub(crate) async fn drive(
    urls: &[String],
    requests: usize,
    per_request: usize,
    shape: Shape,
    auth: &Auth,
    deadline: Instant,
) -> anyhow::Result<(Vec<u64>, f64)> {
    let concurrency = shape.connections;
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..concurrency).map(|worker| {
        let (client, next, url) = (client.clone(), next.clone(), urls[worker % urls.len()].clone());
        let auth = auth.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= requests || Instant::now() > deadline {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let bytes =
                    serde_json::to_vec(&body(per_request, seq * per_request, shape.record_bytes, shape.devices))?;
                let t = Instant::now();
                let request = client.post(&url).header("Content-Type", "application/json");
                let response = auth.apply(request, &bytes, seq).body(bytes).send().await?;
                anyhow::ensure!(response.status().is_success(), "ingest answered {}", response.status());
                latencies.push(t.elapsed().as_micros() as u64);
            }
        })
    });
    let mut all = Vec::with_capacity(requests);
    for worker in futures::future::join_all(workers).await {
        all.extend(worker??);
    }
    Ok((all, started.elapsed().as_secs_f64()))
}

async fn receiver_stats(client: &reqwest::Client, receiver: &str) -> anyhow::Result<Stats> {
    Ok(client.get(format!("{receiver}/stats")).send().await?.json().await?)
}

/// Polls the receiver until nothing more arrived for `quiet` (at least one record first), or
/// the deadline passes.
pub(crate) async fn wait_quiet(
    client: &reqwest::Client,
    receiver: &str,
    quiet: Duration,
    deadline: Instant,
) -> anyhow::Result<(Stats, bool)> {
    let mut last = (0, Instant::now());
    loop {
        let stats = receiver_stats(client, receiver).await?;
        if stats.records != last.0 {
            last = (stats.records, Instant::now());
        } else if stats.records > 0 && last.1.elapsed() >= quiet {
            return Ok((stats, true));
        }
        if Instant::now() > deadline {
            return Ok((stats, false));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the receiver until it has `records` records or the deadline passes.
pub(crate) async fn wait_delivered(
    client: &reqwest::Client,
    receiver: &str,
    records: u64,
    deadline: Instant,
) -> anyhow::Result<(Stats, bool)> {
    loop {
        let stats = receiver_stats(client, receiver).await?;
        if stats.records >= records {
            return Ok((stats, true));
        }
        if Instant::now() > deadline {
            return Ok((stats, false));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts `requests` single-record bodies to `url` at `rate` per second, each on its own task
/// (open loop: a slow answer does not slow the sending). Returns the wall time it took.
pub(crate) async fn drive_paced(
    url: &str,
    requests: usize,
    rate: u32,
    record_bytes: usize,
    deadline: Instant,
) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    let started = Instant::now();
    let mut sent = Vec::with_capacity(requests);
    for seq in 0..requests {
        if Instant::now() > deadline {
            break;
        }
        pace.tick().await;
        let request = client
            .post(url)
            .bearer_auth(ADMIN_KEY)
            .json(&body(1, seq, record_bytes, DEVICES));
        sent.push(tokio::spawn(async move { request.send().await?.error_for_status() }));
    }
    for request in sent {
        request.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_point_is_padded_to_the_size_asked_and_keeps_its_send_time() {
        for bytes in [340, 1_000, 4_096] {
            let record = data_point(7, 1_234, bytes, DEVICES);
            assert_eq!(record.to_string().len(), bytes);
            assert_eq!(record["payload"]["sent_at_us"], 1_234);
        }
        assert!(
            data_point(7, 1, 10, DEVICES).to_string().len() > 10,
            "never cut below the shape"
        );
    }
}
