//! The OpenAPI document: valid, and a fuzzer finds no contradiction or server error.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::start as start_with;
use crate::ok_receiver;

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
