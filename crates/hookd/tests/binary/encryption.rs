//! Secrets encrypted at rest: turned on, rotated, a wrong key refused.

use std::process::Command;

use crate::common::start as start_with;

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
