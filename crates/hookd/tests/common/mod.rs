//! Running the real `hookd` binary from tests.

#![allow(dead_code, unreachable_pub)] // each test binary uses part of this

pub mod watchdog;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The longest `hookd serve` may take to print its start-up lines.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A `hookd serve` process and the lines it printed on start.
pub struct Server {
    pub child: Child,
    pub lines: Vec<String>,
    pub url: String,
    /// The test that started it is watched until it is dropped.
    _watch: watchdog::Watch,
}

/// Starts `hookd serve` on port 0 with `dir` as data directory and `env` added, and reads its
/// start-up lines (three, or four when it prints a new admin key).
pub fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    start_with_stderr(dir, env, Stdio::null())
}

fn start_with_stderr(dir: &std::path::Path, env: &[(&str, &str)], stderr: Stdio) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookd"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("HOOKD_ADMIN_KEY");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("hookd starts");
    // Read on a thread of its own, so a hookd that prints nothing cannot hang the test.
    let (tx, rx) = std::sync::mpsc::channel();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(n) if n > 0 => {
                    if tx.send(line.trim_end().to_owned()).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    let deadline = Instant::now() + START_DEADLINE;
    let mut lines: Vec<String> = Vec::new();
    while lines.len() < 3 || (lines[2].starts_with("admin key (shown once") && lines.len() < 4) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("hookd did not start within {START_DEADLINE:?}: {lines:?}")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("hookd exited early: {lines:?}"),
        }
    }
    let url = lines[0].rsplit(' ').next().unwrap().to_owned();
    Server {
        child,
        lines,
        url,
        _watch: watchdog::watch(),
    }
}

impl Server {
    /// Sends SIGTERM and waits (at most 15s) for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return exit;
            }
            assert!(Instant::now() < deadline, "hookd did not stop within 15s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown of any kind.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Like [`start`], with the process's logs (stderr) written to `log`.
pub fn start_logging(dir: &std::path::Path, env: &[(&str, &str)], log: &std::path::Path) -> Server {
    let file = std::fs::File::create(log).unwrap();
    start_with_stderr(dir, env, Stdio::from(file))
}

/// What a [`receiver`] saw: when each request of a `webhook-id` arrived, and every record id
/// delivered.
#[derive(Default)]
pub struct Seen {
    pub by_delivery: std::collections::HashMap<String, Vec<Instant>>,
    pub records: std::collections::HashSet<String>,
    /// When each record id first arrived.
    pub first_seen: std::collections::HashMap<String, Instant>,
}

impl Seen {
    /// Requests beyond the first for the same delivery.
    pub fn duplicates(&self) -> usize {
        self.by_delivery.values().map(|at| at.len() - 1).sum()
    }
}

/// A receiver on loopback answering 200 after `delay`, recording what it gets (single records
/// or batches). Returns its URL.
pub async fn receiver(delay: Duration) -> (String, std::sync::Arc<std::sync::Mutex<Seen>>) {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::HeaderMap;
    type Shared = std::sync::Arc<std::sync::Mutex<Seen>>;

    let seen: Shared = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(
            move |State(seen): State<Shared>, headers: HeaderMap, body: Bytes| async move {
                let arrived = Instant::now();
                tokio::time::sleep(delay).await;
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let records = match body.get("result") {
                    Some(batch) => batch.as_array().cloned().unwrap_or_default(),
                    None => vec![body],
                };
                let mut seen = seen.lock().unwrap();
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                seen.by_delivery.entry(id).or_default().push(arrived);
                for record in records {
                    let id = record["id"].as_str().unwrap_or_default().to_owned();
                    seen.first_seen.entry(id.clone()).or_insert_with(Instant::now);
                    seen.records.insert(id);
                }
                "ok"
            },
        )
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Waits (at most `within`) until `seen` holds every id of `acked`; returns how many are missing.
pub async fn missing_after(
    acked: &std::collections::HashSet<String>,
    seen: &std::sync::Mutex<Seen>,
    within: Duration,
) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let missing = acked.difference(&seen.lock().unwrap().records).count();
        if missing == 0 || Instant::now() > deadline {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
