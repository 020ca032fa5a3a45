//! The `hookd` binary as a user runs it: `hookd serve` starts, prints where it listens and
//! the admin key (once), answers, and stops cleanly on SIGTERM.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::start as start_with;

fn start(dir: &std::path::Path) -> common::Server {
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

/// Whether the Python tools the API document tests use are installed. `.ci/run` installs them
/// and sets HOOKD_TEST_REQUIRE_TOOLS=1, so CI fails rather than skips without them.
fn python_tools() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import schemathesis, openapi_spec_validator"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("HOOKD_TEST_REQUIRE_TOOLS").is_err(),
            "schemathesis and openapi-spec-validator are required (pip install -r crates/hookd/tests/requirements.txt)"
        );
        eprintln!(
            "skipped: schemathesis / openapi-spec-validator not installed (pip install -r crates/hookd/tests/requirements.txt)"
        );
    }
    found
}

/// A receiver answering 200 to everything, on loopback.
async fn ok_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async { "ok" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_a_fuzzer_finds_no_contradiction_or_server_error() {
    if !python_tools() {
        return;
    }
    const KEY: &str = "hk_admin_fuzzing_key_0123456789";
    let dir = tempfile::tempdir().unwrap();
    // Deliveries may reach loopback only: generated webhook URLs must never leave the machine.
    let server = start_with(
        dir.path(),
        &[
            ("HOOKD_ADMIN_KEY", KEY),
            ("HOOKD_DELIVERY__ALLOW_NETWORKS", "127.0.0.1/32"),
            ("HOOKD_DELIVERY__RESTRICT_TO_NETWORKS", "127.0.0.1/32"),
        ],
    );
    let client = reqwest::Client::new();
    let base = server.url.clone();

    let document = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let spec_path = dir.path().join("openapi.json");
    std::fs::write(&spec_path, &document).unwrap();
    let validated = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&spec_path)
        .output()
        .unwrap();
    assert!(
        validated.status.success(),
        "{}",
        String::from_utf8_lossy(&validated.stdout)
    );
    assert!(document.contains("\"openapi\": \"3.1"), "an OpenAPI 3.1 document");

    // Real objects for the fuzzer to reach past 404s.
    let post = |path: String, body: serde_json::Value| {
        client.post(format!("{base}{path}")).bearer_auth(KEY).json(&body).send()
    };
    let ws: serde_json::Value = post("/v1/workspaces".into(), serde_json::json!({ "name": "secrets" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ws = ws["id"].as_str().unwrap().to_owned();
    let hook = serde_json::json!({ "name": "fuzz", "kind": "data", "url": ok_receiver().await, "timeout": "1s" });
    let wh: serde_json::Value = post(format!("/v1/workspaces/{ws}/webhooks"), hook)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wh = wh["id"].as_str().unwrap().to_owned();
    post(
        format!("/v1/workspaces/{ws}/data"),
        serde_json::json!({ "device_id": "d", "tag": "t", "payload": 1 }),
    )
    .await
    .unwrap();
    let page: serde_json::Value = client
        .get(format!("{base}/v1/workspaces/{ws}/deliveries"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dlv = page["data"][0]["id"].as_str().unwrap().to_owned();

    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "headers = {{ Authorization = \"Bearer {KEY}\" }}\nrequest-timeout = 10.0\n\n[parameters]\nws = \"{ws}\"\nwh = \"{wh}\"\ndlv = \"{dlv}\"\n"
        ),
    )
    .unwrap();
    let mut fuzzer = Command::new("schemathesis")
        .arg("--config-file")
        .arg(&config)
        // The checks that judge responses: no 5xx, and every status, content type, header and
        // body as the document says.
        .args(["run", &format!("{base}/openapi.json"), "--max-examples", "40", "--seed", "1", "--checks"])
        .arg("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("schemathesis runs");
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = fuzzer.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            fuzzer.kill().unwrap();
            panic!("the fuzzer did not finish within 300s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let output = fuzzer.wait_with_output().unwrap();
    assert!(
        status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(server.terminate().success());
}

#[tokio::test]
async fn secrets_tokens_and_keys_never_appear_in_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hookd.log");
    let admin = "hk_admin_secret_logging_key_0123";
    let server = common::start_logging(
        dir.path(),
        &[
            ("HOOKD_ADMIN_KEY", admin),
            ("HOOKD_LOG__LEVEL", "trace"),
            ("HOOKD_DELIVERY__ALLOW_NETWORKS", "127.0.0.1/32"),
            ("HOOKD_DELIVERY__RESTRICT_TO_NETWORKS", "127.0.0.1/32"),
        ],
        &log,
    );
    let client = hookd::client::Client::new(&server.url, admin);
    let ws = client.create_workspace("load").await.unwrap().id;
    let key = client.create_api_key(&ws).await.unwrap().key;
    let token = "tok-very-secret-0123456789";
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let hook = serde_json::json!({ "name": "w", "kind": "data", "url": ok_receiver().await, "token": token, "secret": secret });
    let webhook = hookd::client::Client::new(&server.url, &key)
        .create_webhook(&ws, &hook)
        .await
        .unwrap();
    client
        .send_data(
            &ws,
            &serde_json::json!({ "device_id": "d", "tag": "t", "payload": 1 }),
            None,
        )
        .await
        .unwrap();
    let rotated = client.rotate_secret(&ws, &webhook.webhook.id, None).await.unwrap();
    client.test_webhook(&ws, &webhook.webhook.id).await.unwrap();
    // A rejected key and a bad body are logged as failures, without their contents.
    assert!(
        hookd::client::Client::new(&server.url, "hk_wrong_key_abcdef")
            .list_workspaces()
            .await
            .is_err()
    );
    assert!(server.terminate().success());

    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.len() > 1000, "trace logging produced output");
    for needle in [
        admin,
        key.as_str(),
        token,
        secret,
        rotated.secret.as_str(),
        "hk_wrong_key_abcdef",
    ] {
        assert!(!logs.contains(needle), "the logs contain a secret: {needle}");
    }
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

#[tokio::test]
async fn secrets_are_encrypted_at_rest_with_the_configured_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = hookd_core::seal::Sealer::generate_key();
    let admin = "hk_admin_encryption_test_key_0123";
    let env = [
        ("HOOKD_ADMIN_KEY", admin),
        ("HOOKD_SECRETS__ENCRYPTION_KEYS", key.as_str()),
    ];
    let server = start_with(dir.path(), &env);
    let client = hookd::client::Client::new(&server.url, admin);
    let ws = client.create_workspace("load").await.unwrap().id;
    let (token, secret) = ("tok-at-rest-0123456789", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let url = "https://user:password-in-url@example.com/hook";
    let hook = serde_json::json!({ "name": "w", "kind": "data", "url": url, "token": token, "secret": secret });
    let webhook = client.create_webhook(&ws, &hook).await.unwrap().webhook;
    assert!(server.terminate().success());
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        stored.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    for needle in [token, secret, "password-in-url"] {
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} is stored in plain text"
        );
    }

    // Without the key hookd refuses to start, and says which key it needs.
    let out = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("HOOKD_ADMIN_KEY", admin)
        .env_remove("HOOKD_SECRETS__ENCRYPTION_KEYS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("secrets.encryption_keys") && stderr.contains("no encryption key is configured"),
        "{stderr}"
    );

    // With it, everything reads as before.
    let server = start_with(dir.path(), &env);
    let client = hookd::client::Client::new(&server.url, admin);
    let read = client.get_webhook(&ws, &webhook.id).await.unwrap();
    assert_eq!(
        read.url, "https://user:***@example.com/hook",
        "read back, shown redacted"
    );
    let signing = client.read_secret(&ws, &webhook.id).await.unwrap();
    assert_eq!(signing.secret, secret, "the secret opens with the key");
    assert!(server.terminate().success());
}

#[tokio::test]
async fn new_records_are_handed_to_the_dispatcher_at_once_and_logged_like_any_delivery() {
    use hookd::client::{Client, DeliveryFilter};
    const KEY: &str = "hk_admin_handoff_test_key_0123456";
    let dir = tempfile::tempdir().unwrap();
    let server = start_with(
        dir.path(),
        &[
            ("HOOKD_ADMIN_KEY", KEY),
            ("HOOKD_DELIVERY__ALLOW_NETWORKS", "127.0.0.1/32"),
        ],
    );
    let client = Client::new(&server.url, KEY);
    let ws = client.create_workspace("handoff").await.unwrap().id;
    let (hook_url, seen) = common::receiver(Duration::ZERO).await;
    let hook = serde_json::json!({ "name": "sink", "kind": "data", "url": hook_url });
    client.create_webhook(&ws, &hook).await.unwrap();
    let mut acked = std::collections::HashSet::new();
    for n in 0..20 {
        let record = serde_json::json!({ "device_id": "d1", "tag": "t", "payload": { "n": n } });
        acked.extend(client.send_data(&ws, &record, None).await.unwrap().ids);
    }
    assert_eq!(common::missing_after(&acked, &seen, Duration::from_secs(30)).await, 0);
    assert_eq!(seen.lock().unwrap().duplicates(), 0);

    let metrics = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let handed: f64 = metrics
        .lines()
        .find(|l| l.starts_with("hookd_deliveries_handed_over_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        handed >= 15.0,
        "an idle dispatcher takes new deliveries at once: {handed} of 20"
    );
    // Each is logged like any delivery: delivered, after one attempt. (Results are written
    // just after the receiver answers, so poll briefly.)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = client.list_deliveries(&ws, &DeliveryFilter::default()).await.unwrap();
        let done = page
            .data
            .iter()
            .filter(|d| d.state == hookd::model::DeliveryState::Delivered && d.attempt_count == 1)
            .count();
        if done == 20 {
            break;
        }
        assert!(Instant::now() < deadline, "{done} of 20 logged as delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.terminate().success());
}

/// A receiver on loopback that always answers 503; returns its URL.
async fn failing_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy") });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Starts hookd logging to a file with `env`, makes a workspace, a webhook to a failing
/// receiver, sends one record and waits for its failed attempt; returns the log.
async fn logs_of_a_failed_delivery(env: &[(&str, &str)]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hookd.log");
    let admin = "hk_admin_access_logging_key_0123";
    let mut all = vec![
        ("HOOKD_ADMIN_KEY", admin),
        ("HOOKD_DELIVERY__ALLOW_NETWORKS", "127.0.0.1/32"),
        ("HOOKD_DELIVERY__RESTRICT_TO_NETWORKS", "127.0.0.1/32"),
    ];
    all.extend_from_slice(env);
    let server = common::start_logging(dir.path(), &all, &log);
    let client = hookd::client::Client::new(&server.url, admin);
    let ws = client.create_workspace("logs").await.unwrap().id;
    let hook = serde_json::json!({ "name": "w", "kind": "data", "url": failing_receiver().await });
    client.create_webhook(&ws, &hook).await.unwrap();
    let record = serde_json::json!({ "device_id": "d", "tag": "t", "payload": 1 });
    client.send_data(&ws, &record, None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = client.list_deliveries(&ws, &Default::default()).await.unwrap();
        if page.data.first().is_some_and(|d| d.attempt_count > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "no attempt within 10s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.health().await.unwrap();
    assert!(server.terminate().success());
    (std::fs::read_to_string(&log).unwrap(), ws)
}

#[tokio::test]
async fn serve_logs_each_api_request_and_each_failed_attempt_without_colours() {
    let (logs, ws) = logs_of_a_failed_delivery(&[]).await;
    assert!(
        !logs.contains('\u{1b}'),
        "no ANSI colours when stderr is a file:\n{logs}"
    );
    let ingest = logs
        .lines()
        .find(|l| l.contains("route=/v1/workspaces/{ws}/data"))
        .unwrap_or_else(|| panic!("no line for the ingest request:\n{logs}"));
    for part in [
        "INFO",
        "request",
        "method=POST",
        "status=202",
        "ms=",
        &format!("workspace={ws}"),
    ] {
        assert!(ingest.contains(part), "no `{part}` in `{ingest}`");
    }
    let attempt = logs
        .lines()
        .find(|l| l.contains("attempt failed"))
        .unwrap_or_else(|| panic!("no line for the failed attempt:\n{logs}"));
    for part in [
        "delivery=dlv_",
        "webhook=wh_",
        "outcome=pending",
        "status=503",
        "retrying in",
    ] {
        assert!(attempt.contains(part), "no `{part}` in `{attempt}`");
    }
    assert!(!logs.contains("route=/healthz"), "probes are not logged at info");
}

#[tokio::test]
async fn serve_logs_json_lines_with_log_format_json() {
    let (logs, _) = logs_of_a_failed_delivery(&[("HOOKD_LOG__FORMAT", "json")]).await;
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "request" && l["status"] == 202),
        "{logs}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "attempt failed" && l["status"] == 503)
    );
    let attempt = lines.iter().find(|l| l["message"] == "attempt failed").unwrap();
    let span = &attempt["span"];
    assert_eq!(span["name"], "attempt", "{attempt}");
    for (field, prefix) in [("delivery_id", "dlv_"), ("webhook_id", "wh_"), ("workspace_id", "ws_")] {
        assert!(
            span[field].as_str().is_some_and(|v| v.starts_with(prefix)),
            "the attempt's span names its {field}: {attempt}"
        );
    }
}

#[test]
fn serve_takes_log_format_as_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["serve", "--log-format", "yaml", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("[possible values: text, json]"));
}

/// Every byte of the data directory's files.
fn stored_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        stored.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    stored
}

fn holds(stored: &[u8], needle: &str) -> bool {
    stored.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn encryption_is_turned_on_for_existing_data_rotated_and_refuses_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let admin = "hk_admin_reseal_test_key_0123456";
    let (first, second, wrong) = (
        hookd_core::seal::Sealer::generate_key(),
        hookd_core::seal::Sealer::generate_key(),
        hookd_core::seal::Sealer::generate_key(),
    );
    let with_keys = |keys: &str| {
        let mut env = vec![("HOOKD_ADMIN_KEY", admin.to_owned())];
        if !keys.is_empty() {
            env.push(("HOOKD_SECRETS__ENCRYPTION_KEYS", keys.to_owned()));
        }
        env
    };
    let start = |env: &[(&str, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        start_with(dir.path(), &env)
    };
    let (token, header) = ("tok-before-encryption-0123", "hdr-secret-value-0123");
    let hook = serde_json::json!({ "name": "w", "kind": "data", "url": "https://user:pass-in-url-0123@example.com/",
        "token": token, "headers": { "X-Api-Key": header } });

    // Without keys: stored as given (API keys never are: only their hash).
    let server = start(&with_keys(""));
    let client = hookd::client::Client::new(&server.url, admin);
    let ws = client.create_workspace("reseal").await.unwrap().id;
    let api_key = client.create_api_key(&ws).await.unwrap().key;
    let webhook = client.create_webhook(&ws, &hook).await.unwrap();
    assert!(server.terminate().success());
    let stored = stored_bytes(dir.path());
    assert!(holds(&stored, token), "without keys the token is stored as given");
    assert!(
        !holds(&stored, &api_key[3..]),
        "an API key is never stored, only its hash"
    );

    // A key added: the next start seals what is stored.
    let server = start(&with_keys(&first));
    assert!(server.terminate().success());
    let stored = stored_bytes(dir.path());
    for needle in [
        token,
        header,
        "pass-in-url-0123",
        webhook.secret.as_str(),
        &api_key[3..],
    ] {
        assert!(!holds(&stored, needle), "{needle} is still stored in plain text");
    }

    // Rotated: the new key first, the old one after it, one start; then the new key alone.
    let server = start(&with_keys(&format!("{second},{first}")));
    assert!(server.terminate().success());
    let server = start(&with_keys(&second));
    let client = hookd::client::Client::new(&server.url, admin);
    let read = client.read_secret(&ws, &webhook.webhook.id).await.unwrap();
    assert_eq!(read.secret, webhook.secret, "sealed with the new key only, it reads");
    assert!(server.terminate().success());

    // A key that sealed nothing here: the start is refused, naming the key it needs.
    let out = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("HOOKD_ADMIN_KEY", admin)
        .env("HOOKD_SECRETS__ENCRYPTION_KEYS", &wrong)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("secrets.encryption_keys") && stderr.contains("key"),
        "{stderr}"
    );
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
