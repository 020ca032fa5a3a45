//! The CLI end to end: the real `hookd` binary against a real server on port 0.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use hookd::Dispatch;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::receiver::{Receiver, Reply};

/// Runs `hookd` with `args` against `app` as the admin; returns the output. Async, so the
/// server in this process keeps serving while the CLI runs.
pub async fn hookd(app: &TestApp, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["--server", &app.base])
        .args(args)
        .env("HOOKD_KEY", &app.admin)
        .env_remove("HOOKD_WORKSPACE")
        .output()
        .await
        .expect("the CLI runs")
}

/// Runs `hookd … --json`, asserting success, and parses what it printed.
pub async fn hookd_json(app: &TestApp, args: &[&str]) -> Value {
    let output = hookd(app, &[args, &["--json"]].concat()).await;
    assert!(
        output.status.success(),
        "hookd {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "hookd {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[tokio::test]
async fn the_cli_creates_sends_shows_replays_and_rotates() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = TestApp::spawn_in(dir.clone(), |_| {}, Dispatch::Loop).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let ws = hookd_json(&app, &["workspaces", "create", "--name", "plant"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A webhook with every flag.
    let url = receiver.url("/hooks");
    let webhook = hookd_json(
        &app,
        &[
            "webhooks",
            "create",
            "-w",
            &ws,
            "--name",
            "line 3",
            "--kind",
            "data",
            "--url",
            &url,
            "--method",
            "POST",
            "--fleet",
            "f1",
            "--tag",
            "t1",
            "--tag",
            "t2",
            "--device",
            "d1",
            "--device",
            "d2",
            "--label",
            "site=a",
            "--token",
            "s3cret",
            "--token-header",
            "Verifier-Token",
            "--header",
            "X-Device={{device_id}}",
            "--format",
            "single",
            "--batch-max",
            "50",
            "--timeout",
            "10s",
            "--retry",
            "5s,5m,30m",
        ],
    )
    .await;
    let wh = webhook["id"].as_str().unwrap().to_owned();
    assert_eq!(webhook["name"], "line 3");
    assert_eq!(webhook["filters"]["tags"], serde_json::json!(["t1", "t2"]));
    assert_eq!(webhook["filters"]["labels"]["site"], "a");
    assert_eq!(webhook["token_header"], "Verifier-Token");
    assert_eq!(webhook["headers"]["X-Device"], "{{device_id}}");
    assert_eq!(
        (webhook["format"].as_str(), webhook["batch_max"].as_u64()),
        (Some("single"), Some(50))
    );
    assert_eq!(webhook["retry_schedule"], serde_json::json!(["5s", "5m", "30m"]));
    let old_secret = webhook["secret"].as_str().unwrap().to_owned();

    // Records from an NDJSON file.
    let file = dir.path().join("records.ndjson");
    let mut out = std::fs::File::create(&file).unwrap();
    for device in ["d1", "d2", "d3"] {
        writeln!(
            out,
            r#"{{"device_id":"{device}","tag":"t1","fleet_id":"f1","labels":{{"site":"a"}},"payload":{{"n":1}}}}"#
        )
        .unwrap();
    }
    let sent = hookd_json(&app, &["send", "data", "-w", &ws, "--file", file.to_str().unwrap()]).await;
    assert_eq!(sent["ids"].as_array().unwrap().len(), 3);
    let got = receiver.wait_for(2, Duration::from_secs(10)).await; // d3 matches no device filter
    assert_eq!(got[0].header("verifier-token"), Some("s3cret"));

    // The delivery log. Results are written just after the receiver answers: poll for them.
    let delivered = async |state: &str| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let list = hookd_json(&app, &["deliveries", "list", "-w", &ws, "--webhook", &wh]).await;
            if list.as_array().unwrap().iter().all(|d| d["state"] == state) {
                return list;
            }
            assert!(tokio::time::Instant::now() < deadline, "not all {state}: {list}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let list = delivered("delivered").await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let dlv = list[0]["id"].as_str().unwrap().to_owned();
    let shown = hookd_json(&app, &["deliveries", "show", "-w", &ws, &dlv]).await;
    assert_eq!(shown["attempts"][0]["status"], 200);
    let table = hookd(&app, &["deliveries", "show", "-w", &ws, &dlv]).await;
    assert!(String::from_utf8_lossy(&table.stdout).contains("the receiver answered 200 OK; delivered"));

    // Replay: the dry run sends nothing, the real one sends both again.
    let replay = [
        "replay",
        "-w",
        &ws,
        "--webhook",
        &wh,
        "--since",
        "2000-01-01T00:00:00Z",
        "--state",
        "delivered",
    ];
    let dry = hookd_json(&app, &[&replay[..], &["--dry-run"]].concat()).await;
    assert_eq!(dry.as_array().unwrap().len(), 2);
    assert_eq!(receiver.requests().len(), 2);
    let replayed = hookd_json(&app, &replay).await;
    assert_eq!(replayed["replayed"], 2);
    receiver.wait_for(4, Duration::from_secs(10)).await;
    let again = delivered("delivered").await;
    assert!(
        again.as_array().unwrap().iter().all(|d| d["attempt_count"] == 2),
        "{again}"
    );

    // A retry by hand: pending at once, then delivered a third time.
    let retried = hookd_json(&app, &["deliveries", "retry", "-w", &ws, &dlv]).await;
    assert_eq!(retried["state"], "pending");
    receiver.wait_for(5, Duration::from_secs(10)).await;
    delivered("delivered").await;

    // Rotation.
    let rotated = hookd_json(&app, &["webhooks", "rotate-secret", "-w", &ws, &wh]).await;
    assert_ne!(rotated["secret"].as_str().unwrap(), old_secret);
    assert_eq!(rotated["previous"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn cli_errors_name_the_api_code_and_use_documented_exit_codes() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let bad = hookd(
        &app,
        &[
            "webhooks",
            "create",
            "-w",
            &ws,
            "--kind",
            "data",
            "--url",
            "ftp://example.com",
        ],
    )
    .await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid_url"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let missing = hookd(&app, &["webhooks", "create", "-w", &ws, "--url", "https://example.com"]).await;
    assert_eq!(missing.status.code(), Some(2));
    let unreachable = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["--server", "http://127.0.0.1:9", "--key", "k", "workspaces", "list"])
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(3));
    for shell in ["bash", "zsh", "fish"] {
        let completions = hookd(&app, &["completions", shell]).await;
        assert!(
            completions.status.success() && !completions.stdout.is_empty(),
            "{shell}"
        );
    }
    let man = hookd(&app, &["man"]).await;
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH hookd"));
}

/// Runs `hookd verify` on `body` and returns its exit code and stderr.
fn verify(secret: &str, id: &str, timestamp: i64, signature: &str, body: &[u8]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args([
            "verify",
            "--secret",
            secret,
            "--id",
            id,
            "--timestamp",
            &timestamp.to_string(),
            "--signature",
            signature,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn verify_accepts_an_independent_signature_and_refuses_each_input_changed_alone() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let signer = standardwebhooks::Webhook::new(secret).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let body = br#"{"batch_id":"dlv_1","result":[]}"#;
    let signature = signer.sign("dlv_1", now, body).unwrap();
    assert_eq!(
        verify(secret, "dlv_1", now, &signature, body).0,
        Some(0),
        "the valid request"
    );

    // HMAC cannot say whether the secret or the message is wrong, so both answer the same;
    // changing one input at a time from the valid request shows that each one counts.
    let no_match = "no v1 signature in the header matches the body (wrong secret, or the body was changed)";
    let other_secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let changed_body: &[u8] = br#"{"batch_id":"dlv_1","result":[1]}"#;
    for (what, secret, id, body) in [
        ("another secret", other_secret, "dlv_1", &body[..]),
        ("a changed body", secret, "dlv_1", changed_body),
        ("another message id", secret, "dlv_2", &body[..]),
    ] {
        let (code, why) = verify(secret, id, now, &signature, body);
        assert_eq!(code, Some(1), "{what}");
        assert_eq!(why.trim(), format!("error: invalid signature: {no_match}"), "{what}");
    }
    let stale = now - 3600;
    let (code, why) = verify(
        secret,
        "dlv_1",
        stale,
        &signer.sign("dlv_1", stale, body).unwrap(),
        body,
    );
    assert_eq!(code, Some(1));
    assert!(why.contains("more than the 300s allowed"), "{why}");
    let (code, why) = verify(secret, "dlv_1", now + 1, &signature, body);
    assert_eq!(code, Some(1), "the timestamp is signed too");
    assert!(why.contains(no_match), "{why}");
}

#[tokio::test]
async fn sources_are_created_with_their_forwarding_webhook_and_their_log_read_from_the_cli() {
    let app = TestApp::spawn().await;
    let (ws, _) = app.workspace().await;
    let receiver = Receiver::start(Reply::Status(204)).await;
    let created = hookd_json(
        &app,
        &[
            "sources",
            "create",
            "-w",
            &ws,
            "--name",
            "plc",
            "--scheme",
            "token",
            "--header",
            "Verifier-Token",
            "--secret",
            "t0k3n",
            "--record-type",
            "data",
            "--split",
            ".[]",
            "--field",
            "device_id=.circuit",
            "--field",
            "tag=.dev",
            "--forward-to",
            &receiver.url("/plc"),
        ],
    )
    .await;
    let src = created["source"]["id"].as_str().unwrap();
    assert_eq!(created["forwarding"]["filters"]["sources"], json!([src]));
    assert!(
        created["forwarding"]["secret"].as_str().unwrap().starts_with("whsec_"),
        "its signing secret"
    );
    assert_eq!(
        created["source"]["fields"],
        json!({"device_id": ".circuit", "tag": ".dev"})
    );
    let (status, _) = app
        .post_in(
            src,
            &[("Verifier-Token", "t0k3n")],
            r#"[{"dev": "relay", "circuit": "1_03", "value": 0}]"#,
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    let (status, _) = app.post_in(src, &[("Verifier-Token", "nope")], "[]").await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    app.dispatch_until_received(&receiver, 1).await;
    assert_eq!(receiver.requests()[0].json()["result"][0]["device_id"], "1_03");

    let log = hookd_json(&app, &["sources", "requests", "-w", &ws, src, "--outcome", "rejected"]).await;
    assert_eq!(log[0]["reason"], "bad_token");
    let table = hookd(&app, &["sources", "requests", "-w", &ws, src]).await;
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("bad_token") && text.contains("accepted"), "{text}");
    let preview = hookd_json(
        &app,
        &[
            "sources",
            "preview",
            "-w",
            &ws,
            src,
            "--field",
            "device_id=.circuit",
            "--field",
            "tag=.value",
        ],
    )
    .await;
    assert_eq!(
        preview.as_array().unwrap().len(),
        1,
        "the rejected one is not previewed: {preview}"
    );
    assert_eq!(
        preview[0]["records"][0]["tag"], "0",
        "the draft's fields, a number as text: {preview}"
    );
    let listed = hookd_json(&app, &["sources", "list", "-w", &ws]).await;
    assert_eq!(listed[0]["id"], src);
    let updated = hookd_json(&app, &["sources", "update", "-w", &ws, src, "--name", "plc-2"]).await;
    assert_eq!(updated["name"], "plc-2");
    let missing = hookd(&app, &["sources", "create", "-w", &ws, "--name", "x"]).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--scheme is required"));
    let deleted = hookd(&app, &["sources", "delete", "-w", &ws, src]).await;
    assert!(deleted.status.success());
}
