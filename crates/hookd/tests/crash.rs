//! The crash harness: ingest load at a real `hookd serve`, SIGKILL at random moments (20 times
//! by default; `HOOKD_CRASH_KILLS` for a long run), restart, and check with a real receiver
//! that every acknowledged record was delivered at least once. Duplicates are counted and
//! reported. Runs on SQLite, and on PostgreSQL when `HOOKD_TEST_POSTGRES_URL` is set.
//!
//! The kill moments come from a seed printed at the start; `HOOKD_CRASH_SEED=<seed>` repeats
//! a run's moments. Any answer other than 202 before a kill (a 5xx above all) fails the run:
//! only a dead process may fail a request.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookd::client::{Client, ClientError};
use serde_json::json;

const KEY: &str = "hk_admin_crash_harness_key_0123";

/// A small pseudo-random sequence (no dependency needed for picking kill moments).
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

async fn crash_repeatedly(env: &[(&str, &str)]) {
    let kills: usize = std::env::var("HOOKD_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let (hook_url, seen) = common::receiver(Duration::ZERO).await;
    let seed: u64 = std::env::var("HOOKD_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(std::process::id()));
    eprintln!("crash seed {seed} (HOOKD_CRASH_SEED={seed} repeats these kill moments)");
    let mut rng = seed.max(1);
    let acked = Arc::new(Mutex::new(HashSet::<String>::new()));
    // Answers that only a broken server gives: hookd refusing or failing a valid request.
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut ws = String::new();
    let started = Instant::now();
    for round in 0..kills {
        let server = common::start(dir.path(), env);
        let client = Client::new(&server.url, KEY);
        if round == 0 {
            ws = client.create_workspace("crash").await.unwrap().id;
            let hook = json!({ "name": "sink", "kind": "data", "url": hook_url, "batch_max": 20 });
            client.create_webhook(&ws, &hook).await.unwrap();
        }
        // Load from 8 connections until the kill, at a random moment 50–400 ms in.
        let stop = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> = (0..8)
            .map(|worker| {
                let (client, ws, acked, stop, refused) =
                    (client.clone(), ws.clone(), acked.clone(), stop.clone(), refused.clone());
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let records: Vec<_> =
                            (0..5).map(|i| json!({ "device_id": format!("d{worker}"), "tag": "t", "payload": { "n": n, "i": i } })).collect();
                        match client.send_data(&ws, &json!(records), None).await {
                            // Only a 202 counts: it promises the records are on disk.
                            Ok(accepted) => acked.lock().unwrap().extend(accepted.ids),
                            // The process is gone: the connection broke or was refused.
                            Err(ClientError::Unreachable { .. }) => break,
                            // An answer: a live hookd refused or failed the request.
                            Err(other) => {
                                refused.lock().unwrap().push(other.to_string());
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50 + next(&mut rng) % 350)).await;
        server.kill();
        stop.store(true, Ordering::SeqCst);
        for sender in senders {
            sender.await.expect("a sender panicked");
        }
        let refused = refused.lock().unwrap();
        assert!(
            refused.is_empty(),
            "round {round} (seed {seed}): hookd answered {refused:?}"
        );
    }
    // A last start delivers whatever the kills left pending (released leases, expired ones).
    let survivor = common::start(dir.path(), env);
    let acked = acked.lock().unwrap().clone();
    let missing = common::missing_after(&acked, &seen, Duration::from_secs(120)).await;
    let seen = seen.lock().unwrap();
    let duplicates = seen.duplicates();
    eprintln!(
        "seed {seed}: {kills} kills survived; {} records acknowledged, {} delivered, {missing} missing, {duplicates} duplicate requests, {:?}",
        acked.len(),
        seen.records.len(),
        started.elapsed()
    );
    assert!(!acked.is_empty());
    assert_eq!(missing, 0, "seed {seed}: every acknowledged record is delivered");
    drop(seen);
    assert!(survivor.terminate().success());
}

fn base_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("HOOKD_ADMIN_KEY", KEY),
        ("HOOKD_DELIVERY__ALLOW_NETWORKS", "127.0.0.1/32"),
        ("HOOKD_DELIVERY__RESTRICT_TO_NETWORKS", "127.0.0.1/32"),
        ("HOOKD_DELIVERY__MAX_TIMEOUT", "2s"),
        // Leases of killed processes expire quickly, so the last start delivers them soon.
        ("HOOKD_DISPATCH__LEASE", "7s"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_loses_no_acknowledged_record_across_repeated_sigkills() {
    crash_repeatedly(&base_env()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_loses_no_acknowledged_record_across_repeated_sigkills() {
    let Some(db) = hookd_postgres::testing::url().await else {
        return;
    };
    let schema = hookd_postgres::testing::schema_name();
    let mut env = base_env();
    env.push(("HOOKD_DATABASE_URL", &db));
    env.push(("HOOKD_DATABASE__SCHEMA", &schema));
    crash_repeatedly(&env).await;
    hookd_postgres::testing::drop_schema(&db, &schema);
}
