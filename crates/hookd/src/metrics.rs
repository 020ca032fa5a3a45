//! Prometheus metrics. Counters and histograms are recorded where things happen; queue gauges
//! are read from the store when `/metrics` is scraped.

use std::sync::OnceLock;
use std::time::Duration;

use hookd_core::clock::Millis;
use hookd_core::store::{DeliveryState, PruneReport, QueueStats};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const ATTEMPT_SECONDS: &str = "hookd_attempt_duration_seconds";
const COMMIT_BATCH: &str = "hookd_ingest_commit_requests";

/// The process-wide recorder, installed on first use (tests build many apps in one process).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(ATTEMPT_SECONDS.into()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    ],
                )
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
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
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

pub fn attempt_finished(state: DeliveryState, took: Duration) {
    let outcome = match state {
        DeliveryState::Pending => "retry",
        other => other.as_str(),
    };
    counter!("hookd_attempts_total", "outcome" => outcome).increment(1);
    histogram!(ATTEMPT_SECONDS).record(took.as_secs_f64());
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
