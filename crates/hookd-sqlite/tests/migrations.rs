//! Opening database files written by other hookd versions.

use hookd_core::store::Store;
use hookd_sqlite::SqliteStore;

const EARLIER: [&str; 4] = [
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_breaker_and_lanes.sql"),
    include_str!("../migrations/0003_retention.sql"),
    include_str!("../migrations/0004_failing_since.sql"),
];

/// A file as hookd left it when sqlx ran its migrations: schema 4, recorded in
/// `_sqlx_migrations`, `user_version` untouched.
fn file_from_sqlx_days(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    for sql in EARLIER {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
           installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
           checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);
         INSERT INTO _sqlx_migrations VALUES (1, 'init', 0, 1, x'', 0), (2, 'breaker', 0, 1, x'', 0), \
           (3, 'retention', 0, 1, x'', 0), (4, 'failing since', 0, 1, x'', 0);
         INSERT INTO workspaces (id, name, created_at) VALUES ('ws_kept', 'kept', 1);",
    )
    .unwrap();
}

#[tokio::test]
async fn a_file_migrated_by_sqlx_continues_from_where_sqlx_left_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookd.db");
    file_from_sqlx_days(&path);
    let store = SqliteStore::open(&path).await.unwrap();
    let kept = store.get_workspace("ws_kept").await.unwrap();
    assert_eq!(kept.map(|w| w.name), Some("kept".to_owned()), "data survives");
    store.close().await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(
        version, 10,
        "the migrations sqlx had not run were applied, and only them"
    );
    // Opening again changes nothing.
    drop(conn);
    SqliteStore::open(&path).await.unwrap().close().await;
}

#[tokio::test]
async fn a_file_from_a_newer_hookd_is_refused_with_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookd.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).await.unwrap_err();
    let message = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    assert!(message.contains("schema version 99"), "{message}");
}
