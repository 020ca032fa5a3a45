//! The dashboard's pages with 1,000,000 deliveries in the database (the issue's bar: the
//! deliveries and health pages answer in under 200 ms). Not a pass/fail timing test: it seeds
//! the store, times each page over 20 requests and prints the figures for BENCHMARKS.md.
//!
//! ```sh
//! cargo test --release -p hookd --test api dashboard_scale -- --ignored --nocapture
//! ```
//! (`HOOKD_SCALE_DELIVERIES` changes the million.)

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::TestApp;
use crate::receiver::{Receiver, Reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "seeds a million deliveries; run by hand for BENCHMARKS.md"]
async fn dashboard_scale() {
    let total: usize = std::env::var("HOOKD_SCALE_DELIVERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let (ws, key) = app.workspace().await;
    let big = app
        .webhook(
            &ws,
            json!({"name": "pile", "kind": "data", "url": "http://127.0.0.1:9/", "format": "single", "enabled": false}),
        )
        .await;
    let small = app
        .webhook(
            &ws,
            json!({"name": "live", "kind": "data", "url": receiver.url("/"), "format": "single"}),
        )
        .await;

    // A million pending deliveries of a disabled webhook, written as group commit writes them.
    let started = Instant::now();
    app.seed_pending(&ws, big["id"].as_str().unwrap(), total).await;
    eprintln!("seeded {total} deliveries in {:.1} s", started.elapsed().as_secs_f64());
    // And 200 delivered ones of another webhook, through the real dispatcher (attempts, tallies).
    for _ in 0..200 {
        app.send(&ws, "data", json!([crate::helpers::data_point("dev-2", "t")]))
            .await;
    }
    app.dispatch_until_received(&receiver, 200).await;

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed = http
        .post(format!("{}/sign-in", app.base))
        .form(&[("key", key.as_str())])
        .send()
        .await
        .unwrap();
    let cookie = signed.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let newest = app.deliveries(&ws).await[0]["id"].as_str().unwrap().to_owned();
    let (big_id, small_id) = (big["id"].as_str().unwrap(), small["id"].as_str().unwrap());
    let pages = [
        ("deliveries", format!("/w/{ws}/deliveries")),
        ("deliveries, next page", format!("/w/{ws}/deliveries?after={newest}")),
        (
            "deliveries of the big webhook",
            format!("/w/{ws}/deliveries?webhook={big_id}"),
        ),
        (
            "deliveries of the small webhook",
            format!("/w/{ws}/deliveries?webhook={small_id}"),
        ),
        ("deliveries, state pending", format!("/w/{ws}/deliveries?state=pending")),
        (
            "deliveries, state delivered",
            format!("/w/{ws}/deliveries?state=delivered"),
        ),
        (
            "deliveries, state dead (none)",
            format!("/w/{ws}/deliveries?state=dead"),
        ),
        (
            "deliveries before a time",
            format!("/w/{ws}/deliveries?before=2000-01-01T00:00"),
        ),
        ("one delivery", format!("/w/{ws}/deliveries/{newest}")),
        ("health", format!("/w/{ws}/health")),
        ("health of a webhook", format!("/w/{ws}/health?webhook={small_id}")),
        ("webhooks", format!("/w/{ws}/webhooks")),
        ("devices", format!("/w/{ws}/devices")),
    ];
    eprintln!("| page | median | slowest of 20 |\n|---|---|---|");
    for (name, path) in pages {
        let mut took: Vec<Duration> = Vec::new();
        for _ in 0..20 {
            let at = Instant::now();
            let page = http
                .get(format!("{}{path}", app.base))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(page.status(), 200, "{path}");
            page.text().await.unwrap();
            took.push(at.elapsed());
        }
        took.sort();
        eprintln!(
            "| {name} | {:.1} ms | {:.1} ms |",
            took[10].as_secs_f64() * 1e3,
            took[19].as_secs_f64() * 1e3
        );
    }
}
