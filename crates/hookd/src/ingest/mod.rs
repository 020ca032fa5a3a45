//! Group commit: ingest requests queue up for one committer task, which writes every request
//! waiting at that moment in ONE transaction, then answers them all. Many requests share one
//! fsync; none is acknowledged before it is on disk.

mod devices;

use std::sync::Arc;

use hookd_core::clock::Clock;
use hookd_core::id::new_id;
use hookd_core::record::RecordIn;
use hookd_core::store::{IngestRequest, IngestResult, NewDelivery, NewRecord, Store, StoreError};
use hookd_core::timefmt::rfc3339;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::planner::{Arrivals, Origin, Planner};
use crate::slots::Slots;

/// One ingest request, validated: its records, and where they come from, which decides what
/// they are matched to.
pub struct Submission {
    pub workspace_id: String,
    pub records: Vec<RecordIn>,
    pub idempotency: Option<hookd_core::store::Idempotency>,
    pub origin: Origin,
    /// A source's door: what it writes with the records (see [`hookd_core::store::DoorWrite`]).
    pub door: Option<hookd_core::store::DoorWrite>,
}

/// What the committer works with.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub planner: Planner,
    pub slots: Slots,
    pub metrics: Metrics,
    pub max_batch: usize,
    /// Told when a commit holds a device's own connection or disconnection event, so its
    /// presence changes at once.
    pub presence: Arc<tokio::sync::Notify>,
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

/// A handle that does not keep the committer alive (for the dispatcher's operational events:
/// the dispatcher lives as long as the service, so a strong handle there would keep the
/// committer from ever stopping).
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

    /// Starts the committer task, with room for `queue` waiting requests. It ends when every
    /// handle is dropped and the queue drained.
    pub fn start(parts: Parts, queue: usize) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(queue);
        let task = tokio::spawn(run(rx, parts));
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

async fn run(mut rx: mpsc::Receiver<Job>, parts: Parts) {
    let mut jobs = Vec::with_capacity(parts.max_batch);
    let mut written = devices::Written::default();
    while rx.recv_many(&mut jobs, parts.max_batch).await > 0 {
        commit(&mut jobs, &parts, &mut written).await;
    }
}

async fn commit(jobs: &mut Vec<Job>, parts: &Parts, written: &mut devices::Written) {
    let Parts {
        store,
        clock,
        planner,
        slots,
        metrics,
        ..
    } = parts;
    metrics.commit_batch(jobs.len());
    let now = clock.now();
    let webhooks = match planner
        .webhooks(jobs.iter().map(|j| j.submission.workspace_id.as_str()))
        .await
    {
        Ok(w) => w,
        Err(err) => return fail_all(jobs, err),
    };
    let timestamp_in = rfc3339(now);
    let stamped: Vec<Vec<NewRecord>> = jobs
        .iter()
        .map(|job| stamp(&job.submission, now, &timestamp_in))
        .collect();
    let planned: Vec<Vec<NewDelivery>> = {
        let batch: Vec<Arrivals<'_>> = jobs
            .iter()
            .zip(&stamped)
            .map(|(job, records)| Arrivals {
                workspace_id: &job.submission.workspace_id,
                origin: &job.submission.origin,
                incoming: &job.submission.records,
                stored: records,
            })
            .collect();
        let verdicts = planner.judge(&webhooks, &batch, now).await;
        batch
            .iter()
            .map(|arrivals| planner.plan(&webhooks, arrivals, &verdicts, now))
            .collect()
    };
    let mut requests: Vec<IngestRequest> = jobs
        .iter()
        .zip(stamped.into_iter().zip(planned))
        .map(|(job, (records, deliveries))| {
            let s = &job.submission;
            IngestRequest {
                workspace_id: s.workspace_id.clone(),
                idempotency: s.idempotency.clone(),
                records,
                deliveries,
                door: s.door.clone(),
                devices: written.heard(&s.workspace_id, &s.origin, &s.records, now),
            }
        })
        .collect();
    let decisive = requests.iter().any(|r| devices::decisive(&r.devices));
    let leased = slots.lease_new(&mut requests, &webhooks.by_id(), now);
    // Deliveries handed over need no claim: only those written unleased wake the dispatcher.
    let unleased = requests.iter().flat_map(|r| &r.deliveries).any(|d| d.lease.is_none());
    match store.commit_ingest(&requests).await {
        Ok(results) => {
            slots.hand_over(leased, &requests, &results);
            for (job, (request, result)) in jobs.drain(..).zip(requests.iter().zip(results)) {
                if matches!(result, IngestResult::Committed(_)) {
                    metrics.records_ingested(job.submission.records[0].kind.as_str(), request.records.len());
                }
                let _ = job.reply.send(Ok(result));
            }
            if unleased {
                slots.wake();
            }
            if decisive {
                parts.presence.notify_one();
            }
        }
        Err(err) => {
            slots.forget(leased, &requests);
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

/// The submission's records stamped with their ids, workspace and arrival time.
fn stamp(submission: &Submission, now: i64, timestamp_in: &str) -> Vec<NewRecord> {
    let ws = &submission.workspace_id;
    submission
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
        .collect()
}
