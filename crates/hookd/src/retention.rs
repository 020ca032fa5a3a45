//! The pruner: deletes delivered deliveries, records and idempotency keys once they are older
//! than `[retention]` says, a small batch per transaction, so the database does not grow
//! without bound and ingest is never held up for long.

use std::sync::Arc;

use hookd_core::clock::Clock;
use hookd_core::store::{PruneCutoffs, PruneReport, Store, StoreResult};
use tokio_util::sync::CancellationToken;

use crate::config::RetentionSettings;
use crate::metrics::Metrics;

/// One pass: prunes batch after batch until nothing old enough is left.
pub async fn prune_all(
    store: &dyn Store,
    clock: &dyn Clock,
    settings: &RetentionSettings,
    metrics: &Metrics,
) -> StoreResult<PruneReport> {
    let now = clock.now();
    let ago = |d: std::time::Duration| now - d.as_millis() as i64;
    let cutoffs = PruneCutoffs {
        delivered_before: ago(settings.delivered),
        failed_before: ago(settings.failed),
        // A record outlives every delivery that carries it; unreferenced, it goes once it is
        // as old as a delivered delivery may get.
        records_before: ago(settings.delivered),
        keys_before: ago(settings.idempotency_keys),
    };
    let mut total = PruneReport::default();
    loop {
        let report = store.prune(&cutoffs, settings.batch).await?;
        metrics.pruned(&report);
        total.deliveries += report.deliveries;
        total.records += report.records;
        total.keys += report.keys;
        let limit = settings.batch as u64;
        if report.deliveries < limit && report.records < limit && report.keys < limit {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// Prunes every `interval` until `shutdown`.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: RetentionSettings,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    loop {
        match prune_all(store.as_ref(), clock.as_ref(), &settings, &metrics).await {
            Ok(report) if report.total() > 0 => {
                tracing::info!(
                    deliveries = report.deliveries,
                    records = report.records,
                    keys = report.keys,
                    "pruned"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = ?err, "pruning failed; trying again later"),
        }
        tokio::select! {
            () = tokio::time::sleep(settings.interval) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
