//! Prometheus metrics. Counters and histograms are recorded where things happen; queue gauges
//! are read from the store when `/metrics` is scraped. Every metric is described (`# HELP`).
//!
//! Per-webhook series (`hookd_webhook_*{webhook}`) are bounded: the first
//! `metrics.webhook_labels` webhooks this process attempts get a label of their own, every
//! later one shares `webhook="other"`, so a workspace with thousands of webhooks cannot blow
//! up the scrape.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use hookd_core::clock::Millis;
use hookd_core::store::{DeliveryState, PruneReport, QueueStats};
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const ATTEMPT_SECONDS: &str = "hookd_attempt_duration_seconds";
const WEBHOOK_ATTEMPT_SECONDS: &str = "hookd_webhook_attempt_duration_seconds";
const COMMIT_BATCH: &str = "hookd_ingest_commit_requests";
const ATTEMPT_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The process-wide recorder, installed on first use (tests build many apps in one process).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(ATTEMPT_SECONDS.into()), &ATTEMPT_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(WEBHOOK_ATTEMPT_SECONDS.into()), &ATTEMPT_BUCKETS))
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(COMMIT_BATCH.into()),
                        &[1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0],
                    )
                })
                .expect("bucket lists are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed; then ours just renders nothing.
            if metrics::set_global_recorder(recorder).is_ok() {
                describe();
            }
            handle
        })
        .clone()
}

/// The `# HELP` of every metric.
fn describe() {
    describe_counter!(
        "hookd_records_ingested_total",
        "Records acknowledged (on disk), by kind."
    );
    describe_counter!(
        "hookd_attempts_total",
        "Attempts recorded, by the delivery's state after them: delivered, retry, failed, dead."
    );
    describe_histogram!(
        ATTEMPT_SECONDS,
        Unit::Seconds,
        "How long receivers took to answer an attempt."
    );
    describe_counter!(
        "hookd_webhook_attempts_total",
        "Attempts recorded per webhook (the first metrics.webhook_labels webhooks; the rest as webhook=\"other\"), by outcome."
    );
    describe_histogram!(
        WEBHOOK_ATTEMPT_SECONDS,
        Unit::Seconds,
        "How long a webhook's receiver took to answer (labelled as hookd_webhook_attempts_total)."
    );
    describe_gauge!(
        "hookd_deliveries_pending",
        "Deliveries not yet delivered, failed or dead."
    );
    describe_gauge!("hookd_deliveries_due", "Pending deliveries due now.");
    describe_gauge!(
        "hookd_oldest_pending_delivery_age_seconds",
        Unit::Seconds,
        "Age of the oldest pending delivery (0 when none)."
    );
    describe_histogram!(COMMIT_BATCH, "Ingest requests written per group commit.");
    describe_counter!(
        "hookd_deliveries_handed_over_total",
        "New deliveries attempted at once, without a claim."
    );
    describe_counter!("hookd_pruned_total", "Rows deleted by retention, by kind.");
}

/// The `webhook` label values of one dispatcher: the first `max` webhooks it attempts keep
/// their id, later ones share `other`.
#[derive(Debug)]
pub struct WebhookLabels {
    max: usize,
    labelled: Mutex<HashSet<String>>,
}

impl WebhookLabels {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            labelled: Mutex::default(),
        }
    }

    /// The label for webhook `id`: itself while there is room, else `other`.
    pub fn of(&self, id: &str) -> String {
        let mut labelled = self.labelled.lock().unwrap_or_else(|p| p.into_inner());
        if labelled.contains(id) {
            return id.to_owned();
        }
        if labelled.len() < self.max {
            labelled.insert(id.to_owned());
            return id.to_owned();
        }
        "other".to_owned()
    }
}

pub fn records_ingested(kind: &'static str, count: usize) {
    counter!("hookd_records_ingested_total", "kind" => kind).increment(count as u64);
}

/// Deliveries written leased to this process's dispatcher and attempted without a claim.
pub fn handed_over(count: usize) {
    counter!("hookd_deliveries_handed_over_total").increment(count as u64);
}

pub fn commit_batch(requests: usize) {
    histogram!(COMMIT_BATCH).record(requests as f64);
}

/// An attempt recorded, for `webhook` (its label, from [`WebhookLabels::of`]).
pub fn attempt_finished(webhook: String, state: DeliveryState, took: Duration) {
    let outcome = match state {
        DeliveryState::Pending => "retry",
        other => other.as_str(),
    };
    counter!("hookd_attempts_total", "outcome" => outcome).increment(1);
    histogram!(ATTEMPT_SECONDS).record(took.as_secs_f64());
    counter!("hookd_webhook_attempts_total", "webhook" => webhook.clone(), "outcome" => outcome).increment(1);
    histogram!(WEBHOOK_ATTEMPT_SECONDS, "webhook" => webhook).record(took.as_secs_f64());
}

pub fn pruned(report: &PruneReport) {
    counter!("hookd_pruned_total", "kind" => "deliveries").increment(report.deliveries);
    counter!("hookd_pruned_total", "kind" => "records").increment(report.records);
    counter!("hookd_pruned_total", "kind" => "idempotency_keys").increment(report.keys);
}

pub fn queue(stats: QueueStats, now: Millis) {
    gauge!("hookd_deliveries_pending").set(stats.pending as f64);
    gauge!("hookd_deliveries_due").set(stats.due as f64);
    let age = stats
        .oldest_pending_at
        .map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0);
    gauge!("hookd_oldest_pending_delivery_age_seconds").set(age);
}
