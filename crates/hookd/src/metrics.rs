//! Prometheus metrics, per app: each [`Metrics`] has a recorder of its own (nothing is
//! installed process-wide), so apps sharing a process — the tests — never count into each
//! other. Counters and histograms are recorded where things happen; queue gauges are read from
//! the store when `/metrics` is scraped. Every metric is described (`# HELP`).
//!
//! Per-webhook series (`hookd_webhook_*{webhook}`) are bounded: the first
//! `metrics.webhook_labels` webhooks this process attempts get a label of their own, every
//! later one shares `webhook="other"`, so a workspace with thousands of webhooks cannot blow
//! up the scrape.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookd_core::clock::Millis;
use hookd_core::store::{DeliveryState, PruneReport, QueueStats};
use metrics::{Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

const RECORDS_INGESTED: &str = "hookd_records_ingested_total";
const ATTEMPTS: &str = "hookd_attempts_total";
const ATTEMPT_SECONDS: &str = "hookd_attempt_duration_seconds";
const WEBHOOK_ATTEMPTS: &str = "hookd_webhook_attempts_total";
const WEBHOOK_ATTEMPT_SECONDS: &str = "hookd_webhook_attempt_duration_seconds";
const PENDING: &str = "hookd_deliveries_pending";
const DUE: &str = "hookd_deliveries_due";
const OLDEST: &str = "hookd_oldest_pending_delivery_age_seconds";
const COMMIT_BATCH: &str = "hookd_ingest_commit_requests";
const HANDED_OVER: &str = "hookd_deliveries_handed_over_total";
const CLAIM_ROUNDS: &str = "hookd_claim_rounds_total";
const PRUNED: &str = "hookd_pruned_total";
const CONDITION_ERRORS: &str = "hookd_condition_errors_total";
const MQTT_CONNECTED: &str = "hookd_mqtt_connected";
const MQTT_CONNECTS: &str = "hookd_mqtt_connects_total";
const MQTT_MESSAGES: &str = "hookd_mqtt_messages_total";

const ATTEMPT_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// One app's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    labels: Arc<WebhookLabels>,
}

impl Metrics {
    /// A recorder with hookd's buckets and descriptions; `webhook_labels` webhooks get series
    /// of their own.
    pub fn new(webhook_labels: usize) -> Self {
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
        let metrics = Self {
            recorder: Arc::new(recorder),
            handle,
            labels: Arc::new(WebhookLabels::new(webhook_labels)),
        };
        metrics.describe();
        metrics
    }

    /// The `# HELP` of every metric.
    fn describe(&self) {
        let help = |name: &'static str, unit: Option<Unit>, text: &'static str| {
            let (key, text) = (KeyName::from_const_str(name), SharedString::const_str(text));
            match name {
                n if n.ends_with("_total") => self.recorder.describe_counter(key, unit, text),
                PENDING | DUE | OLDEST | MQTT_CONNECTED => self.recorder.describe_gauge(key, unit, text),
                _ => self.recorder.describe_histogram(key, unit, text),
            }
        };
        help(RECORDS_INGESTED, None, "Records acknowledged (on disk), by kind.");
        help(
            ATTEMPTS,
            None,
            "Attempts recorded, by the delivery's state after them: delivered, retry, failed, dead.",
        );
        help(
            ATTEMPT_SECONDS,
            Some(Unit::Seconds),
            "How long receivers took to answer an attempt.",
        );
        help(
            WEBHOOK_ATTEMPTS,
            None,
            "Attempts recorded per webhook (the first metrics.webhook_labels webhooks; the rest as webhook=\"other\"), by outcome.",
        );
        help(
            WEBHOOK_ATTEMPT_SECONDS,
            Some(Unit::Seconds),
            "How long a webhook's receiver took to answer (labelled as hookd_webhook_attempts_total).",
        );
        help(PENDING, None, "Deliveries not yet delivered, failed or dead.");
        help(DUE, None, "Pending deliveries due now.");
        help(
            OLDEST,
            Some(Unit::Seconds),
            "Age of the oldest pending delivery (0 when none).",
        );
        help(COMMIT_BATCH, None, "Ingest requests written per group commit.");
        help(HANDED_OVER, None, "New deliveries attempted at once, without a claim.");
        help(
            CLAIM_ROUNDS,
            None,
            "Rounds in which the dispatcher claimed due deliveries from the store, by whether they found any: some, none.",
        );
        help(PRUNED, None, "Rows deleted by retention, by kind.");
        help(
            CONDITION_ERRORS,
            None,
            "Records a webhook condition could not be run on (an error, a timeout): counted as no match.",
        );
        help(MQTT_CONNECTED, None, "1 while connected to the [mqtt] broker, else 0.");
        help(
            MQTT_CONNECTS,
            None,
            "Connections to the [mqtt] broker made, by outcome: ok, error.",
        );
        help(
            MQTT_MESSAGES,
            None,
            "MQTT messages, by outcome: received (from the broker), committed (then acknowledged to it), invalid (acknowledged, no record: the reason is logged), dropped (QoS 0 beyond what hookd keeps up with).",
        );
    }

