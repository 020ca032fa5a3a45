//! A time limit per test, which `cargo test` does not have: a test still running after
//! [`limit`] (180 s, or `HOOKD_TEST_TIMEOUT` seconds) ends its whole test binary with a line
//! naming it, so a hang fails the run instead of stalling it. Tests are watched from when they
//! start a server ([`watch`]) until that server is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What is being watched: by watch id, the test's name and when it began.
fn watched() -> &'static Mutex<HashMap<u64, (String, Instant)>> {
    static WATCHED: OnceLock<Mutex<HashMap<u64, (String, Instant)>>> = OnceLock::new();
    WATCHED.get_or_init(|| {
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let limit = limit();
                let over = watched()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                    .find(|(_, since)| since.elapsed() > limit)
                    .map(|(name, _)| name.clone());
                if let Some(name) = over {
                    // Straight to stderr: the test harness captures what `eprintln!` prints in
                    // the thread this one was started from.
                    let line = format!(
                        "test {name} ran over {limit:?}: stopping this test binary (HOOKD_TEST_TIMEOUT sets the limit)\n"
                    );
                    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
                    std::process::exit(101);
                }
            }
        });
        Mutex::default()
    })
}

pub fn limit() -> Duration {
    let secs = std::env::var("HOOKD_TEST_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(180);
    Duration::from_secs(secs)
}

/// Watches the current test until the returned guard is dropped.
pub fn watch() -> Watch {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = std::thread::current().name().unwrap_or("(unnamed)").to_owned();
    watched()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, (name, Instant::now()));
    Watch { id }
}

pub struct Watch {
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        watched().lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}
