//! What each scenario sets up, drives and measures; the fleet behaviours' own in `fleet`.

mod fleet;

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::load::{self, Auth, Measured, drive, drive_paced, wait_delivered};
use crate::process::{self, ADMIN_KEY, Proc};
use crate::receiver::{Stats, now_us};
use crate::{RunArgs, Scenario};

struct Mark {
    cpu_seconds: f64,
    machine: (u64, u64),
    at_us: u64,
}

/// The hookd processes of a run, and a workspace on them.
struct Gateway {
    procs: Vec<Proc>,
    bases: Vec<String>,
    workspace: String,
    ready: Duration,
    client: reqwest::Client,
    dirs: Vec<tempfile::TempDir>,
    _schema: Option<DropSchema>,
}

impl Gateway {
    async fn start(scenario: Scenario, args: &RunArgs) -> anyhow::Result<Self> {
        let schema = hookd_postgres::testing::schema_name();
        let postgres = scenario.on_postgres();
        let env: Vec<(&str, &str)> = if postgres {
            vec![
                ("HOOKD_DATABASE_URL", &args.postgres_url),
                ("HOOKD_DATABASE__SCHEMA", &schema),
            ]
        } else {
            vec![]
        };
        let count = if postgres { args.workers.max(1) } else { 1 };
        let (mut procs, mut bases, mut dirs, mut ready) = (vec![], vec![], vec![], Duration::ZERO);
        for i in 0..count {
            let dir = tempfile::tempdir()?;
            let (proc, base, took) = process::start_hookd(dir.path(), &env).await?;
            if i == 0 {
                ready = took;
            }
            procs.push(proc);
            bases.push(base);
            dirs.push(dir);
        }
        let client = reqwest::Client::new();
        let created: Value = client
            .post(format!("{}/v1/workspaces", bases[0]))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({ "name": "bench" }))
            .send()
            .await?
            .json()
            .await?;
        let workspace = created["id"].as_str().context("no workspace id")?.to_owned();
        Ok(Self {
            procs,
            bases,
            workspace,
            ready,
            client,
            dirs,
            _schema: postgres.then(|| DropSchema(args.postgres_url.clone(), schema)),
        })
    }

    async fn webhook(&self, spec: Value) -> anyhow::Result<()> {
        let created = self
            .client
            .post(format!("{}/v1/workspaces/{}/webhooks", self.bases[0], self.workspace))
            .bearer_auth(ADMIN_KEY)
            .json(&spec)
            .send()
            .await?;
        anyhow::ensure!(
            created.status().is_success(),
            "creating a webhook failed: {}",
            created.text().await?
        );
        Ok(())
    }

    /// Stops the first process and starts it again on its data directory with `env` added.
    async fn restart(&mut self, env: &[(&str, &str)]) -> anyhow::Result<()> {
        drop(self.procs.remove(0));
        let (proc, base, _) = process::start_hookd(self.dirs[0].path(), env).await?;
        self.procs.insert(0, proc);
        self.bases[0] = base;
        Ok(())
    }

    fn ingest_urls(&self) -> Vec<String> {
        let ws = &self.workspace;
        self.bases
            .iter()
            .map(|b| format!("{b}/v1/workspaces/{ws}/data"))
            .collect()
    }

    fn cpu_seconds(&self) -> f64 {
        self.procs.iter().map(Proc::cpu_seconds).sum()
    }

    /// Where a measured phase starts: hookd's CPU, the machine's, the time.
    fn mark(&self) -> Mark {
        Mark {
            cpu_seconds: self.cpu_seconds(),
            machine: process::machine_ticks(),
            at_us: now_us(),
        }
    }

    /// What the phase since `mark` delivered (`stats`, read from the receiver) and cost.
    fn measured(&self, mark: &Mark, stats: Stats, complete: bool) -> Measured {
        Measured {
            delivered_records: stats.records,
            delivered_requests: stats.requests,
            duplicates: stats.duplicates,
            delivery_seconds: (stats.last_at_us.saturating_sub(mark.at_us)) as f64 / 1e6,
            e2e_latencies_us: stats.latencies_us,
            hookd_cpu_seconds: self.cpu_seconds() - mark.cpu_seconds,
            machine_busy_percent: process::machine_busy_percent(mark.machine),
            hookd_peak_rss_mib: self.peak_rss_mib(),
            complete,
            ..Measured::default()
        }
    }

    fn peak_rss_mib(&self) -> f64 {
        self.procs.iter().map(|p| p.memory_mib().0).fold(0.0, f64::max)
    }
}

