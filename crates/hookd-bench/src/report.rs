//! Runs the scenarios, aggregates runs (median, min–max) and reports.

use std::fmt::Write as _;

use serde::Serialize;

use crate::load::Measured;
use crate::scenarios::run_once;
use crate::{RunArgs, Scenario};

/// One figure over several runs.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Figure {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Figure {
    fn of(mut values: Vec<f64>) -> Option<Self> {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some(Self {
            median: values[values.len() / 2],
            min: values[0],
            max: values[values.len() - 1],
        })
    }

    fn cell(fig: Option<Self>, decimals: usize) -> String {
        match fig {
            Some(f) if f.min == f.max => format!("{:.*}", decimals, f.median),
            Some(f) => format!(
                "{:.*} ({:.*}–{:.*})",
                decimals, f.median, decimals, f.min, decimals, f.max
            ),
            None => "—".into(),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct ScenarioResult {
    pub(crate) scenario: Scenario,
    runs: usize,
    complete_runs: usize,
    pub(crate) figures: Vec<(&'static str, Option<Figure>)>,
}

impl ScenarioResult {
    pub(crate) fn figure(&self, name: &str) -> Option<Figure> {
        self.figures.iter().find(|(n, _)| *n == name).and_then(|(_, f)| *f)
    }
}

fn percentile(values: &[u64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[index] as f64 / 1000.0)
}

/// The figures of one run, by name; `None` where the scenario does not measure it.
fn figures(m: &Measured) -> Vec<(&'static str, Option<f64>)> {
    let per_s = |n: u64, s: f64| (n > 0 && s > 0.0).then(|| n as f64 / s);
    vec![
        ("delivered records/s", per_s(m.delivered_records, m.delivery_seconds)),
        ("delivered requests/s", per_s(m.delivered_requests, m.delivery_seconds)),
        ("ingest requests/s", per_s(m.ingest_requests, m.load_seconds)),
        ("ingest p50 ms", percentile(&m.ingest_latencies_us, 0.50)),
        ("ingest p99 ms", percentile(&m.ingest_latencies_us, 0.99)),
        ("e2e p50 ms", percentile(&m.e2e_latencies_us, 0.50)),
        ("e2e p99 ms", percentile(&m.e2e_latencies_us, 0.99)),
        ("e2e p99.9 ms", percentile(&m.e2e_latencies_us, 0.999)),
        ("alone e2e p50 ms", percentile(&m.alone_e2e_latencies_us, 0.50)),
        ("alone e2e p99 ms", percentile(&m.alone_e2e_latencies_us, 0.99)),
        (
            "CPU s / 1k deliveries",
            (m.hookd_cpu_seconds > 0.0).then(|| m.hookd_cpu_seconds * 1000.0 / m.delivered_requests.max(1) as f64),
        ),
        (
            "machine CPU busy %",
            (m.machine_busy_percent > 0.0).then_some(m.machine_busy_percent),
        ),
        (
            "peak RSS MiB",
            (m.hookd_peak_rss_mib > 0.0).then_some(m.hookd_peak_rss_mib),
        ),
        ("ready ms", (m.ready_ms > 0.0).then_some(m.ready_ms)),
        ("idle RSS MiB", (m.idle_rss_mib > 0.0).then_some(m.idle_rss_mib)),
        ("database MiB", (m.database_mib > 0.0).then_some(m.database_mib)),
        ("duplicates", (m.delivered_requests > 0).then_some(m.duplicates as f64)),
    ]
}

pub(crate) async fn run_all(args: RunArgs) -> anyhow::Result<()> {
    let mut results = Vec::new();
    for &scenario in &args.scenarios {
        let mut runs = Vec::new();
        for run in 1..=args.runs {
            eprintln!("{scenario:?}: run {run}/{}", args.runs);
            let measured = run_once(scenario, &args).await?;
            if !measured.complete {
                eprintln!(
                    "  incomplete: {} of {} records delivered within {}s",
                    measured.delivered_records, measured.records, args.seconds
                );
            }
            runs.push(measured);
        }
        let per_run: Vec<Vec<(&'static str, Option<f64>)>> = runs.iter().map(figures).collect();
        let names: Vec<&'static str> = per_run[0].iter().map(|(n, _)| *n).collect();
        let figures = names
            .iter()
            .enumerate()
            .map(|(i, name)| (*name, Figure::of(per_run.iter().filter_map(|r| r[i].1).collect())))
            .collect();
        results.push(ScenarioResult {
            scenario,
            runs: runs.len(),
            complete_runs: runs.iter().filter(|r| r.complete).count(),
            figures,
        });
    }
    let setting = Setting::read();
    let table = format!("{}\n\n{}", setting.line(), markdown(&results, &args));
    println!("{table}");
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(
        &args.out,
        serde_json::to_string_pretty(
            &serde_json::json!({ "setting": setting, "args": format!("{args:?}"), "results": results }),
        )?,
    )?;
    let (svg, md) = (args.out.with_extension("svg"), args.out.with_extension("md"));
    std::fs::write(&svg, crate::plot::svg(&results))?;
    std::fs::write(&md, table)?;
    eprintln!(
        "results written to {}, {} and {}",
        args.out.display(),
        md.display(),
        svg.display()
    );
    Ok(())
}

/// Where and what was measured: the machine, the commit, when.
#[derive(Debug, Serialize)]
struct Setting {
    cpu: String,
    cores: usize,
    memory_gib: f64,
    commit: String,
    commit_date: String,
}

impl Setting {
    fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
            .map_or("unknown", |(_, name)| name.trim())
            .to_owned();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        // Results written by earlier runs (bench/) do not make the code differ from the commit.
        let dirty =
            git(&["status", "--porcelain", "--untracked-files=no", "--", ":!bench"]).is_some_and(|s| !s.is_empty());
        let commit = git(&["rev-parse", "--short", "HEAD"]).map_or("unknown".into(), |c| {
            if dirty {
                format!("{c} (with uncommitted changes)")
            } else {
                c
            }
        });
        let date = git(&["log", "-1", "--format=%cs"]).unwrap_or_default();
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            memory_gib: memory_kib / (1024.0 * 1024.0),
            commit,
            commit_date: date,
        }
    }

    fn line(&self) -> String {
        format!(
            "machine: {} × {}, {:.0} GiB; commit {}, committed {}",
            self.cores, self.cpu, self.memory_gib, self.commit, self.commit_date
        )
    }
}

fn markdown(results: &[ScenarioResult], args: &RunArgs) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "records per run: {} (batch: {}) of about {} bytes, connections: {}, runs: {}\n",
        args.records,
        args.records * 10,
        args.record_bytes,
        args.connections,
        args.runs
    );
    let names: Vec<&str> = results
        .first()
        .map(|r| r.figures.iter().map(|(n, _)| *n).collect())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "| figure | {} |",
        results
            .iter()
            .map(|r| r.scenario.name())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|---|{}", "---|".repeat(results.len()));
    for (i, name) in names.iter().enumerate() {
        let decimals = if name.contains("/s") || name.contains("duplicates") {
            0
        } else {
            2
        };
        let cells: Vec<String> = results.iter().map(|r| Figure::cell(r.figures[i].1, decimals)).collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    }
    out
}
