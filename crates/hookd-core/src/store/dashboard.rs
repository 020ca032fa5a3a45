//! What the dashboard keeps: per-minute tallies of attempts (for its health charts and each
//! webhook's success rate and latency), and its sessions and portal links.
//!
//! Tallies are written with the attempts they count, one row per webhook and minute, merged
//! in memory per batch of finishes ([`minute_tallies`]): a page reads at most 1,440 rows per
//! webhook for a day, however many deliveries there were.

use std::collections::HashMap;

use super::{DeliveryState, Finish};
use crate::clock::Millis;

/// Upper bounds (ms, inclusive) of the latency buckets; one more bucket holds the rest.
pub const LATENCY_BOUNDS_MS: [u64; 13] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
];
/// How many latency buckets a tally has.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

const MINUTE: Millis = 60_000;

/// Attempts in one minute: how they ended and how long they took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Attempts that delivered.
    pub delivered: u64,
    /// Attempts that failed, to be retried.
    pub retrying: u64,
    /// Attempts that failed for good (the delivery is failed or dead).
    pub failed: u64,
    /// Attempts by latency bucket ([`LATENCY_BOUNDS_MS`]).
    pub latency: [u64; LATENCY_BUCKETS],
}

impl Tally {
    pub fn attempts(&self) -> u64 {
        self.delivered + self.retrying + self.failed
    }

    /// Delivered attempts as a share of all; `None` without attempts.
    pub fn success_rate(&self) -> Option<f64> {
        let all = self.attempts();
        (all > 0).then(|| self.delivered as f64 / all as f64)
    }

    /// The latency (ms) below which `quantile` (0..1) of the attempts fell: the upper bound of
    /// the bucket it lands in (the last bucket, open, answers its lower bound).
    pub fn latency_quantile(&self, quantile: f64) -> Option<u64> {
        let all: u64 = self.latency.iter().sum();
        if all == 0 {
            return None;
        }
        let rank = ((all as f64) * quantile).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, count) in self.latency.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(LATENCY_BOUNDS_MS[bucket.min(LATENCY_BOUNDS_MS.len() - 1)]);
            }
        }
        LATENCY_BOUNDS_MS.last().copied()
    }

    pub fn add(&mut self, other: &Tally) {
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.failed += other.failed;
        for (mine, theirs) in self.latency.iter_mut().zip(other.latency) {
            *mine += theirs;
        }
    }

    fn count(&mut self, outcome: DeliveryState, duration_ms: u64) {
        match outcome {
            DeliveryState::Delivered => self.delivered += 1,
            DeliveryState::Pending => self.retrying += 1,
            DeliveryState::Failed | DeliveryState::Dead => self.failed += 1,
        }
        let bucket = LATENCY_BOUNDS_MS
            .iter()
            .position(|bound| duration_ms <= *bound)
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        self.latency[bucket] += 1;
    }
}

impl<'a> std::iter::Sum<&'a Tally> for Tally {
    fn sum<I: Iterator<Item = &'a Tally>>(tallies: I) -> Self {
        tallies.fold(Tally::default(), |mut sum, t| {
            sum.add(t);
            sum
        })
    }
}

/// One webhook's tally for the minute starting at `minute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteTally {
    pub webhook_id: String,
    pub minute: Millis,
    pub tally: Tally,
}

/// The minute (its start) that `at` falls in.
pub fn minute_of(at: Millis) -> Millis {
    at.div_euclid(MINUTE) * MINUTE
}

/// The tallies a batch of recorded finishes adds, one per webhook and minute. Shared by every
/// backend.
pub fn minute_tallies<'a>(finishes: impl IntoIterator<Item = &'a Finish>) -> Vec<MinuteTally> {
    let mut tallies: HashMap<(&str, Millis), Tally> = HashMap::new();
    for finish in finishes {
        let minute = minute_of(finish.attempt.started_at);
        tallies
            .entry((finish.webhook_id.as_str(), minute))
            .or_default()
            .count(finish.attempt.outcome, finish.attempt.duration_ms);
    }
    tallies
        .into_iter()
        .map(|((webhook_id, minute), tally)| MinuteTally {
            webhook_id: webhook_id.to_owned(),
            minute,
            tally,
        })
        .collect()
}

/// Whose minutes a chart reads: a workspace's, or one of its webhooks'.
#[derive(Debug, Clone)]
pub struct TallyQuery {
    pub workspace_id: String,
    pub webhook_id: Option<String>,
    /// From this minute on.
    pub since: Millis,
}

/// What a dashboard session may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every workspace (the admin key).
    Admin,
    /// Its workspace, reading and changing.
    Manage,
    /// Its workspace, reading only (a read-only portal link).
    Read,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Manage => "manage",
            Self::Read => "read",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "manage" => Some(Self::Manage),
            "read" => Some(Self::Read),
            _ => None,
        }
    }
}

/// A dashboard sign-in (a cookie) or a portal link (a URL), stored by the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    /// SHA-256 (hex) of the token the browser holds; the token itself is never stored.
    pub id: String,
    /// `true` for a portal link (opening it starts a sign-in), `false` for a sign-in.
    pub link: bool,
    /// What this pass stands on: the hash of the API key signed in with, or of the portal
    /// link opened. Revoking that revokes this pass.
    pub granted_by: String,
    /// `None` for the admin.
    pub workspace_id: Option<String>,
    pub access: Access,
    /// The token every form of this sign-in carries (empty for a link).
    pub csrf: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}
