//! The circuit breaker's arithmetic: what a batch of attempts does to each webhook's failures
//! in a row, its pause and its last success and failure. Shared by every backend.

use std::collections::HashMap;

use super::Finish;
use crate::clock::Millis;

/// What an attempt says about its webhook's health, for the circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The receiver answered (2xx, or a deliberate 3xx/4xx): it is up.
    Up,
    /// The receiver failed `at` (5xx, 408/425/429, timeout, broken connection); the delivery
    /// is next due at `retry_at` (or is dead: then `retry_at` is `at`).
    Down { at: Millis, retry_at: Millis },
    /// Says nothing about the receiver (e.g. blocked by the SSRF policy).
    Unknown,
}

/// The net effect of a batch of attempts on one webhook's health, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerChange {
    /// No success in the batch: add `failures`, pause until `until` (the latest failure's
    /// retry time), and if the webhook was not failing, it has been since `since`.
    Add {
        failures: u32,
        until: Millis,
        since: Millis,
    },
    /// A success in the batch: `failures` failed after it (the first at `since`, 0 if none),
    /// pausing until `until` (0: not paused).
    Set {
        failures: u32,
        until: Millis,
        since: Millis,
    },
}

/// What a batch of attempts changes of one webhook's health: its breaker, and when its
/// receiver last answered well and last failed in the batch (0: not in this batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthChange {
    pub breaker: BreakerChange,
    pub last_success: Millis,
    pub last_failure: Millis,
}

/// The health changes of a batch of finishes, in order, by webhook. Shared by every backend.
pub fn breaker_changes<'a>(finishes: impl IntoIterator<Item = &'a Finish>) -> HashMap<&'a str, HealthChange> {
    const NONE: BreakerChange = BreakerChange::Add {
        failures: 0,
        until: 0,
        since: 0,
    };
    let mut changes: HashMap<&str, HealthChange> = HashMap::new();
    for finish in finishes {
        let change = changes.entry(finish.webhook_id.as_str()).or_insert(HealthChange {
            breaker: NONE,
            last_success: 0,
            last_failure: 0,
        });
        match finish.health {
            Health::Up => change.last_success = finish.now,
            Health::Down { .. } => change.last_failure = finish.now,
            Health::Unknown => {}
        }
        let entry = &mut change.breaker;
        let first = |since: Millis, at: Millis| if since == 0 { at } else { since };
        *entry = match (finish.health, *entry) {
            (Health::Up, _) => BreakerChange::Set {
                failures: 0,
                until: 0,
                since: 0,
            },
            (Health::Down { at, retry_at }, BreakerChange::Add { failures, since, .. }) => BreakerChange::Add {
                failures: failures + 1,
                until: retry_at,
                since: first(since, at),
            },
            (Health::Down { at, retry_at }, BreakerChange::Set { failures, since, .. }) => BreakerChange::Set {
                failures: failures + 1,
                until: retry_at,
                since: first(since, at),
            },
            (Health::Unknown, current) => current,
        };
    }
    changes.retain(|_, change| change.breaker != NONE);
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Attempt, DeliveryState};

    fn finish(webhook: &str, health: Health, now: Millis) -> Finish {
        Finish {
            delivery_id: format!("dlv_{now}").into(),
            webhook_id: webhook.into(),
            lease_token: "l".into(),
            attempt: Attempt {
                id: "att".into(),
                delivery_id: "dlv".into(),
                started_at: now,
                duration_ms: 1,
                status: None,
                response_headers: "{}".into(),
                response_body: None,
                error_kind: None,
                explanation: String::new(),
                outcome: DeliveryState::Pending,
            },
            state: DeliveryState::Pending,
            failures: 1,
            next_attempt_at: now,
            now,
            disable_webhook: None,
            health,
        }
    }

    #[test]
    fn a_batch_of_results_changes_each_webhooks_breaker_in_order() {
        let down = |at: Millis| Health::Down { at, retry_at: at + 5 };
        let batch = [
            finish("a", down(10), 10),
            finish("a", down(20), 20),
            finish("b", down(30), 30),
            finish("b", Health::Up, 40),
            finish("b", down(50), 50),
            finish("b", down(60), 60),
            finish("c", Health::Unknown, 70),
        ];
        let changes = breaker_changes(&batch);
        assert_eq!(
            changes["a"],
            HealthChange {
                breaker: BreakerChange::Add {
                    failures: 2,
                    until: 25,
                    since: 10
                },
                last_success: 0,
                last_failure: 20,
            },
            "no success: two more failures, failing since the first"
        );
        assert_eq!(
            changes["b"],
            HealthChange {
                breaker: BreakerChange::Set {
                    failures: 2,
                    until: 65,
                    since: 50
                },
                last_success: 40,
                last_failure: 60,
            },
            "a success, then two failures: counted from the success"
        );
        assert!(
            !changes.contains_key("c"),
            "an attempt that says nothing of the receiver"
        );
        let recovering = [finish("d", down(1), 1), finish("d", Health::Up, 2)];
        let healed = breaker_changes(&recovering);
        assert_eq!(
            healed["d"].breaker,
            BreakerChange::Set {
                failures: 0,
                until: 0,
                since: 0
            }
        );
    }
}
