//! The storage conformance suite on SQLite: each test gets its own database file.

use std::sync::Arc;

use hookd_core::store::Store;
use hookd_sqlite::SqliteStore;

/// A store on a fresh file; the directory lives as long as the store.
struct Fresh {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Fresh {
    type Target = SqliteStore;

    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

async fn fresh() -> Option<Fresh> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("hookd.db")).await.unwrap();
    Some(Fresh { store, _dir: dir })
}

hookd_core::store_conformance_tests!(fresh().await);

#[tokio::test]
async fn secrets_are_sealed_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookd.db");
    hookd_core::conformance::secrets_are_sealed_at_rest(async |sealer| {
        let store = SqliteStore::open(&path).await.unwrap().with_sealer(Arc::new(sealer));
        Box::new(store) as Box<dyn Store>
    })
    .await;
    let file = std::fs::read(&path).unwrap();
    assert!(
        !file.windows(6).any(|w| w == b"whsec_"),
        "no secret in the database file"
    );
}