pub(crate) async fn run_once(scenario: Scenario, args: &RunArgs) -> anyhow::Result<Measured> {
    match scenario {
        Scenario::Ceiling => ceiling(args).await,
        Scenario::Idle => idle(args).await,
        Scenario::Isolation => isolation(args).await,
        Scenario::Steady => steady(args).await,
        Scenario::Backlog => backlog(args).await,
        Scenario::Inbound => inbound(args).await,
        Scenario::Debounce => fleet::debounce(args).await,
        Scenario::Mqtt => fleet::mqtt(args).await,
        Scenario::Single
        | Scenario::Condition
        | Scenario::Ordering
        | Scenario::Batch
        | Scenario::Postgres
        | Scenario::PostgresFanout10
        | Scenario::Fanout10
        | Scenario::Fanout100 => throughput(scenario, args).await,
    }
}

async fn ceiling(args: &RunArgs) -> anyhow::Result<Measured> {
    let deadline = Instant::now() + args.deadline();
    let (_receiver, receiver_url) = process::start_receiver(0)?;
    let started = now_us();
    let machine_before = process::machine_ticks();
    let urls = [format!("{receiver_url}/direct")];
    let (latencies, load_seconds) = drive(&urls, args.records, 1, args.shape(), &Auth::Bearer, deadline).await?;
    let client = reqwest::Client::new();
    let (stats, complete) = wait_delivered(&client, &receiver_url, args.records as u64, deadline).await?;
    Ok(Measured {
        records: args.records as u64,
        delivered_records: stats.records,
        delivered_requests: stats.requests,
        ingest_requests: latencies.len() as u64,
        load_seconds,
        delivery_seconds: (stats.last_at_us.saturating_sub(started)) as f64 / 1e6,
        e2e_latencies_us: stats.latencies_us,
        ingest_latencies_us: latencies,
        machine_busy_percent: process::machine_busy_percent(machine_before),
        complete,
        ..Measured::default()
    })
}

async fn idle(args: &RunArgs) -> anyhow::Result<Measured> {
    let gateway = Gateway::start(Scenario::Idle, args).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(Measured {
        ready_ms: gateway.ready.as_secs_f64() * 1000.0,
        idle_rss_mib: gateway.procs[0].memory_mib().1,
        complete: true,
        ..Measured::default()
    })
}

