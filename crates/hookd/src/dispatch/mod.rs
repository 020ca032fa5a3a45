//! The dispatcher: claims due deliveries with a lease, attempts them, records the outcome.
//!
//! No transaction is open while a request is in flight: a claim is one short transaction, the
//! attempt runs with only the lease, and the result is one more short transaction that only
//! lands if the lease is still ours.
//!
//! Two ways to drive it: [`Dispatcher::run`] loops (spawning attempts, so one slow webhook
//! never holds up the others), and [`Dispatcher::tick`] does one round and waits for it, which
//! is how tests step it deterministically.

mod events;
mod handoff;
pub mod network;
pub mod request;
pub mod sender;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hookd_core::clock::{Clock, Millis};
use hookd_core::id::new_id;
use hookd_core::outcome::{ErrorKind, Response, decide, decide_once};
use hookd_core::store::{Attempt, ClaimRequest, Claimed, DeliveryState, Finish, Health, Lease, Store, StoreError};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::DispatchSettings;
use crate::ingest::{Committer, Origin, Submission, WeakCommitter};
use crate::metrics::Metrics;
pub use handoff::Leased;
use hookd_core::record::RecordIn;
use sender::Sender;

#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

/// An attempt's result waiting to be written, and who waits for the write.
type FinishJob = (Finish, oneshot::Sender<Result<bool, Arc<StoreError>>>);

/// Longest wait between claim rounds while attempts are in flight.
const BUSY_TICK: Duration = Duration::from_millis(20);

/// Results written per transaction, at most.
const FINISH_BATCH: usize = 512;

struct Inner {
    store: Arc<dyn Store>,
    /// Attempt results go to one writer task that commits all waiting at once.
    finishes: mpsc::Sender<FinishJob>,
    clock: Arc<dyn Clock>,
    sender: Sender,
    settings: DispatchSettings,
    wake: Notify,
    /// Where operational events are ingested.
    events: OnceLock<WeakCommitter>,
    /// Attempts this process has leased whose request is not answered yet (what the
    /// concurrency limits count): delivery id → (lease token, webhook id).
    in_flight: Mutex<HashMap<String, (String, String)>>,
    handoff: handoff::Handoff,
    metrics: Metrics,
    /// Operational events handed to the committer and not yet committed.
    events_pending: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Dispatcher {
    /// Builds the dispatcher and starts its result writer (so it needs a Tokio runtime).
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        sender: Sender,
        settings: DispatchSettings,
        metrics: Metrics,
    ) -> Self {
        let (finishes, queue) = mpsc::channel(FINISH_BATCH * 8);
        tokio::spawn(write_finishes(queue, store.clone()));
        Self {
            inner: Arc::new(Inner {
                store,
                finishes,
                clock,
                sender,
                settings,
                wake: Notify::new(),
                events: OnceLock::new(),
                in_flight: Mutex::new(HashMap::new()),
                handoff: handoff::Handoff::new(),
                metrics,
                events_pending: Arc::new(tokio::sync::watch::Sender::new(0)),
            }),
        }
    }

    /// Whether deliveries can be made with these TLS settings (their PEM parses), or why not.
    pub fn check_tls(&self, tls: &hookd_core::webhook::TlsSpec) -> Result<(), String> {
        self.inner.sender.check_tls(tls)
    }

