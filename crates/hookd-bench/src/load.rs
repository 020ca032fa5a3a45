//! The load generator and the scenarios it drives.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::process::{self, ADMIN_KEY};
use crate::receiver::{Stats, now_us};
use crate::{RunArgs, Scenario};

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
    pub(crate) hookd_cpu_seconds: f64,
    pub(crate) hookd_peak_rss_mib: f64,
    pub(crate) ready_ms: f64,
    pub(crate) idle_rss_mib: f64,
    pub(crate) complete: bool,
}

/// A body of `n` data points, stamped with the send time.
fn body(n: usize, seq: usize) -> Value {
    let sent = now_us();
    let records: Vec<Value> = (0..n)
        .map(|i| json!({ "device_id": format!("dev-{}", (seq + i) % 1000), "tag": "temp", "payload": { "sent_at_us": sent, "seq": seq + i, "celsius": 21.5 } }))
        .collect();
    if n == 1 {
        records.into_iter().next().unwrap_or_default()
    } else {
        Value::Array(records)
    }
}

/// Posts `requests` bodies of `per_request` records over `concurrency` connections, round
/// robin over `urls`. Returns each request's latency (µs) and the wall time the load took.
async fn drive(
    urls: &[String],
    requests: usize,
    per_request: usize,
    concurrency: usize,
    deadline: Instant,
) -> anyhow::Result<(Vec<u64>, f64)> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..concurrency).map(|worker| {
        let (client, next, url) = (client.clone(), next.clone(), urls[worker % urls.len()].clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= requests || Instant::now() > deadline {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(ADMIN_KEY)
                    .json(&body(per_request, seq * per_request))
                    .send()
                    .await?;
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

/// Polls the receiver until it has `records` records or the deadline passes.
async fn wait_delivered(
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

pub(crate) async fn run_once(scenario: Scenario, args: &RunArgs) -> anyhow::Result<Measured> {
    let deadline = Instant::now() + args.deadline();
    let client = reqwest::Client::new();
    let (_receiver, receiver_url) = process::start_receiver()?;
    if scenario == Scenario::Ceiling {
        let started = now_us();
        let (latencies, load_seconds) = drive(
            &[format!("{receiver_url}/direct")],
            args.records,
            1,
            args.concurrency,
            deadline,
        )
        .await?;
        let (stats, complete) = wait_delivered(&client, &receiver_url, args.records as u64, deadline).await?;
        return Ok(Measured {
            records: args.records as u64,
            delivered_records: stats.records,
            delivered_requests: stats.requests,
            ingest_requests: latencies.len() as u64,
            load_seconds,
            delivery_seconds: (stats.last_at_us.saturating_sub(started)) as f64 / 1e6,
            e2e_latencies_us: stats.latencies_us,
            ingest_latencies_us: latencies,
            complete,
            ..Measured::default()
        });
    }

    let dir = tempfile::tempdir()?;
    let schema = hookd_postgres::testing::schema_name();
    let _drop_schema = (scenario == Scenario::Postgres).then(|| DropSchema(args.postgres_url.clone(), schema.clone()));
    let env: Vec<(&str, &str)> = match scenario {
        Scenario::Postgres => vec![
            ("HOOKD_DATABASE_URL", &args.postgres_url),
            ("HOOKD_DATABASE__SCHEMA", &schema),
        ],
        _ => vec![],
    };
    let processes = if scenario == Scenario::Postgres {
        args.workers.max(1)
    } else {
        1
    };
    let mut others = Vec::new();
    let (hookd, base, ready) = process::start_hookd(dir.path(), &env).await?;
    let mut bases = vec![base.clone()];
    for _ in 1..processes {
        let dir = tempfile::tempdir()?;
        let (proc, url, _) = process::start_hookd(dir.path(), &env).await?;
        bases.push(url);
        others.push((proc, dir));
    }
    if scenario == Scenario::Idle {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (_, rss) = hookd.memory_mib();
        return Ok(Measured {
            ready_ms: ready.as_secs_f64() * 1000.0,
            idle_rss_mib: rss,
            complete: true,
            ..Measured::default()
        });
    }
    let (format, per_request, records) = match scenario {
        Scenario::Batch => ("batch", 100, args.records * 10),
        _ => ("single", 1, args.records),
    };
    let ws: Value = client
        .post(format!("{base}/v1/workspaces"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({}))
        .send()
        .await?
        .json()
        .await?;
    let ws = ws["id"].as_str().context("no workspace id")?.to_owned();
    let hook = json!({ "name": "bench", "kind": "data", "url": format!("{receiver_url}/hook"), "format": format, "batch_max": 100 });
    let created = client
        .post(format!("{base}/v1/workspaces/{ws}/webhooks"))
        .bearer_auth(ADMIN_KEY)
        .json(&hook)
        .send()
        .await?;
    anyhow::ensure!(
        created.status().is_success(),
        "creating the webhook failed: {}",
        created.text().await?
    );

    let all: Vec<&process::Proc> = std::iter::once(&hookd).chain(others.iter().map(|(p, _)| p)).collect();
    let cpu_before: f64 = all.iter().map(|p| p.cpu_seconds()).sum();
    let started = now_us();
    let urls: Vec<String> = bases.iter().map(|b| format!("{b}/v1/workspaces/{ws}/data")).collect();
    let (latencies, load_seconds) =
        drive(&urls, records / per_request, per_request, args.concurrency, deadline).await?;
    let (stats, complete) = wait_delivered(&client, &receiver_url, records as u64, deadline).await?;
    let cpu = all.iter().map(|p| p.cpu_seconds()).sum::<f64>() - cpu_before;
    let peak = all.iter().map(|p| p.memory_mib().0).fold(0.0, f64::max);
    Ok(Measured {
        records: records as u64,
        delivered_records: stats.records,
        delivered_requests: stats.requests,
        duplicates: stats.duplicates,
        ingest_requests: latencies.len() as u64,
        load_seconds,
        delivery_seconds: (stats.last_at_us.saturating_sub(started)) as f64 / 1e6,
        ingest_latencies_us: latencies,
        e2e_latencies_us: stats.latencies_us,
        hookd_cpu_seconds: cpu,
        hookd_peak_rss_mib: peak,
        complete,
        ..Measured::default()
    })
}

/// Drops the `postgres` scenario's schema when the run ends.
struct DropSchema(String, String);

impl Drop for DropSchema {
    fn drop(&mut self) {
        hookd_postgres::testing::drop_schema(&self.0, &self.1);
    }
}
