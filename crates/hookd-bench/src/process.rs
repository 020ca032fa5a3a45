//! The processes a benchmark runs: hookd and the receiver, with their CPU and memory read
//! from /proc.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub(crate) const ADMIN_KEY: &str = "hk_admin_benchmark_key_0123456789";

pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) first_line: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU seconds used so far.
    pub(crate) fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        (ticks(11) + ticks(12)) / 100.0
    }

    /// Peak and current resident memory, MiB.
    pub(crate) fn memory_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let kb = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (kb("VmHWM:"), kb("VmRSS:"))
    }
}

/// The whole machine's CPU time so far, from /proc/stat: (busy, total) in ticks, busy being
/// everything but idle and I/O wait. Two readings give how busy every core was in between.
pub(crate) fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// How busy the machine's cores were since `before` (a [`machine_ticks`] reading), percent.
pub(crate) fn machine_busy_percent(before: (u64, u64)) -> f64 {
    let (busy, total) = machine_ticks();
    let (busy, total) = (busy.saturating_sub(before.0), total.saturating_sub(before.1));
    if total == 0 {
        0.0
    } else {
        busy as f64 * 100.0 / total as f64
    }
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -p hookd -p hookd-bench`",
            path.display()
        );
    }
    Ok(path)
}

fn spawn(mut command: Command) -> anyhow::Result<Proc> {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let mut reader = BufReader::new(child.stdout.take().context("no stdout")?);
    let mut first_line = String::new();
    reader.read_line(&mut first_line)?;
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in reader.lines() {});
    Ok(Proc {
        child,
        first_line: first_line.trim().to_owned(),
    })
}

/// Starts the receiver process on `port` (0: any free port); returns it and its base URL.
pub(crate) fn start_receiver(port: u16) -> anyhow::Result<(Proc, String)> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["receive", "--port", &port.to_string()]);
    let proc = spawn(command)?;
    let port = proc
        .first_line
        .strip_prefix("port ")
        .context("the receiver did not print its port")?
        .to_owned();
    Ok((proc, format!("http://127.0.0.1:{port}")))
}

/// Starts `hookd serve` on a fresh data dir; returns it, its base URL and the time to ready.
pub(crate) async fn start_hookd(
    data_dir: &std::path::Path,
    env: &[(&str, &str)],
) -> anyhow::Result<(Proc, String, Duration)> {
    let mut command = Command::new(sibling("hookd")?);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("HOOKD_ADMIN_KEY", ADMIN_KEY)
        .env("HOOKD_DELIVERY__ALLOW_NETWORKS", "127.0.0.1/32")
        .env("HOOKD_LOG__LEVEL", "warn");
    for (k, v) in env {
        command.env(k, v);
    }
    let started = Instant::now();
    let proc = spawn(command)?;
    let base = proc
        .first_line
        .rsplit(' ')
        .next()
        .context("hookd did not print its address")?
        .to_owned();
    let client = reqwest::Client::new();
    loop {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok((proc, base, started.elapsed()));
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!("hookd was not ready within 10s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
