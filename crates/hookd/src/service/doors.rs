//! The sources this process has looked up at their door lately, so a busy door does not
//! read, decrypt and parse its source for every request. A change made here is seen at
//! once; one made by another process (on PostgreSQL) within [`FRESH_FOR`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookd_core::source::Source;

/// How long a looked-up source is used without reading it again.
pub(super) const FRESH_FOR: Duration = Duration::from_secs(1);

/// Most sources kept; past it the cache starts over.
const KEPT: usize = 10_000;

#[derive(Default)]
pub(super) struct Doors {
    seen: Mutex<HashMap<String, (Instant, Arc<Source>)>>,
}

impl Doors {
    /// The source `id` as last read, if read less than [`FRESH_FOR`] ago.
    pub(super) fn get(&self, id: &str) -> Option<Arc<Source>> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(id)
            .filter(|(at, _)| at.elapsed() < FRESH_FOR)
            .map(|(_, source)| source.clone())
    }

    pub(super) fn keep(&self, source: Arc<Source>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= KEPT {
            seen.clear();
        }
        seen.insert(source.id.clone(), (Instant::now(), source));
    }

    /// Source `id` was changed or deleted here.
    pub(super) fn forget(&self, id: &str) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Everything is forgotten (a workspace was deleted).
    pub(super) fn forget_all(&self) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
