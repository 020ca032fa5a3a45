//! The `hookd` binary as a user runs it: `hookd serve` starts, prints where it listens and
//! the admin key (once), answers, and stops cleanly on SIGTERM.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/mqtt.rs"]
mod mqtt;

mod encryption;
mod logs;
mod mqtt_crash;
mod openapi;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::start as start_with;

pub(crate) fn start(dir: &std::path::Path) -> common::Server {
    start_with(dir, &[])
}

#[tokio::test]
async fn serve_prints_its_address_and_a_new_admin_key_once_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(dir.path());
    assert!(
        first.lines[0].starts_with("hookd ") && first.url.starts_with("http://127.0.0.1:"),
        "{:?}",
        first.lines
    );
    assert!(first.lines[2].starts_with("admin key (shown once"), "{:?}", first.lines);
    let key = first.lines[3].trim().to_owned();

    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{}/healthz", first.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let created = client
        .post(format!("{}/v1/workspaces", first.url))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "name": "first" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("admin.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(first.terminate().success());

    // The second start reuses the stored key and does not print it again.
    let second = start(dir.path());
    assert!(second.lines[2].starts_with("admin key: in "), "{:?}", second.lines);
    assert!(!second.lines.iter().any(|l| l.contains(&key)));
    let listed = client
        .get(format!("{}/v1/workspaces", second.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    assert!(second.terminate().success());
}

#[test]
fn a_bad_configuration_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("HOOKD_DISPATCH__LEASE", "10s")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("dispatch.lease"), "{stderr}");
}

#[test]
fn a_damaged_or_missing_database_stops_the_start_with_a_clear_error() {
    let run = |dir: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_hookd"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env_remove("HOOKD_ADMIN_KEY")
            .output()
            .unwrap()
    };
    let damaged = tempfile::tempdir().unwrap();
    std::fs::write(
        damaged.path().join("hookd.db"),
        b"this is not a SQLite database, it is a mess of bytes...",
    )
    .unwrap();
    let out = run(damaged.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open the database") && stderr.contains("hookd.db"),
        "{stderr}"
    );

    let missing = tempfile::tempdir().unwrap();
    std::fs::write(missing.path().join("admin.key"), "hk_admin_left_by_an_earlier_start\n").unwrap();
    let out = run(missing.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("has no database"), "{stderr}");
}

#[test]
fn flags_override_the_environment_which_overrides_the_config_file() {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (file_port, env_port, flag_port) = (free(), free(), free());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookd.toml");
    std::fs::write(&config, format!("listen = \"127.0.0.1:{file_port}\"\n")).unwrap();
    let listening = |env: bool, flag: bool| {
        let data = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookd"));
        command
            .args(["serve", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(data.path())
            .env_remove("HOOKD_LISTEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if env {
            command.env("HOOKD_LISTEN", format!("127.0.0.1:{env_port}"));
        }
        if flag {
            command.args(["--listen", &format!("127.0.0.1:{flag_port}")]);
        }
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        line.trim().rsplit(':').next().unwrap().parse::<u16>().unwrap()
    };
    assert_eq!(listening(false, false), file_port, "the file over the defaults");
    assert_eq!(listening(true, false), env_port, "the environment over the file");
    assert_eq!(listening(true, true), flag_port, "a flag over the environment");
}

#[tokio::test]
async fn an_api_process_takes_records_and_a_worker_process_delivers_them() {
    let Some(db) = hookd_postgres::testing::url().await else {
        return;
    };
    let schema = hookd_postgres::testing::schema_name();
    let admin = "hk_admin_roles_test_key_01234567";
    let (hook_url, seen) = common::receiver(Duration::ZERO).await;
    let env = |role: &'static str| -> Vec<(&str, String)> {
        vec![
            ("HOOKD_DATABASE_URL", db.clone()),
            ("HOOKD_DATABASE__SCHEMA", schema.clone()),
            ("HOOKD_ADMIN_KEY", admin.into()),
            ("HOOKD_DELIVERY__ALLOW_NETWORKS", "127.0.0.1/32".into()),
            ("HOOKD_ROLE", role.into()),
        ]
    };
    let start = |env: Vec<(&str, String)>| {
        let dir = tempfile::tempdir().unwrap();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        (common::start(dir.path(), &env), dir)
    };
    let (api, _api_dir) = start(env("api"));
    let client = hookd::client::Client::new(&api.url, admin);
    let ws = client.create_workspace("roles").await.unwrap().id;
    let hook = serde_json::json!({ "name": "sink", "kind": "data", "url": hook_url, "format": "single" });
    client.create_webhook(&ws, &hook).await.unwrap();
    let record = serde_json::json!({ "device_id": "d", "tag": "t", "payload": 1 });
    let ids = client.send_data(&ws, &record, None).await.unwrap().ids;

    let (worker, _worker_dir) = start(env("worker"));
    let acked = ids.into_iter().collect();
    assert_eq!(
        common::missing_after(&acked, &seen, Duration::from_secs(10)).await,
        0,
        "the worker delivered"
    );
    let metrics = |url: String| async move { reqwest::get(url).await.unwrap().text().await.unwrap() };
    let delivered = "hookd_attempts_total{outcome=\"delivered\"} 1";
    assert!(
        metrics(format!("{}/metrics", worker.url)).await.contains(delivered),
        "the worker made the attempt"
    );
    assert!(
        !metrics(format!("{}/metrics", api.url))
            .await
            .contains("hookd_attempts_total"),
        "the api process made none"
    );
    let on_worker = reqwest::Client::new()
        .get(format!("{}/v1/workspaces", worker.url))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(on_worker.status(), 404, "a worker serves no API");
    assert_eq!(
        reqwest::get(format!("{}/healthz", worker.url)).await.unwrap().status(),
        200
    );
    assert!(api.terminate().success());
    assert!(worker.terminate().success());
    hookd_postgres::testing::drop_schema(&db, &schema);
}

/// A receiver answering 200 to everything, on loopback.
pub(crate) async fn ok_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async { "ok" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}