    /// Tells a sleeping dispatcher that new work may be due.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// One round: claims what is due (up to `concurrency`), attempts it all, waits for every
    /// result to be recorded. Returns how many deliveries were attempted.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let claimed = self.claim(self.inner.settings.concurrency).await?;
        let count = claimed.len();
        futures::future::join_all(claimed.into_iter().map(|c| self.deliver(c))).await;
        Ok(count)
    }

    /// Runs until `shutdown` fires, then lets attempts in flight finish for up to
    /// `shutdown_grace` and gives the rest back.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tasks = JoinSet::new();
        let taken = self
            .inner
            .handoff
            .arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(mut arrivals) = taken else {
            tracing::error!("the dispatcher is already running");
            return;
        };
        self.inner.handoff.running.store(true, Ordering::Release);
        let poll = self.inner.settings.poll_interval;
        // Claim in rounds of at least this many free slots while attempts are in flight, so a
        // busy dispatcher makes a few large claims rather than one per finished attempt.
        let round = (self.inner.settings.concurrency / 16).max(1);
        let spawn = |tasks: &mut JoinSet<()>, claimed: Claimed| {
            let this = self.clone();
            tasks.spawn(async move {
                this.deliver(claimed).await;
            });
        };
        while !shutdown.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            while let Ok(claimed) = arrivals.try_recv() {
                spawn(&mut tasks, claimed);
            }
            // Handed-over deliveries hold their slots from the moment they are leased.
            let free = self.inner.settings.concurrency.saturating_sub(self.in_flight_count());
            let mut claimed_all = false;
            if free >= round || (free > 0 && tasks.is_empty()) {
                match self.claim(free).await {
                    Ok(batch) => {
                        claimed_all = !batch.is_empty() && batch.len() == free;
                        for claimed in batch {
                            spawn(&mut tasks, claimed);
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = ?err, "claiming deliveries failed; retrying shortly");
                    }
                }
            }
            if claimed_all {
                continue; // more may be due right now
            }
            // Busy: finished attempts wake the loop, and a short tick bounds the wait. Idle:
            // sleep until the next delivery is due (or a wake-up).
            let sleep = if tasks.is_empty() {
                self.sleep_for(poll).await
            } else {
                poll.min(BUSY_TICK)
            };
            tokio::select! {
                () = self.inner.wake.notified() => {}
                Some(claimed) = arrivals.recv() => spawn(&mut tasks, claimed),
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                () = tokio::time::sleep(sleep) => {}
                () = shutdown.cancelled() => {}
            }
        }
        self.inner.handoff.running.store(false, Ordering::Release);
        while let Ok(claimed) = arrivals.try_recv() {
            spawn(&mut tasks, claimed);
        }
        let grace = self.inner.settings.shutdown_grace;
        let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        self.release_all().await;
    }

    /// How long to sleep when nothing was claimed: until the next delivery is due, at most
    /// `poll`, at least a little (so webhooks at their in-flight limit do not spin the loop).
    async fn sleep_for(&self, poll: Duration) -> Duration {
        match self
            .inner
            .store
            .next_wake_at(self.inner.settings.breaker_failures)
            .await
        {
            Ok(Some(at)) => {
                let ms = (at - self.inner.clock.now()).clamp(5, poll.as_millis() as i64);
                Duration::from_millis(ms as u64)
            }
            _ => poll,
        }
    }

    async fn claim(&self, limit: usize) -> anyhow::Result<Vec<Claimed>> {
        let now = self.inner.clock.now();
        let in_flight = by_webhook(&self.inner.in_flight.lock().unwrap_or_else(|p| p.into_inner()));
        let request = ClaimRequest {
            now,
            lease: self.lease(now),
            limit,
            per_webhook_limit: self.inner.settings.per_webhook_in_flight,
            reserve: self.reserve(),
            breaker_threshold: self.inner.settings.breaker_failures,
            in_flight,
        };
        let before = self.inner.handoff.snapshot();
        let claimed = self.inner.store.claim_due(&request).await?;
        self.inner.handoff.claimed(&before, &request, &claimed);
        let mut map = self.inner.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for c in &claimed {
            map.insert(c.delivery.id.clone(), (c.lease.token.clone(), c.webhook.id.clone()));
        }
        Ok(claimed)
    }

    /// A new lease, from `now` for `dispatch.lease`.
    pub fn lease(&self, now: Millis) -> Lease {
        Lease {
            token: new_id("lse"),
            until: now + self.inner.settings.lease.as_millis() as i64,
        }
    }

    /// The slots kept for webhooks with few attempts in flight: a quarter.
    fn reserve(&self) -> usize {
        self.inner.settings.concurrency / 4
    }

    fn in_flight_count(&self) -> usize {
        self.inner.in_flight.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Gives back every lease still held (after aborted attempts), so another start retries
    /// those deliveries at once instead of after the lease expires.
    async fn release_all(&self) {
        let leases: Vec<(String, String)> = {
            let mut map = self.inner.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            map.drain().map(|(delivery, (token, _))| (delivery, token)).collect()
        };
        if leases.is_empty() {
            return;
        }
        match self.inner.store.release(&leases).await {
            Ok(()) => tracing::info!(count = leases.len(), "released deliveries still in flight at shutdown"),
            Err(err) => tracing::warn!(error = ?err, "releasing leases failed; they expire by themselves"),
        }
    }

    /// Where operational events go: set once the committer exists (it needs the dispatcher).
    pub fn publish_events_to(&self, committer: &Committer) {
        let _ = self.inner.events.set(committer.downgrade());
    }

    /// Ingests operational events in the webhook's workspace, in the background. They are never
    /// delivered to the webhook they are about, so a failing webhook cannot feed itself.
    fn emit(&self, claimed: &Claimed, records: Vec<RecordIn>) {
        let Some(committer) = self.inner.events.get().and_then(WeakCommitter::upgrade) else {
            return;
        };
        if records.is_empty() {
            return;
        }
        let submission = Submission {
            workspace_id: claimed.webhook.workspace_id.clone(),
            records,
            idempotency: None,
            origin: Origin::System {
                about: claimed.webhook.id.clone(),
            },
        };
        let pending = self.inner.events_pending.clone();
        pending.send_modify(|n| *n += 1);
        tokio::spawn(async move {
            if let Err(err) = committer.submit(submission).await {
                tracing::warn!(error = %err, "an operational event could not be recorded");
            }
            pending.send_modify(|n| *n -= 1);
        });
    }

    /// Waits until every operational event emitted so far is committed (or failed to be), so
    /// a stepping caller sees them as records, and their deliveries, on its next tick.
    pub async fn events_settled(&self) {
        let mut pending = self.inner.events_pending.subscribe();
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    /// Hands a result to the writer and waits until it is committed (or not).
    async fn record(&self, finish: Finish) -> Result<bool, Arc<StoreError>> {
        let (reply, written) = oneshot::channel();
        let stopped = || Arc::new(StoreError::Unavailable("the result writer has stopped".into()));
        self.inner.finishes.send((finish, reply)).await.map_err(|_| stopped())?;
        written.await.map_err(|_| stopped())?
    }

    /// Attempts one claimed delivery and records the result. Never fails: a storage error
    /// leaves the lease to expire, and the delivery is attempted again.
    pub async fn deliver(&self, claimed: Claimed) -> Attempt {
        self.attempt(claimed, Attempts::Scheduled).await
    }

    /// Attempts a delivery once and records the result: delivered or failed, never retried
    /// (the test send).
    pub async fn deliver_once(&self, claimed: Claimed) -> Attempt {
        self.attempt(claimed, Attempts::Once).await
    }

    async fn attempt(&self, claimed: Claimed, attempts: Attempts) -> Attempt {
        let inner = &self.inner;
        let started_at = inner.clock.now();
        let outgoing = request::build(&claimed, started_at);
        let answer = inner.sender.send(outgoing, started_at).await;
        // The receiver is done with it: its slot is free while the result is written (the
        // lease keeps the delivery from being claimed again until then).
        inner
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&claimed.delivery.id);
        let decision = match attempts {
            Attempts::Scheduled => decide(
                &answer.response,
                claimed.delivery.failures,
                &claimed.webhook.spec.retry_schedule,
                rand::random(),
            ),
            Attempts::Once => decide_once(&answer.response, claimed.delivery.failures),
        };
        let decision = match &answer.detail {
            Some(detail) => decision.with_detail(&answer.response, detail),
            None => decision,
        };
        let now = inner.clock.now();
        let (status, error_kind) = match &answer.response {
            Response::Status { code, .. } => (Some(*code), None),
            Response::Error(kind) => (None, Some(kind.as_str().to_owned())),
        };
        let attempt = Attempt {
            id: new_id("att"),
            delivery_id: claimed.delivery.id.clone(),
            started_at,
            duration_ms: answer.duration.as_millis() as u64,
            status,
            response_headers: answer.headers,
            response_body: answer.body,
            error_kind,
            explanation: decision.explanation.clone(),
            outcome: decision.state,
        };
        let health = match (&answer.response, decision.state) {
            (Response::Error(ErrorKind::Blocked), _) => Health::Unknown,
            (_, DeliveryState::Pending | DeliveryState::Dead) => Health::Down {
                at: now,
                retry_at: now + decision.retry_in.map_or(0, |d| d.as_millis() as i64),
            },
            _ => Health::Up,
        };
        let disable_reason = events::disable_reason(&claimed.webhook, &decision, health, now, &inner.settings);
        let finish = Finish {
            delivery_id: claimed.delivery.id.clone(),
            webhook_id: claimed.webhook.id.clone(),
            health,
            lease_token: claimed.lease.token.clone(),
            attempt: attempt.clone(),
            state: decision.state,
            failures: decision.failures,
            next_attempt_at: now + decision.retry_in.map_or(0, |d| d.as_millis() as i64),
            now,
            disable_webhook: disable_reason.clone(),
        };
        match self.record(finish).await {
            Ok(true) => {
                log_attempt(&claimed, &attempt);
                inner
                    .metrics
                    .attempt_finished(&claimed.webhook.id, decision.state, answer.duration);
                if let Some(reason) = &disable_reason {
                    tracing::warn!(webhook = %claimed.webhook.id, reason, "webhook disabled");
                }
                let facts = events::Facts {
                    decision: &decision,
                    health,
                    disabled: disable_reason.as_deref(),
                    now,
                };
                self.emit(&claimed, events::operational(&claimed, &facts, &inner.settings));
            }
            Ok(false) => {
                tracing::warn!(delivery = %claimed.delivery.id, "lease lost before the attempt finished; its result is not recorded")
            }
            Err(err) => {
                tracing::error!(delivery = %claimed.delivery.id, error = ?err, "recording an attempt failed; the delivery is retried when its lease expires")
            }
        }
        if matches!(answer.response, Response::Error(ErrorKind::Blocked)) {
            tracing::info!(delivery = %claimed.delivery.id, url = %hookd_core::webhook::redacted_url(&claimed.webhook.spec.url), "delivery blocked by the SSRF policy");
        }
        attempt
    }
}

