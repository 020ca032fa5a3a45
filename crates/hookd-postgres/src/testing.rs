//! Test support: a store in a schema of its own on the test PostgreSQL, dropped afterwards.
//!
//! Tests find PostgreSQL through `HOOKD_TEST_POSTGRES_URL`. Without it, or when it does not
//! answer, they are skipped with one line saying so — unless `HOOKD_TEST_REQUIRE_POSTGRES=1`
//! (CI sets it), which turns the skip into a failure.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{PgSettings, PgStore};

/// Says on the terminal that the calling test is skipped, and why. Written straight to stderr:
/// the test harness hides what a passing test prints with `eprintln!`, and a skipped test
/// passes.
fn skipped(why: &str) {
    let test = std::thread::current().name().unwrap_or("a PostgreSQL test").to_owned();
    let line = format!("SKIPPED {test}: {why}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// The test database URL, if PostgreSQL tests are to run.
pub async fn url() -> Option<String> {
    let required = std::env::var("HOOKD_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let Ok(url) = std::env::var("HOOKD_TEST_POSTGRES_URL") else {
        assert!(
            !required,
            "HOOKD_TEST_REQUIRE_POSTGRES=1 but HOOKD_TEST_POSTGRES_URL is not set"
        );
        skipped("HOOKD_TEST_POSTGRES_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)");
        return None;
    };
    let reachable = tokio::time::timeout(Duration::from_secs(5), sqlx::PgPool::connect(&url)).await;
    match reachable {
        Ok(Ok(pool)) => {
            pool.close().await;
            Some(url)
        }
        _ => {
            assert!(
                !required,
                "HOOKD_TEST_REQUIRE_POSTGRES=1 but PostgreSQL at {url} does not answer"
            );
            skipped(&format!("PostgreSQL at {url} does not answer"));
            None
        }
    }
}

/// A store in a fresh schema; the schema is dropped when this is.
pub struct TestSchema {
    pub store: PgStore,
    pub schema: String,
    url: String,
}

impl std::ops::Deref for TestSchema {
    type Target = PgStore;

    fn deref(&self) -> &PgStore {
        &self.store
    }
}

/// A unique schema name for this process.
pub fn schema_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "hookd_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Settings for a test store in `schema`.
pub fn settings(url: &str, schema: &str) -> PgSettings {
    PgSettings {
        url: url.to_owned(),
        max_connections: 4,
        acquire_timeout: Duration::from_secs(10),
        statement_timeout: Duration::from_secs(30),
        schema: Some(schema.to_owned()),
    }
}

/// A store in a schema of its own, or `None` when PostgreSQL tests are skipped.
pub async fn fresh() -> Option<TestSchema> {
    let url = url().await?;
    drop_leftovers(&url).await;
    let schema = schema_name();
    let store = PgStore::connect(&settings(&url, &schema))
        .await
        .expect("the test schema is created and migrated");
    Some(TestSchema { store, schema, url })
}

/// Drops the test schemas of processes that are gone (a test killed before its cleanup ran).
pub async fn drop_leftovers(url: &str) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let Ok(pool) = sqlx::PgPool::connect(url).await else {
            return;
        };
        let schemas: Vec<String> =
            sqlx::query_scalar("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'hookd_test_%'")
                .fetch_all(&pool)
                .await
                .unwrap_or_default();
        for schema in schemas {
            let pid = schema.split('_').nth(2).unwrap_or_default();
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&pool)
                    .await;
            }
        }
        pool.close().await;
    })
    .await;
}

/// Drops a test schema, from synchronous code (a drop). It runs on a thread of its own and is
/// not waited for: the store's connections close when the test's runtime ends, and only then
/// can the schema go. What a process exit cuts short, [`fresh`] cleans up later.
pub fn drop_schema(url: &str, schema: &str) {
    let (url, schema) = (url.to_owned(), schema.to_owned());
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        runtime.block_on(async {
            if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&pool)
                    .await;
                pool.close().await;
            }
        });
    });
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        drop_schema(&self.url, &self.schema);
    }
}
