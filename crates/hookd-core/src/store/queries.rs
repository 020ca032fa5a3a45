//! What store calls ask for and answer: an attempt's result to write, the delivery log's
//! filters, replays, retention's cutoffs and report, queue statistics.

use super::{Attempt, DeliveryState, Health};
use crate::clock::Millis;
use crate::id::{DeliveryId, LeaseToken, WebhookId};

/// The result of an attempt, written in one transaction.
#[derive(Debug, Clone)]
pub struct Finish {
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    pub lease_token: LeaseToken,
    pub attempt: Attempt,
    pub state: DeliveryState,
    pub failures: u32,
    pub next_attempt_at: Millis,
    pub now: Millis,
    /// Disable the delivery's webhook with this reason (410 Gone).
    pub disable_webhook: Option<String>,
    pub health: Health,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub webhook_id: Option<WebhookId>,
    pub state: Option<DeliveryState>,
    pub limit: usize,
    /// Cursor: only deliveries with an id lower than this (older).
    pub after: Option<DeliveryId>,
}

impl DeliveryQuery {
    /// The SQL conditions this query adds to `workspace_id = <first placeholder>`, and the
    /// text parameters they bind, in order; `mark(n)` is a backend's `n`-th placeholder. Only
    /// the filters given appear, so the planner can use the `(workspace_id, id)` and
    /// `(webhook_id, id)` indexes as ranges.
    pub fn sql_filters(&self, mark: impl Fn(usize) -> String) -> (String, Vec<&str>) {
        let mut sql = String::new();
        let mut params: Vec<&str> = Vec::new();
        let filters = [
            ("webhook_id =", self.webhook_id.as_deref()),
            ("state =", self.state.map(DeliveryState::as_str)),
            ("id <", self.after.as_deref()),
        ];
        for (condition, value) in filters {
            if let Some(value) = value {
                params.push(value);
                sql.push_str(&format!(" AND {condition} {}", mark(params.len() + 1)));
            }
        }
        (sql, params)
    }
}

#[derive(Debug, Clone)]
pub struct ReplayQuery {
    pub webhook_id: WebhookId,
    pub since: Millis,
    pub until: Millis,
    pub states: Vec<DeliveryState>,
    /// What the replayed deliveries' summary (`last_explanation`) says now.
    pub note: String,
    /// Only count the deliveries it would replay; change nothing.
    pub dry_run: bool,
}

/// What retention deletes: finished deliveries (with their attempts) last changed before these
/// times, records no delivery references any more and older than `records_before`, and
/// idempotency keys older than `keys_before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneCutoffs {
    pub delivered_before: Millis,
    pub failed_before: Millis,
    pub records_before: Millis,
    pub keys_before: Millis,
}

/// What one prune call deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub deliveries: u64,
    pub records: u64,
    pub keys: u64,
    /// Logged source requests (accepted ones by `delivered_before`, the others by
    /// `failed_before`), and message ids past their replay window.
    pub source_requests: u64,
}

impl PruneReport {
    pub fn total(&self) -> u64 {
        self.deliveries + self.records + self.keys + self.source_requests
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub pending: u64,
    pub due: u64,
    pub oldest_pending_at: Option<Millis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prune_report_totals_its_kinds() {
        let report = PruneReport {
            deliveries: 2,
            records: 3,
            keys: 5,
            source_requests: 7,
        };
        assert_eq!(report.total(), 17);
        assert_eq!(PruneReport::default().total(), 0);
    }
}
