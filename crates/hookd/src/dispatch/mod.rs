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
pub mod network;
pub mod request;
pub mod sender;

use std::sync::Arc;
use std::time::Duration;

use hookd_core::clock::{Clock, Millis};
use hookd_core::id::new_id;
use hookd_core::outcome::{ErrorKind, Response, decide, decide_once};
use hookd_core::store::{Attempt, ClaimRequest, Claimed, DeliveryState, Finish, Health, Lease, Store, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::DispatchSettings;
use crate::metrics::Metrics;
use crate::planner::Registry;
use crate::slots::Slots;
pub use events::{EventSink, Events};
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
    parts: Parts,
    /// Attempt results go to one writer task that commits all waiting at once.
    finishes: mpsc::Sender<FinishJob>,
    /// Operational events handed to the sink and not yet committed.
    events_pending: Arc<tokio::sync::watch::Sender<usize>>,
}

/// What the dispatcher works with.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub sender: Sender,
    pub settings: DispatchSettings,
    pub slots: Slots,
    /// Told when the dispatcher disables a webhook, so no more records are matched to it.
    pub registry: Registry,
    /// Where operational events go.
    pub events: Arc<dyn EventSink>,
    pub metrics: Metrics,
}

impl Dispatcher {
    /// Builds the dispatcher and starts its result writer (so it needs a Tokio runtime).
    pub fn new(parts: Parts) -> Self {
        let (finishes, queue) = mpsc::channel(FINISH_BATCH * 8);
        tokio::spawn(write_finishes(queue, parts.store.clone()));
        Self {
            inner: Arc::new(Inner {
                parts,
                finishes,
                events_pending: Arc::new(tokio::sync::watch::Sender::new(0)),
            }),
        }
    }

    /// Whether deliveries can be made with these TLS settings (their PEM parses), or why not.
    pub fn check_tls(&self, tls: &hookd_core::webhook::TlsSpec) -> Result<(), String> {
        self.inner.parts.sender.check_tls(tls)
    }

    /// Tells a sleeping dispatcher that new work may be due.
    pub fn wake(&self) {
        self.inner.parts.slots.wake();
    }

