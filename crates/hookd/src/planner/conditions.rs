//! Webhook conditions at planning time: each conditioned webhook's candidate records of a
//! commit go to the sandbox in one request, so a hostile condition (`def f: f; f`) costs a
//! worker, not the committer. A record the condition fails on (an error, a timeout) is no
//! match: counted, and logged at most once a minute per webhook. A webhook whose condition
//! was stopped or ended its worker is not run again for a minute (its records do not match
//! meanwhile), so one tenant's program cannot hold every commit for the time limit.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use hookd_core::clock::Millis;
use hookd_core::id::WebhookId;
use hookd_core::webhook::Webhook;

use crate::metrics::Metrics;
use crate::sandbox::Sandbox;

const MINUTE: Millis = 60_000;

/// Which records matched each conditioned webhook, by record id.
#[derive(Default)]
pub struct Verdicts {
    matched: HashMap<WebhookId, HashSet<String>>,
}

impl Verdicts {
    /// Whether `webhook`'s condition (if it has one) admits the record `record_id`.
    pub fn admits(&self, webhook: &Webhook, record_id: &str) -> bool {
        webhook.spec.condition.is_none() || self.matched.get(&webhook.id).is_some_and(|ids| ids.contains(record_id))
    }
}

/// Runs conditions. Cheap to clone.
#[derive(Clone)]
pub struct Conditions {
    sandbox: Sandbox,
    metrics: Metrics,
    /// Webhooks not run until then, and when each was last logged.
    benched: Arc<Mutex<HashMap<WebhookId, Millis>>>,
    logged: Arc<Mutex<HashMap<WebhookId, Millis>>>,
}

/// One conditioned webhook's candidates: record ids and their stored JSON.
pub(super) struct Candidates<'a> {
    pub webhook: &'a Webhook,
    pub records: Vec<(&'a str, &'a str)>,
}

impl Conditions {
    pub fn new(sandbox: Sandbox, metrics: Metrics) -> Self {
        Self {
            sandbox,
            metrics,
            benched: Arc::default(),
            logged: Arc::default(),
        }
    }

    pub(super) async fn judge(&self, candidates: Vec<Candidates<'_>>, now: Millis) -> Verdicts {
        let runs = candidates.into_iter().map(|c| self.run(c, now));
        Verdicts {
            matched: futures::future::join_all(runs).await.into_iter().flatten().collect(),
        }
    }

    async fn run(&self, candidates: Candidates<'_>, now: Millis) -> Option<(WebhookId, HashSet<String>)> {
        let webhook = candidates.webhook;
        let code = webhook.spec.condition.as_deref()?;
        let benched = lock(&self.benched).get(&webhook.id).is_some_and(|until| *until > now);
        if benched {
            self.metrics.condition_errors(candidates.records.len());
            return None;
        }
        let bodies: Vec<&str> = candidates.records.iter().map(|(_, body)| *body).collect();
        match self.sandbox.conditions(code, &bodies).await {
            Ok(verdicts) => {
                let mut matched = HashSet::new();
                let mut failed = None;
                for ((id, _), verdict) in candidates.records.iter().zip(verdicts) {
                    match verdict {
                        Ok(true) => drop(matched.insert((*id).to_owned())),
                        Ok(false) => {}
                        Err(e) => {
                            self.metrics.condition_errors(1);
                            failed.get_or_insert((*id, e));
                        }
                    }
                }
                if let Some((record_id, error)) = failed {
                    self.log(webhook, now, record_id, &error);
                }
                Some((webhook.id.clone(), matched))
            }
            Err(error) => {
                self.metrics.condition_errors(candidates.records.len());
                lock(&self.benched).insert(webhook.id.clone(), now + MINUTE);
                let first = candidates.records.first().map_or("", |(id, _)| *id);
                self.log(webhook, now, first, &format!("{error}; not run again for a minute"));
                None
            }
        }
    }

    fn log(&self, webhook: &Webhook, now: Millis, record_id: &str, error: &str) {
        let mut logged = lock(&self.logged);
        if logged.get(&webhook.id).is_some_and(|at| now - at < MINUTE) {
            return;
        }
        logged.insert(webhook.id.clone(), now);
        tracing::warn!(
            webhook_id = %webhook.id,
            workspace_id = %webhook.workspace_id,
            record_id,
            error,
            "a webhook's condition failed on a record, taken as no match (logged once a minute per webhook)"
        );
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
