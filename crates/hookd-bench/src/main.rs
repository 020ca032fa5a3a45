//! hookd-bench: end-to-end benchmarks of a real `hookd serve` process.
//!
//! Each scenario starts a fresh hookd (release build, fresh data dir, full durability), a
//! receiver process (this binary, `receive`, which writes every body it gets to a file as a
//! real receiver logs them), and drives ingest load of IoT data points (`--record-bytes`
//! each) over `--connections` keep-alive connections, bounded in records and seconds. Figures are the median of `--runs` runs with
//! min–max; results are printed as a Markdown table and written as JSON.

mod load;
mod plot;
mod process;
mod receiver;
mod report;
mod scenarios;

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "hookd-bench",
    about = "End-to-end benchmarks of hookd. Build first: cargo build --release -p hookd -p hookd-bench"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run scenarios and report.
    Run(RunArgs),
    /// (internal) The receiver process.
    Receive {
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scenario {
    /// The load generator posting straight to the receiver: the machine's limit.
    Ceiling,
    /// One webhook, `format: single`, one record per ingest request.
    Single,
    /// One webhook, `format: batch`, `batch_max: 100`, arrays of 100 records.
    Batch,
    /// `single` at a steady `--steady-rate` records/s (`--records` / 2 records): end-to-end
    /// latency below saturation.
    Steady,
    /// 10 webhooks matching every record (`--records` / 2 records).
    #[value(name = "fanout-10")]
    #[serde(rename = "fanout-10")]
    Fanout10,
    /// 100 webhooks matching every record (`--records` / 20 records).
    #[value(name = "fanout-100")]
    #[serde(rename = "fanout-100")]
    Fanout100,
    /// One healthy webhook at `--rate` records/s, alone and then beside 9 webhooks whose
    /// receiver answers after 10 s (`--records` / 4 records each time).
    Isolation,
    /// `single` received: GitHub-signed requests to a source (`/in/{src}`), one record each,
    /// forwarded by a webhook on that source. Run it with `single` to compare.
    Inbound,
    /// `--backlog` deliveries pending while the receiver is down, then drained.
    Backlog,
    /// Start-up time to ready and idle memory.
    Idle,
    /// `single` on PostgreSQL with `--workers` processes (each API and dispatcher).
    Postgres,
    /// `single` with a jq condition half the records match (`.payload.seq % 2 == 0`).
    Condition,
    /// `single` with `ordering: "device"`, the records from 100 devices in turn.
    Ordering,
    /// `single` with `min_interval: "250ms"` (`coalesce: latest`), 100 devices flapping: the
    /// records ingested per second, and the deliveries the debounce lets through.
    Debounce,
    /// Publish → delivery through the real MQTT broker (`--mqtt-url`, Mosquitto on
    /// 127.0.0.1:1883): QoS 1 messages from 4 publishers at `--steady-rate` in all, ingested
    /// by hookd's `[mqtt]` door into a `single` webhook.
    Mqtt,
    /// `fanout-10` on PostgreSQL with `--workers` processes.
    #[value(name = "postgres-fanout-10")]
    #[serde(rename = "postgres-fanout-10")]
    PostgresFanout10,
}

impl Scenario {
    /// Whether the scenario runs hookd on PostgreSQL (`--postgres-url`, `--workers`).
    pub(crate) fn on_postgres(self) -> bool {
        matches!(self, Self::Postgres | Self::PostgresFanout10)
    }

    /// The name on the command line and in reports.
    pub(crate) fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunArgs {
    /// Scenarios to run, in order.
    #[arg(value_enum, default_values_t = [Scenario::Ceiling, Scenario::Single, Scenario::Batch, Scenario::Idle])]
    scenarios: Vec<Scenario>,
    /// Records per run (`batch` sends 10× as many).
    #[arg(long, default_value_t = 20_000)]
    records: usize,
    /// Concurrent ingest connections.
    #[arg(long, alias = "concurrency", default_value_t = 32)]
    connections: usize,
    /// Bytes per record as sent: an IoT cloud's data point, its payload padded to this size.
    #[arg(long, default_value_t = 340)]
    record_bytes: usize,
    /// Runs per scenario; figures are the median.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Longest a run may take before it is stopped and reported incomplete.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Records per second sent in the `isolation` scenario.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Records per second sent in the `steady` scenario (the default is half of the 10,000/s
    /// `single` is meant to reach).
    #[arg(long, default_value_t = 5_000)]
    steady_rate: u32,
    /// Deliveries piled up in the `backlog` scenario.
    #[arg(long, default_value_t = 1_000_000)]
    backlog: usize,
    /// hookd processes in the `postgres` scenario.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// The PostgreSQL of the `postgres` scenario (a fresh schema is used and dropped).
    #[arg(
        long,
        env = "HOOKD_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// The broker of the `mqtt` scenario.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    mqtt_url: String,
    /// Where to write the JSON results (the plot goes beside it, as .svg).
    #[arg(long, default_value = "target/bench/results.json")]
    out: std::path::PathBuf,
}

impl RunArgs {
    pub(crate) fn deadline(&self) -> Duration {
        Duration::from_secs(self.seconds)
    }

    pub(crate) fn shape(&self) -> load::Shape {
        load::Shape {
            connections: self.connections,
            record_bytes: self.record_bytes,
            devices: load::DEVICES,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Receive { port } => runtime.block_on(receiver::run(port)),
        Command::Run(args) => runtime.block_on(report::run_all(args)),
    }
}