/// `single`, `batch`, `fanout-*` and `postgres`: closed-loop ingest, every delivery counted.
async fn throughput(scenario: Scenario, args: &RunArgs) -> anyhow::Result<Measured> {
    let deadline = Instant::now() + args.deadline();
    let (_receiver, receiver_url) = process::start_receiver(0)?;
    let gateway = Gateway::start(scenario, args).await?;
    let (format, per_request, records, webhooks) = match scenario {
        Scenario::Batch => ("batch", 100, args.records * 10, 1),
        Scenario::Fanout10 | Scenario::PostgresFanout10 => ("single", 1, args.records / 2, 10),
        Scenario::Fanout100 => ("single", 1, args.records / 20, 100),
        _ => ("single", 1, args.records, 1),
    };
    // The fleet behaviours on `single`: what the webhook adds, the devices, what reaches it.
    let (extra, devices, matching) = match scenario {
        Scenario::Condition => (
            json!({ "condition": ".payload.seq % 2 == 0" }),
            load::DEVICES,
            records / 2,
        ),
        Scenario::Ordering => (json!({ "ordering": "device" }), 100, records),
        _ => (json!({}), load::DEVICES, records),
    };
    for i in 0..webhooks {
        let url = format!("{receiver_url}/hook/{i}");
        let mut spec =
            json!({ "name": format!("bench-{i}"), "kind": "data", "url": url, "format": format, "batch_max": 100 });
        spec.as_object_mut()
            .context("a spec is an object")?
            .extend(extra.as_object().cloned().unwrap_or_default());
        gateway.webhook(spec).await?;
    }
    let mark = gateway.mark();
    let urls = gateway.ingest_urls();
    let shape = load::Shape {
        devices,
        ..args.shape()
    };
    let (latencies, load_seconds) = drive(
        &urls,
        records / per_request,
        per_request,
        shape,
        &Auth::Bearer,
        deadline,
    )
    .await?;
    let expected = (matching * webhooks) as u64;
    let (stats, complete) = wait_delivered(&gateway.client, &receiver_url, expected, deadline).await?;
    Ok(Measured {
        records: expected,
        ingest_requests: latencies.len() as u64,
        load_seconds,
        ingest_latencies_us: latencies,
        ..gateway.measured(&mark, stats, complete)
    })
}

/// `single` through a source's door: GitHub-signed requests verified, made records and
/// forwarded by an event webhook on that source.
async fn inbound(args: &RunArgs) -> anyhow::Result<Measured> {
    const SECRET: &str = "bench-github-secret";
    let deadline = Instant::now() + args.deadline();
    let (_receiver, receiver_url) = process::start_receiver(0)?;
    let gateway = Gateway::start(Scenario::Inbound, args).await?;
    let created: Value = gateway
        .client
        .post(format!(
            "{}/v1/workspaces/{}/sources",
            gateway.bases[0], gateway.workspace
        ))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "name": "github", "scheme": "github", "secret": SECRET }))
        .send()
        .await?
        .json()
        .await?;
    let source = created["id"].as_str().context("no source id")?.to_owned();
    gateway
        .webhook(
            json!({ "name": "forward", "kind": "event", "url": format!("{receiver_url}/hook"),
                         "format": "single", "filters": { "sources": [source] } }),
        )
        .await?;
    let mark = gateway.mark();
    let urls = vec![format!("{}/in/{source}", gateway.bases[0])];
    let auth = Auth::Github(SECRET.into());
    let (latencies, load_seconds) = drive(&urls, args.records, 1, args.shape(), &auth, deadline).await?;
    let (stats, complete) = wait_delivered(&gateway.client, &receiver_url, args.records as u64, deadline).await?;
    Ok(Measured {
        records: args.records as u64,
        ingest_requests: latencies.len() as u64,
        load_seconds,
        ingest_latencies_us: latencies,
        ..gateway.measured(&mark, stats, complete)
    })
}

/// One webhook at a steady `--steady-rate`: the latency from send to arrival below saturation.
async fn steady(args: &RunArgs) -> anyhow::Result<Measured> {
    let deadline = Instant::now() + args.deadline();
    let (_receiver, receiver_url) = process::start_receiver(0)?;
    let gateway = Gateway::start(Scenario::Steady, args).await?;
    gateway
        .webhook(json!({ "name": "steady", "kind": "data", "url": format!("{receiver_url}/hook") }))
        .await?;
    paced(
        &gateway,
        &receiver_url,
        args.records / 2,
        args.steady_rate,
        args.record_bytes,
        deadline,
    )
    .await
}

