//! The storage conformance suite on PostgreSQL: each test gets a schema of its own.

hookd_core::store_conformance_tests!(hookd_postgres::testing::fresh().await);