    /// One round: claims what is due (up to `concurrency`), attempts it all, waits for every
    /// result to be recorded. Returns how many deliveries were attempted.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let (claimed, _) = self.claim(self.inner.parts.settings.concurrency).await?;
        let count = claimed.len();
        futures::future::join_all(claimed.into_iter().map(|c| self.deliver(c))).await;
        Ok(count)
    }

    /// Runs until `shutdown` fires, then lets attempts in flight finish for up to
    /// `shutdown_grace` and gives the rest back.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tasks = JoinSet::new();
        let slots = &self.inner.parts.slots;
        let Some(mut arrivals) = slots.take_arrivals() else {
            tracing::error!("the dispatcher is already running");
            return;
        };
        slots.set_running(true);
        let poll = self.inner.parts.settings.poll_interval;
        // Claim in rounds of at least this many free slots while attempts are in flight, so a
        // busy dispatcher makes a few large claims rather than one per finished attempt.
        let round = (self.inner.parts.settings.concurrency / 16).max(1);
        let spawn = |tasks: &mut JoinSet<()>, claimed: Claimed| {
            let this = self.clone();
            tasks.spawn(async move {
                this.deliver(claimed).await;
            });
        };
        // Whether the store may hold due deliveries that no round has found. A round that
        // found nothing while every webhook could take a slot clears it: until new work is
        // announced (`woken`: deliveries written unleased, a retry by hand, another process's
        // work) or time passes (retries and leases come due), another round would find nothing
        // either. Time is checked by a round at least every `BUSY_TICK` while attempts are in
        // flight, and when the next delivery is due while idle. Deliveries handed over at
        // commit need no round at all; without this, nearly every round in `single` found
        // nothing.
        let mut maybe_due = true;
        let mut last_round = Instant::now();
        while !shutdown.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            while let Ok(claimed) = arrivals.try_recv() {
                spawn(&mut tasks, claimed);
            }
            let busy = !tasks.is_empty();
            maybe_due |= busy && last_round.elapsed() >= BUSY_TICK;
            // Handed-over deliveries hold their slots from the moment they are leased.
            let free = slots.admission().free;
            let mut claimed_all = false;
            if maybe_due && (free >= round || (free > 0 && !busy)) {
                last_round = Instant::now();
                match self.claim(free).await {
                    Ok((batch, blocked)) => {
                        claimed_all = !batch.is_empty() && batch.len() == free;
                        maybe_due = !batch.is_empty() || blocked;
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
            let idle = tasks.is_empty();
            let until = if idle {
                Instant::now() + self.sleep_for(poll).await
            } else if maybe_due {
                Instant::now() + poll.min(BUSY_TICK)
            } else {
                last_round + poll.min(BUSY_TICK)
            };
            tokio::select! {
                () = slots.woken() => maybe_due = true,
                Some(claimed) = arrivals.recv() => spawn(&mut tasks, claimed),
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                () = tokio::time::sleep_until(until) => maybe_due = true,
                () = shutdown.cancelled() => {}
            }
        }
        slots.set_running(false);
        while let Ok(claimed) = arrivals.try_recv() {
            spawn(&mut tasks, claimed);
        }
        let grace = self.inner.parts.settings.shutdown_grace;
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
            .parts
            .store
            .next_wake_at(self.inner.parts.settings.breaker_failures)
            .await
        {
            Ok(Some(at)) => {
                let ms = (at - self.inner.parts.clock.now()).clamp(5, poll.as_millis() as i64);
                Duration::from_millis(ms as u64)
            }
            _ => poll,
        }
    }

    /// Claims up to `limit` due deliveries; with them, whether the round left out webhooks
    /// that could take no slot (their due deliveries, if any, wait for one).
    async fn claim(&self, limit: usize) -> anyhow::Result<(Vec<Claimed>, bool)> {
        let now = self.inner.parts.clock.now();
        let slots = &self.inner.parts.slots;
        let request = ClaimRequest {
            now,
            lease: slots.lease(now),
            limit,
            per_webhook_limit: self.inner.parts.settings.per_webhook_in_flight,
            reserve: slots.reserve(),
            breaker_threshold: self.inner.parts.settings.breaker_failures,
            in_flight: slots.in_flight_by_webhook(),
        };
        let before = slots.snapshot();
        let claimed = self.inner.parts.store.claim_due(&request).await?;
        self.inner.parts.metrics.claim_round(!claimed.is_empty());
        slots.claimed(&before, &request, &claimed);
        slots.hold(&claimed);
        Ok((claimed, !request.blocked_webhooks().is_empty()))
    }

    /// A new lease, from `now` for `dispatch.lease`.
    pub fn lease(&self, now: Millis) -> Lease {
        self.inner.parts.slots.lease(now)
    }

    /// Gives back every lease still held (after aborted attempts), so another start retries
    /// those deliveries at once instead of after the lease expires.
    async fn release_all(&self) {
        let leases = self.inner.parts.slots.drain();
        if leases.is_empty() {
            return;
        }
        match self.inner.parts.store.release(&leases).await {
            Ok(()) => tracing::info!(count = leases.len(), "released deliveries still in flight at shutdown"),
            Err(err) => tracing::warn!(error = ?err, "releasing leases failed; they expire by themselves"),
        }
    }

    /// Ingests operational events in the webhook's workspace, in the background. They are never
    /// delivered to the webhook they are about, so a failing webhook cannot feed itself.
    fn emit(&self, claimed: &Claimed, records: Vec<RecordIn>) {
        if records.is_empty() {
            return;
        }
        let ingested = self.inner.parts.events.ingest(Events {
            workspace_id: claimed.webhook.workspace_id.clone(),
            about: claimed.webhook.id.clone(),
            records,
        });
        let pending = self.inner.events_pending.clone();
        pending.send_modify(|n| *n += 1);
        tokio::spawn(async move {
            ingested.await;
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
        self.attempt(claimed, Attempts::Scheduled).await.0
    }

    /// Attempts a delivery once and records the result: delivered or failed, never retried
    /// (the test send). With the attempt, the request's headers as sent (the token's value
    /// hidden).
    pub async fn deliver_once(&self, claimed: Claimed) -> (Attempt, Vec<(String, String)>) {
        let (attempt, sent) = self.attempt(claimed, Attempts::Once).await;
        (attempt, sent.unwrap_or_default())
    }

    /// One attempt, in a span naming its delivery, webhook and workspace (so every line it
    /// logs, and every line logged below it, says which).
    async fn attempt(&self, claimed: Claimed, attempts: Attempts) -> (Attempt, Option<Vec<(String, String)>>) {
        let span = tracing::info_span!(
            "attempt",
            delivery_id = %claimed.delivery.id,
            webhook_id = %claimed.webhook.id,
            workspace_id = %claimed.webhook.workspace_id,
        );
        self.attempt_in_span(claimed, attempts).instrument(span).await
    }

    async fn attempt_in_span(&self, claimed: Claimed, attempts: Attempts) -> (Attempt, Option<Vec<(String, String)>>) {
        let inner = &self.inner;
        let started_at = inner.parts.clock.now();
        let outgoing = request::build(&claimed, started_at);
        let sent = matches!(attempts, Attempts::Once).then(|| request::shown_headers(&outgoing, &claimed.webhook));
        let answer = inner.parts.sender.send(outgoing, started_at).await;
        // The receiver is done with it: its slot is free while the result is written (the
        // lease keeps the delivery from being claimed again until then).
        inner.parts.slots.free(&claimed.delivery.id);
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
        let now = inner.parts.clock.now();
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
        let disable_reason = events::disable_reason(&claimed.webhook, &decision, health, now, &inner.parts.settings);
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
                match health {
                    Health::Up => inner.parts.slots.saw_health(&claimed.webhook.id, false),
                    Health::Down { .. } => inner.parts.slots.saw_health(&claimed.webhook.id, true),
                    Health::Unknown => {}
                }
                inner
                    .parts
                    .metrics
                    .attempt_finished(&claimed.webhook.id, decision.state, answer.duration);
                if let Some(reason) = &disable_reason {
                    tracing::warn!(webhook = %claimed.webhook.id, reason, "webhook disabled");
                    inner.parts.registry.changed(&claimed.webhook.workspace_id);
                }
                let facts = events::Facts {
                    decision: &decision,
                    health,
                    disabled: disable_reason.as_deref(),
                    now,
                };
                self.emit(&claimed, events::operational(&claimed, &facts, &inner.parts.settings));
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
        (attempt, sent)
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
