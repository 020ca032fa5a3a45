//! Workspaces and API keys found before. Neither is changed or deleted once created, so a
//! lookup that found one stays true: authenticating a request and checking its workspace are
//! answered from memory after the first time, instead of a database round trip per request.
//! Only what was found is kept (a key not found yet may be created any moment), at most
//! [`KEEP`] of each; when full, the map starts over.

use std::collections::HashMap;
use std::sync::Mutex;

use hookd_core::store::{ApiKey, Store, StoreResult, Workspace};

const KEEP: usize = 10_000;

#[derive(Default)]
pub struct Known {
    workspaces: Mutex<HashMap<String, Workspace>>,
    keys: Mutex<HashMap<String, ApiKey>>,
}

impl Known {
    pub async fn workspace(&self, store: &dyn Store, id: &str) -> StoreResult<Option<Workspace>> {
        remembered(&self.workspaces, id, store.get_workspace(id)).await
    }

    /// The API key whose SHA-256 is `hash`.
    pub async fn api_key(&self, store: &dyn Store, hash: &str) -> StoreResult<Option<ApiKey>> {
        remembered(&self.keys, hash, store.find_api_key(hash)).await
    }
}

async fn remembered<T: Clone>(
    map: &Mutex<HashMap<String, T>>,
    key: &str,
    load: impl Future<Output = StoreResult<Option<T>>>,
) -> StoreResult<Option<T>> {
    if let Some(found) = map.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
        return Ok(Some(found.clone()));
    }
    let found = load.await?;
    if let Some(value) = &found {
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= KEEP {
            map.clear();
        }
        map.insert(key.to_owned(), value.clone());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_was_not_found_is_looked_up_again_and_what_was_found_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = hookd_sqlite::SqliteStore::open(&dir.path().join("hookd.db"))
            .await
            .unwrap();
        let known = Known::default();
        assert_eq!(known.workspace(&store, "ws_1").await.unwrap(), None);
        let workspace = Workspace {
            id: "ws_1".into(),
            name: "one".into(),
            created_at: 1,
        };
        store.create_workspace(&workspace).await.unwrap();
        assert_eq!(
            known.workspace(&store, "ws_1").await.unwrap(),
            Some(workspace.clone()),
            "a workspace created after a miss is found"
        );
        store.close().await;
        assert_eq!(
            known.workspace(&store, "ws_1").await.unwrap(),
            Some(workspace),
            "found before: answered without the (now closed) database"
        );
        assert!(known.api_key(&store, "hash").await.is_err(), "a miss asks the database");
    }
}
