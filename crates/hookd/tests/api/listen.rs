//! `hookd listen` standing in for a real receiver, and `hookd deliveries tail` across a
//! restart of hookd.

use std::process::Stdio;
use std::time::Duration;

use hookd::Dispatch;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{TestApp, data_point};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Starts `hookd listen` with `args` on a free port; returns the child and its URL.
async fn listen(args: &[&str]) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["listen", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("hookd listen starts")
        .unwrap()
        .unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in `{first}`"))
        .to_owned();
    // Keep reading what it prints, so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

/// Posts `body` with the given Standard Webhooks headers; returns the status and body.
async fn post(url: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
    let mut request = reqwest::Client::new().post(url).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn signed(body: &str, secret: &str) -> Vec<(&'static str, String)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signature = standardwebhooks::Webhook::new(secret)
        .unwrap()
        .sign("dlv_1", now, body.as_bytes())
        .unwrap();
    vec![
        ("webhook-id", "dlv_1".to_owned()),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", signature),
    ]
}

#[tokio::test]
async fn listen_with_a_secret_answers_401_to_unsigned_or_forged_requests_and_says_why() {
    let (_child, url) = listen(&["--secret", SECRET, "--respond", "202"]).await;
    let body = r#"{"batch_id":"dlv_1","result":[]}"#;
    assert_eq!(
        post(&url, &signed(body, SECRET), body).await.0,
        202,
        "a valid signature"
    );

    let (status, reason) = post(&url, &[], body).await;
    assert_eq!((status, reason.trim()), (401, "no webhook-id header"));
    let mut no_timestamp = signed(body, SECRET);
    no_timestamp.remove(1);
    let (status, reason) = post(&url, &no_timestamp, body).await;
    assert_eq!((status, reason.trim()), (401, "no webhook-timestamp header"));
    let other = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (status, reason) = post(&url, &signed(body, other), body).await;
    assert_eq!(status, 401, "signed with another secret");
    assert!(reason.contains("no v1 signature"), "{reason}");
    let (status, _) = post(&url, &signed(body, SECRET), r#"{"batch_id":"dlv_1","result":[1]}"#).await;
    assert_eq!(status, 401, "a body changed after signing");
}

#[tokio::test]
async fn listen_can_accept_what_does_not_verify_and_check_nothing_without_a_secret() {
    let (_lenient, url) = listen(&["--secret", SECRET, "--accept-invalid"]).await;
    assert_eq!(post(&url, &[], "{}").await.0, 200);
    let (_open, url) = listen(&[]).await;
    assert_eq!(post(&url, &[], "{}").await.0, 200);
    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["listen", "--accept-invalid"])
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "--accept-invalid needs --secret");
}

/// The first line `lines` prints that contains `what`, within 15 s.
async fn wait_for<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut tokio::io::Lines<R>, what: &str) -> String {
    let deadline = Duration::from_secs(15);
    tokio::time::timeout(deadline, async {
        loop {
            let line = lines.next_line().await.unwrap().expect("tail ended early");
            if line.contains(what) {
                return line;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("tail never printed `{what}`"))
}

#[tokio::test]
async fn tail_waits_for_hookd_to_come_back_and_goes_on() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let on_port = move |s: &mut hookd::Settings| s.listen = format!("127.0.0.1:{port}").parse().unwrap();
    let app = TestApp::spawn_in(dir.clone(), on_port, Dispatch::Loop).await;
    let (receiver, ws, _) = app.with_receiver(crate::receiver::Reply::Status(200), json!({})).await;
    let admin = app.admin.clone();
    let mut tail = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args([
            "--server",
            &app.base,
            "deliveries",
            "tail",
            "-w",
            &ws,
            "--every",
            "100ms",
            "--for",
            "30s",
        ])
        .env("HOOKD_KEY", &admin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(tail.stderr.take().unwrap()).lines();
    let mut stdout = BufReader::new(tail.stdout.take().unwrap()).lines();
    wait_for(&mut stderr, "following new attempts").await;

    app.stop().await;
    wait_for(&mut stderr, "is not answering").await;
    let app = TestApp::spawn_in(dir, on_port, Dispatch::Loop).await;
    wait_for(&mut stderr, "reconnected").await;
    app.send(&ws, "data", data_point("dev-after-restart", "t")).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let line = wait_for(&mut stdout, "delivered").await;
    assert!(line.contains("200"), "{line}");
    app.stop().await;
}