    pub fn mqtt_connected(&self, connected: bool) {
        self.set(MQTT_CONNECTED, if connected { 1.0 } else { 0.0 });
    }

    pub fn mqtt_connect(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.count(MQTT_CONNECTS, vec![Label::from_static_parts("outcome", outcome)], 1);
    }

    pub fn mqtt_message(&self, outcome: &'static str) {
        self.count(MQTT_MESSAGES, vec![Label::from_static_parts("outcome", outcome)], 1);
    }

    fn key(name: &'static str, labels: Vec<Label>) -> Key {
        Key::from_parts(name, labels)
    }

    fn count(&self, name: &'static str, labels: Vec<Label>, by: u64) {
        self.recorder
            .register_counter(&Self::key(name, labels), &METADATA)
            .increment(by);
    }

    fn observe(&self, name: &'static str, labels: Vec<Label>, value: f64) {
        self.recorder
            .register_histogram(&Self::key(name, labels), &METADATA)
            .record(value);
    }

    fn set(&self, name: &'static str, value: f64) {
        self.recorder
            .register_gauge(&Self::key(name, Vec::new()), &METADATA)
            .set(value);
    }

    /// The text exposition of everything recorded.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    pub fn records_ingested(&self, kind: &'static str, count: usize) {
        self.count(
            RECORDS_INGESTED,
            vec![Label::from_static_parts("kind", kind)],
            count as u64,
        );
    }

    /// Deliveries written leased to this process's dispatcher and attempted without a claim.
    pub fn handed_over(&self, count: usize) {
        self.count(HANDED_OVER, Vec::new(), count as u64);
    }

    /// A claim round, and whether it found due deliveries.
    pub fn claim_round(&self, found: bool) {
        let found = if found { "some" } else { "none" };
        self.count(CLAIM_ROUNDS, vec![Label::from_static_parts("found", found)], 1);
    }

    /// Records a webhook's condition failed on, each taken as no match.
    pub fn condition_errors(&self, count: usize) {
        self.count(CONDITION_ERRORS, Vec::new(), count as u64);
    }

    pub fn commit_batch(&self, requests: usize) {
        self.observe(COMMIT_BATCH, Vec::new(), requests as f64);
    }

    /// An attempt recorded for webhook `webhook`.
    pub fn attempt_finished(&self, webhook: &str, state: DeliveryState, took: Duration) {
        let outcome = match state {
            DeliveryState::Pending => "retry",
            other => other.as_str(),
        };
        let seconds = took.as_secs_f64();
        self.count(ATTEMPTS, vec![Label::from_static_parts("outcome", outcome)], 1);
        self.observe(ATTEMPT_SECONDS, Vec::new(), seconds);
        let webhook = self.labels.of(webhook);
        self.count(
            WEBHOOK_ATTEMPTS,
            vec![
                Label::new("webhook", webhook.clone()),
                Label::from_static_parts("outcome", outcome),
            ],
            1,
        );
        self.observe(WEBHOOK_ATTEMPT_SECONDS, vec![Label::new("webhook", webhook)], seconds);
    }

    pub fn pruned(&self, report: &PruneReport) {
        let kind = |k: &'static str| vec![Label::from_static_parts("kind", k)];
        self.count(PRUNED, kind("deliveries"), report.deliveries);
        self.count(PRUNED, kind("records"), report.records);
        self.count(PRUNED, kind("idempotency_keys"), report.keys);
    }

    pub fn queue(&self, stats: QueueStats, now: Millis) {
        self.set(PENDING, stats.pending as f64);
        self.set(DUE, stats.due as f64);
        let age = stats
            .oldest_pending_at
            .map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0);
        self.set(OLDEST, age);
    }
}

/// The `webhook` label values: the first `max` webhooks attempted keep their id, later ones
/// share `other`.
#[derive(Debug)]
struct WebhookLabels {
    max: usize,
    labelled: Mutex<HashSet<String>>,
}

impl WebhookLabels {
    fn new(max: usize) -> Self {
        Self {
            max,
            labelled: Mutex::default(),
        }
    }

    /// The label for webhook `id`: itself while there is room, else `other`.
    fn of(&self, id: &str) -> String {
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
