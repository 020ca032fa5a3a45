//! The storage conformance suite on PostgreSQL: each test gets a schema of its own.

hookd_core::store_conformance_tests!(hookd_postgres::testing::fresh().await);

#[tokio::test]
async fn secrets_are_sealed_at_rest() {
    use std::sync::Arc;

    use hookd_core::store::Store;
    use hookd_postgres::{PgStore, testing};

    let Some(fresh) = testing::fresh().await else { return };
    let settings = testing::settings(&testing::url().await.unwrap(), &fresh.schema);
    hookd_core::conformance::secrets_are_sealed_at_rest(async |sealer| {
        let store = PgStore::connect(&settings).await.unwrap().with_sealer(Arc::new(sealer));
        Box::new(store) as Box<dyn Store>
    })
    .await;
}
