//! The enabled webhooks records are matched against, kept in memory by workspace: read (and
//! their specs parsed, their secrets opened) once, not per commit batch, and read again when
//! one changes — here, or in another process (PostgreSQL's NOTIFY, see
//! [`hookd_core::store::Change::Webhooks`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hookd_core::store::{Store, StoreResult};
use hookd_core::webhook::Webhook;

/// A workspace's enabled webhooks.
pub type Enabled = Arc<[Arc<Webhook>]>;

/// A handle to the cache. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    by_workspace: Mutex<HashMap<String, Enabled>>,
    /// Counts changes: a read that started before one is not kept (it may predate it).
    generation: AtomicU64,
}

impl Registry {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                by_workspace: Mutex::new(HashMap::new()),
                generation: AtomicU64::new(0),
            }),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Enabled>> {
        self.inner.by_workspace.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The enabled webhooks of each of `workspaces` (sorted, no duplicates), reading from the
    /// store only those not kept.
    pub async fn enabled(&self, workspaces: &[String]) -> StoreResult<HashMap<String, Enabled>> {
        let generation = self.inner.generation.load(Ordering::Acquire);
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.cache();
            for ws in workspaces {
                match cache.get(ws) {
                    Some(hooks) => drop(found.insert(ws.clone(), hooks.clone())),
                    None => missing.push(ws.clone()),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let mut read: HashMap<String, Vec<Arc<Webhook>>> = missing.iter().map(|ws| (ws.clone(), Vec::new())).collect();
        for webhook in self.inner.store.enabled_webhooks(&missing).await? {
            if let Some(list) = read.get_mut(&webhook.workspace_id) {
                list.push(Arc::new(webhook));
            }
        }
        let mut cache = self.cache();
        let current = self.inner.generation.load(Ordering::Acquire) == generation;
        for (ws, hooks) in read {
            let hooks: Enabled = hooks.into();
            if current {
                cache.insert(ws.clone(), hooks.clone());
            }
            found.insert(ws, hooks);
        }
        Ok(found)
    }

    /// A webhook of `workspace_id` was created, changed, disabled or deleted.
    pub fn changed(&self, workspace_id: &str) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        self.cache().remove(workspace_id);
    }

    /// Webhooks may have changed anywhere (another process said so, or what it said was lost).
    pub fn changed_anywhere(&self) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        self.cache().clear();
    }
}
