//! The receiver process: writes every body it gets to a file, as a real receiver logs them,
//! answers 204 (after 10 s under `/slow`) and measures, for each record it carries, the time
//! from the load generator's send (`sent_at_us` in the payload, wall clock) to arrival.
//! `GET /stats` returns what it saw.

use std::io::Write;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

#[derive(Default)]
struct Seen {
    requests: u64,
    records: u64,
    first_at_us: Option<u64>,
    last_at_us: u64,
    latencies_us: Vec<u64>,
    webhook_ids: std::collections::HashSet<String>,
    duplicates: u64,
    /// Every body received, one per line: an unnamed file the system deletes once closed.
    bodies: Option<std::io::BufWriter<std::fs::File>>,
}

#[derive(Serialize, serde::Deserialize)]
pub(crate) struct Stats {
    pub(crate) requests: u64,
    pub(crate) records: u64,
    pub(crate) duplicates: u64,
    pub(crate) first_at_us: Option<u64>,
    pub(crate) last_at_us: u64,
    pub(crate) latencies_us: Vec<u64>,
}

pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Runs the receiver on `port` (0: any), printing `port <n>` once listening.
pub(crate) async fn run(port: u16) -> anyhow::Result<()> {
    let seen = Arc::new(Mutex::new(Seen {
        bodies: Some(std::io::BufWriter::new(tempfile::tempfile()?)),
        ..Seen::default()
    }));
    let app = Router::new()
        .route("/stats", get(stats))
        .fallback(receive)
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("port {}", listener.local_addr()?.port());
    axum::serve(listener, app).await?;
    Ok(())
}

/// Requests to paths under `/slow` are answered after this long (the `isolation` scenario).
const SLOW: std::time::Duration = std::time::Duration::from_secs(10);

async fn receive(
    State(seen): State<Arc<Mutex<Seen>>>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> StatusCode {
    if uri.path().starts_with("/slow") {
        tokio::time::sleep(SLOW).await;
    }
    let at = now_us();
    let sent: Vec<u64> = sent_times(&body);
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut seen = seen.lock().unwrap();
    if let Some(file) = &mut seen.bodies {
        let written = file.write_all(&body).and_then(|()| file.write_all(b"\n"));
        if let Err(err) = written {
            eprintln!("cannot write the body: {err}");
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    seen.requests += 1;
    seen.records += sent.len().max(1) as u64;
    seen.first_at_us.get_or_insert(at);
    seen.last_at_us = at;
    seen.latencies_us.extend(sent.iter().map(|s| at.saturating_sub(*s)));
    if let Some(id) = id {
        if !seen.webhook_ids.insert(id) {
            seen.duplicates += 1;
        }
    }
    StatusCode::NO_CONTENT
}

/// Every `"sent_at_us":<n>` in the body (a batch carries several; a single record one).
fn sent_times(body: &[u8]) -> Vec<u64> {
    const KEY: &[u8] = b"\"sent_at_us\":";
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(pos) = rest.windows(KEY.len()).position(|w| w == KEY) {
        rest = &rest[pos + KEY.len()..];
        let digits: Vec<u8> = rest.iter().copied().take_while(u8::is_ascii_digit).collect();
        if let Ok(n) = std::str::from_utf8(&digits).unwrap_or("").parse() {
            out.push(n);
        }
    }
    out
}

async fn stats(State(seen): State<Arc<Mutex<Seen>>>) -> Json<Stats> {
    let mut seen = seen.lock().unwrap();
    if let Some(file) = &mut seen.bodies {
        let _ = file.flush();
    }
    Json(Stats {
        requests: seen.requests,
        records: seen.records,
        duplicates: seen.duplicates,
        first_at_us: seen.first_at_us,
        last_at_us: seen.last_at_us,
        latencies_us: seen.latencies_us.clone(),
    })
}
