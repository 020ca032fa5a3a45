//! The `hookd` binary as a user runs it: `hookd serve` starts, prints where it listens and
//! the admin key (once), answers, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Started {
    child: Child,
    lines: Vec<String>,
    url: String,
}

/// Starts `hookd serve` on port 0 in `dir` and reads its start-up lines.
fn start(dir: &std::path::Path) -> Started {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("HOOKD_ADMIN_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hookd starts");
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines: Vec<String> = Vec::new();
    while lines.len() < 3 || (lines[2].starts_with("admin key (shown once") && lines.len() < 4) {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "hookd exited early: {lines:?}"
        );
        lines.push(line.trim_end().to_owned());
    }
    let url = lines[0].rsplit(' ').next().unwrap().to_owned();
    Started { child, lines, url }
}

fn terminate(mut started: Started) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &started.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(exit) = started.child.try_wait().unwrap() {
            return exit;
        }
        assert!(Instant::now() < deadline, "hookd did not stop within 15s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
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
        .json(&serde_json::json!({}))
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
    assert!(terminate(first).success());

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
    assert!(terminate(second).success());
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
