//! What an SQLite file holds once secrets are sealed: the plaintext a webhook row held before
//! is gone from the database file and its write-ahead log, without waiting for a checkpoint.

use std::sync::Arc;

use hookd_core::seal::Sealer;
use hookd_core::store::{Store, Workspace};
use hookd_core::webhook::{Webhook, WebhookSpec};
use hookd_sqlite::SqliteStore;

fn files_hold(dir: &std::path::Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

#[tokio::test]
async fn resealing_leaves_no_plaintext_in_the_file_or_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookd.db");
    let token = "tok-plain-before-sealing-0123";
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .create_workspace(&Workspace {
            id: "ws_1".into(),
            name: "w".into(),
            created_at: 1,
            offline_after: None,
        })
        .await
        .unwrap();
    let spec = serde_json::json!({ "name": "w", "kind": "data", "url": "https://example.com/", "token": token });
    let webhook = Webhook {
        id: "wh_1".into(),
        workspace_id: "ws_1".into(),
        spec: WebhookSpec::from_stored(&spec).unwrap(),
        secret: hookd_core::signature::generate_secret(),
        previous_secrets: Vec::new(),
        disabled_reason: None,
        created_at: 1,
        updated_at: 1,
        health: Default::default(),
    };
    assert!(store.insert_webhook(&webhook, 10).await.unwrap());
    store.close().await;
    assert!(files_hold(dir.path(), token), "stored as given without a key");

    let sealer = Sealer::from_base64(&[Sealer::generate_key()]).unwrap();
    let store = SqliteStore::open(&path).await.unwrap().with_sealer(Arc::new(sealer));
    assert_eq!(store.reseal_webhooks().await.unwrap(), 1);
    // Still open: nothing has been checkpointed on close.
    assert!(!files_hold(dir.path(), token), "the plaintext is overwritten at once");
    assert!(!files_hold(dir.path(), &webhook.secret));
    let read = store.get_webhook("ws_1", "wh_1").await.unwrap().unwrap();
    assert_eq!(read.spec.token.as_deref(), Some(token));
    store.close().await;
}
