//! The storage conformance suite on SQLite: each test gets its own database file.

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
