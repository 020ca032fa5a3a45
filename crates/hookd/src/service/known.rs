//! Workspaces and API keys found before. Authenticating a request and checking its workspace
//! are answered from memory after the first time, instead of a database round trip per
//! request. Only what was found is kept (a key not found yet may be created any moment), at
//! most [`KEEP`] of each; when full, the map starts over.
//!
//! Revoking a key or deleting a workspace forgets everything remembered, in this process at
//! once and in the others when the store tells them ([`hookd_core::store::Change::Credentials`]),
//! so a revoked key is refused everywhere from then on.
//!
//! A key's last use is written at most once a [`TOUCH_EVERY`] per key, in the background:
//! "last used" is to the minute, and costs no write per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hookd_core::clock::Millis;
use hookd_core::store::{ApiKey, Store, StoreResult, Workspace};

const KEEP: usize = 10_000;

/// How often a key's last use is written, at most.
const TOUCH_EVERY: Millis = 60_000;

#[derive(Default)]
pub struct Known {
    workspaces: Mutex<HashMap<String, Workspace>>,
    keys: Mutex<HashMap<String, ApiKey>>,
    /// When each key's last use was last written, by key id.
    touched: Mutex<HashMap<String, Millis>>,
    /// Counts [`Known::forget_all`]: a lookup that began before one does not keep its answer,
    /// which may be of a key revoked meanwhile.
    generation: AtomicU64,
}

impl Known {
    pub async fn workspace(&self, store: &dyn Store, id: &str) -> StoreResult<Option<Workspace>> {
        self.remembered(&self.workspaces, id, store.get_workspace(id)).await
    }

    /// The API key whose SHA-256 is `hash`.
    pub async fn api_key(&self, store: &dyn Store, hash: &str) -> StoreResult<Option<ApiKey>> {
        self.remembered(&self.keys, hash, store.find_api_key(hash)).await
    }

    /// Forgets every workspace and key: one was deleted or revoked.
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        lock(&self.workspaces).clear();
        lock(&self.keys).clear();
    }

    async fn remembered<T: Clone>(
        &self,
        map: &Mutex<HashMap<String, T>>,
        key: &str,
        load: impl Future<Output = StoreResult<Option<T>>>,
    ) -> StoreResult<Option<T>> {
        if let Some(found) = lock(map).get(key) {
            return Ok(Some(found.clone()));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let found = load.await?;
        if let Some(value) = &found {
            let mut map = lock(map);
            if self.generation.load(Ordering::SeqCst) == generation {
                if map.len() >= KEEP {
                    map.clear();
                }
                map.insert(key.to_owned(), value.clone());
            }
        }
        Ok(found)
    }

    /// Notes that `key` was used at `now`, writing it when the last write is old enough.
    pub fn used(&self, store: &Arc<dyn Store>, key: &ApiKey, now: Millis) {
        {
            let mut touched = lock(&self.touched);
            let last = touched
                .get(&key.id)
                .copied()
                .or(key.last_used_at)
                .unwrap_or(Millis::MIN);
            if now.saturating_sub(last) < TOUCH_EVERY {
                return;
            }
            if touched.len() >= KEEP {
                touched.clear();
            }
            touched.insert(key.id.clone(), now);
        }
        let (store, id) = (store.clone(), key.id.clone());
        tokio::spawn(async move {
            if let Err(err) = store.touch_api_key(&id, now).await {
                tracing::debug!(error = ?err, key = %id, "could not record a key's last use");
            }
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_was_not_found_is_looked_up_again_and_what_was_found_is_kept_until_forgotten() {
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
            offline_after: None,
        };
        store.create_workspace(&workspace).await.unwrap();
        assert_eq!(
            known.workspace(&store, "ws_1").await.unwrap(),
            Some(workspace.clone()),
            "a workspace created after a miss is found"
        );
        store.delete_workspace("ws_1").await.unwrap();
        assert_eq!(
            known.workspace(&store, "ws_1").await.unwrap(),
            Some(workspace),
            "found before: answered from memory"
        );
        known.forget_all();
        assert_eq!(
            known.workspace(&store, "ws_1").await.unwrap(),
            None,
            "forgotten: asked again"
        );
        store.close().await;
        assert!(known.api_key(&store, "hash").await.is_err(), "a miss asks the database");
    }
}