/// One healthy webhook at a steady `--rate`, first alone, then beside 9 webhooks whose
/// receiver answers after 10 s: the healthy webhook's latency both times.
async fn isolation(args: &RunArgs) -> anyhow::Result<Measured> {
    let deadline = Instant::now() + args.deadline();
    let records = args.records / 4;
    let (_alone, alone_url) = process::start_receiver(0)?;
    let (_healthy, healthy_url) = process::start_receiver(0)?;
    let (_slow, slow_url) = process::start_receiver(0)?;
    let alone = Gateway::start(Scenario::Isolation, args).await?;
    alone
        .webhook(json!({ "name": "healthy", "kind": "data", "url": format!("{alone_url}/hook") }))
        .await?;
    let before = paced(&alone, &alone_url, records, args.rate, args.record_bytes, deadline).await?;
    drop(alone);

    let gateway = Gateway::start(Scenario::Isolation, args).await?;
    gateway
        .webhook(json!({ "name": "healthy", "kind": "data", "url": format!("{healthy_url}/hook") }))
        .await?;
    for i in 0..9 {
        let url = format!("{slow_url}/slow/{i}");
        gateway
            .webhook(json!({ "name": format!("slow-{i}"), "kind": "data", "url": url, "timeout": "30s" }))
            .await?;
    }
    let beside = paced(&gateway, &healthy_url, records, args.rate, args.record_bytes, deadline).await?;
    Ok(Measured {
        alone_e2e_latencies_us: before.e2e_latencies_us,
        complete: beside.complete && before.complete,
        ..beside
    })
}

/// Sends `records` records one per request at `rate` per second to the gateway's first
/// process and waits until the receiver at `receiver_url` has them all.
async fn paced(
    gateway: &Gateway,
    receiver_url: &str,
    records: usize,
    rate: u32,
    record_bytes: usize,
    deadline: Instant,
) -> anyhow::Result<Measured> {
    let mark = gateway.mark();
    let load_seconds = drive_paced(&gateway.ingest_urls()[0], records, rate, record_bytes, deadline).await?;
    let (stats, complete) = wait_delivered(&gateway.client, receiver_url, records as u64, deadline).await?;
    Ok(Measured {
        records: records as u64,
        ingest_requests: records as u64,
        load_seconds,
        ..gateway.measured(&mark, stats, complete)
    })
}

/// `--backlog` deliveries pile up while the receiver is down (its webhook's breaker opens);
/// then the receiver comes up and the backlog drains.
async fn backlog(args: &RunArgs) -> anyhow::Result<Measured> {
    let deadline = Instant::now() + args.deadline();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let gateway = Gateway::start(Scenario::Backlog, args).await?;
    let schedule = vec!["2s"; 30];
    let url = format!("http://127.0.0.1:{port}/hook");
    gateway
        .webhook(json!({ "name": "down", "kind": "data", "url": url, "format": "single", "retry_schedule": schedule }))
        .await?;
    let records = args.backlog;
    let (latencies, load_seconds) = drive(
        &gateway.ingest_urls(),
        records / 100,
        100,
        args.shape(),
        &Auth::Bearer,
        deadline,
    )
    .await?;
    let database_mib = dir_mib(gateway.dirs[0].path());
    let mut mark = gateway.mark();
    let (_receiver, receiver_url) = process::start_receiver(port)?;
    let (stats, complete) = wait_delivered(&gateway.client, &receiver_url, records as u64, deadline).await?;
    // The drain: from the first delivery after the receiver came up to the last.
    mark.at_us = stats.first_at_us.unwrap_or(mark.at_us);
    Ok(Measured {
        records: records as u64,
        ingest_requests: latencies.len() as u64,
        load_seconds,
        ingest_latencies_us: latencies,
        database_mib,
        // Send-to-arrival here is the time spent waiting for the receiver: not a latency.
        e2e_latencies_us: Vec::new(),
        ..gateway.measured(&mark, stats, complete)
    })
}

fn dir_mib(dir: &std::path::Path) -> f64 {
    let bytes: u64 = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    bytes as f64 / (1024.0 * 1024.0)
}

/// Drops the `postgres` scenario's schema when the run ends.
struct DropSchema(String, String);

impl Drop for DropSchema {
    fn drop(&mut self) {
        hookd_postgres::testing::drop_schema(&self.0, &self.1);
    }
}
