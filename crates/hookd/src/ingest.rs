//! Group commit: ingest requests queue up for one committer task, which writes every request
//! waiting at that moment in ONE transaction, then answers them all. Many requests share one
//! fsync; none is acknowledged before it is on disk.

use std::collections::HashMap;
use std::sync::Arc;

use hookd_core::clock::Clock;
use hookd_core::id::new_id;
use hookd_core::record::RecordIn;
use hookd_core::store::{IngestRequest, IngestResult, NewDelivery, NewRecord, Store, StoreError};
use hookd_core::timefmt::rfc3339;
use hookd_core::webhook::Webhook;
use tokio::sync::{mpsc, oneshot};

use crate::dispatch::Dispatcher;
use crate::metrics::Metrics;

/// Where records come from. It decides what they may be delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Sent to the API by a producer.
    Api,
    /// Made by hookd itself about webhook `about` (operational events): never delivered to
    /// that webhook, so a failing webhook cannot feed on its own events.
    System { about: String },
}

/// One ingest request, validated: its records, and where they come from, which decides what
/// they are matched to.
pub struct Submission {
    pub workspace_id: String,
    pub records: Vec<RecordIn>,
    pub idempotency: Option<hookd_core::store::Idempotency>,
    pub origin: Origin,
}

struct Job {
    submission: Submission,
    reply: oneshot::Sender<Result<IngestResult, Arc<StoreError>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the committer has stopped")]
    Stopped,
    #[error(transparent)]
    Store(Arc<StoreError>),
}

/// A handle to the committer. Cheap to clone.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
}

/// A handle that does not keep the committer alive (for the dispatcher, which the committer
/// itself holds: a strong handle there would keep the committer from ever stopping).
#[derive(Clone)]
pub struct WeakCommitter {
    tx: mpsc::WeakSender<Job>,
}

impl WeakCommitter {
    pub fn upgrade(&self) -> Option<Committer> {
        self.tx.upgrade().map(|tx| Committer { tx })
    }
}

impl Committer {
    pub fn downgrade(&self) -> WeakCommitter {
        WeakCommitter {
            tx: self.tx.downgrade(),
        }
    }

    /// Starts the committer task. It ends when every handle is dropped and the queue drained.
    pub fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        dispatcher: Dispatcher,
        metrics: Metrics,
        max_batch: usize,
        queue: usize,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(queue);
        let task = tokio::spawn(run(rx, store, clock, dispatcher, metrics, max_batch));
        (Self { tx }, task)
    }

    /// Commits a submission durably; resolves once it is on disk (or was not written).
    pub async fn submit(&self, submission: Submission) -> Result<IngestResult, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { submission, reply })
            .await
            .map_err(|_| SubmitError::Stopped)?;
        answer
            .await
            .map_err(|_| SubmitError::Stopped)?
            .map_err(SubmitError::Store)
    }
}

async fn run(
    mut rx: mpsc::Receiver<Job>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    dispatcher: Dispatcher,
    metrics: Metrics,
    max_batch: usize,
) {
    let mut jobs = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        commit(&mut jobs, store.as_ref(), clock.as_ref(), &dispatcher, &metrics).await;
    }
}

async fn commit(jobs: &mut Vec<Job>, store: &dyn Store, clock: &dyn Clock, dispatcher: &Dispatcher, metrics: &Metrics) {
    metrics.commit_batch(jobs.len());
    let now = clock.now();
    let webhooks = match matching_webhooks(jobs, store).await {
        Ok(w) => w,
        Err(err) => return fail_all(jobs, err),
    };
    let timestamp_in = rfc3339(now);
    let mut requests: Vec<IngestRequest> = jobs
        .iter()
        .map(|job| prepare(&job.submission, &webhooks, now, &timestamp_in))
        .collect();
    let deliveries: usize = requests.iter().map(|r| r.deliveries.len()).sum();
    let leased = dispatcher.lease_new(&mut requests, &webhooks, now);
    match store.commit_ingest(&requests).await {
        Ok(results) => {
            dispatcher.hand_over(leased, &requests, &results);
            for (job, (request, result)) in jobs.drain(..).zip(requests.iter().zip(results)) {
                if matches!(result, IngestResult::Committed(_)) {
                    metrics.records_ingested(job.submission.records[0].kind.as_str(), request.records.len());
                }
                let _ = job.reply.send(Ok(result));
            }
            if deliveries > 0 {
                dispatcher.wake();
            }
        }
        Err(err) => {
            dispatcher.forget(leased, &requests);
            tracing::error!(error = ?err, requests = jobs.len(), "ingest commit failed; nothing of it was written");
            fail_all(jobs, err);
        }
    }
}

fn fail_all(jobs: &mut Vec<Job>, err: StoreError) {
    let err = Arc::new(err);
    for job in jobs.drain(..) {
        let _ = job.reply.send(Err(err.clone()));
    }
}

/// Enabled webhooks of the workspaces in this batch, by workspace.
async fn matching_webhooks(jobs: &[Job], store: &dyn Store) -> Result<HashMap<String, Vec<Webhook>>, StoreError> {
    let mut workspaces: Vec<String> = jobs.iter().map(|j| j.submission.workspace_id.clone()).collect();
    workspaces.sort();
    workspaces.dedup();
    let mut by_workspace: HashMap<String, Vec<Webhook>> = HashMap::new();
    if workspaces.is_empty() {
        return Ok(by_workspace);
    }
    for webhook in store.enabled_webhooks(&workspaces).await? {
        by_workspace
            .entry(webhook.workspace_id.clone())
            .or_default()
            .push(webhook);
    }
    Ok(by_workspace)
}

/// Stamps the records and matches them to webhooks: for each webhook, its matching records
/// in order, cut into deliveries of at most `batch_max` (one each for `single`).
fn prepare(
    submission: &Submission,
    webhooks: &HashMap<String, Vec<Webhook>>,
    now: i64,
    timestamp_in: &str,
) -> IngestRequest {
    let ws = &submission.workspace_id;
    let records: Vec<NewRecord> = submission
        .records
        .iter()
        .map(|record| {
            let id = new_id("rec");
            NewRecord {
                body: record.stamp(&id, ws, timestamp_in),
                id,
                workspace_id: ws.clone(),
                kind: record.kind,
                created_at: now,
            }
        })
        .collect();
    let excluded = match &submission.origin {
        Origin::Api => None,
        Origin::System { about } => Some(about),
    };
    let deliveries = webhooks
        .get(ws)
        .into_iter()
        .flatten()
        .filter(|webhook| excluded != Some(&webhook.id))
        .flat_map(|webhook| {
            let matched: Vec<String> = submission
                .records
                .iter()
                .zip(&records)
                .filter(|(record, _)| webhook.spec.accepts(record))
                .map(|(_, stored)| stored.id.clone())
                .collect();
            matched
                .chunks(webhook.spec.records_per_delivery())
                .map(|ids| NewDelivery {
                    id: new_id("dlv"),
                    workspace_id: ws.clone(),
                    webhook_id: webhook.id.clone(),
                    record_ids: ids.to_vec(),
                    created_at: now,
                    lease: None,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    IngestRequest {
        workspace_id: ws.clone(),
        idempotency: submission.idempotency.clone(),
        records,
        deliveries,
    }
}