/// One line per attempt: failed ones at info (a dead delivery at warn), every one at debug.
fn log_attempt(claimed: &Claimed, attempt: &Attempt) {
    let (delivery, webhook) = (&claimed.delivery.id, &claimed.webhook.id);
    let outcome = attempt.outcome.as_str();
    let status = attempt.status.map(i64::from).unwrap_or(-1);
    let error = attempt.error_kind.as_deref().unwrap_or("-");
    let ms = attempt.duration_ms;
    let explanation = attempt.explanation.as_str();
    match attempt.outcome {
        DeliveryState::Delivered => tracing::debug!(%delivery, %webhook, %outcome, status, ms, "attempt"),
        DeliveryState::Dead => {
            tracing::warn!(%delivery, %webhook, %outcome, status, %error, ms, explanation, "attempt failed")
        }
        _ => tracing::info!(%delivery, %webhook, %outcome, status, %error, ms, explanation, "attempt failed"),
    }
}

/// Whether a delivery follows its webhook's retry schedule, or is attempted once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempts {
    Scheduled,
    Once,
}

/// Attempts in flight per webhook, from the map of attempts in flight.
fn by_webhook(in_flight: &HashMap<String, (String, String)>) -> HashMap<String, usize> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (_, webhook) in in_flight.values() {
        *counts.entry(webhook.clone()).or_default() += 1;
    }
    counts
}

/// Writes attempt results: everything waiting at that moment, in one transaction.
async fn write_finishes(mut queue: mpsc::Receiver<FinishJob>, store: Arc<dyn Store>) {
    let mut jobs = Vec::with_capacity(FINISH_BATCH);
    while queue.recv_many(&mut jobs, FINISH_BATCH).await > 0 {
        let (finishes, replies): (Vec<Finish>, Vec<_>) = jobs.drain(..).unzip();
        match store.finish_many(&finishes).await {
            Ok(written) => {
                for (reply, ok) in replies.into_iter().zip(written) {
                    let _ = reply.send(Ok(ok));
                }
            }
            Err(err) => {
                let err = Arc::new(err);
                for reply in replies {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }
}
