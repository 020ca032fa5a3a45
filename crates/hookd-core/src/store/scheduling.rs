//! Choosing what a claim takes: each webhook's due deliveries as a lane, taken in turn, within
//! the in-flight limits and the reserve, first attempts before retries. Shared by every backend.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::{Admission, Claimed, Delivery, Lease, StoreError, StoreResult};
use crate::clock::Millis;
use crate::id::{DeliveryId, WebhookId};
use crate::webhook::Webhook;

#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub now: Millis,
    pub lease: Lease,
    pub limit: usize,
    pub per_webhook_limit: usize,
    /// Of the `limit` free slots, this many are kept for webhooks with few attempts in flight
    /// (see [`Admission`]).
    pub reserve: usize,
    /// Failures in a row that open a webhook's circuit breaker: the webhook is then paused
    /// until its next retry time, and afterwards lets one attempt at a time through (a probe)
    /// until one succeeds.
    pub breaker_threshold: u32,
    /// Attempts this process already has in flight, by webhook id.
    pub in_flight: HashMap<WebhookId, usize>,
}

/// A delivery that may be claimed: its id, its webhook, whether it is a retry, and whether its
/// webhook's breaker is half-open (one attempt at a time).
#[derive(Debug, Clone)]
pub struct Candidate {
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    pub retry: bool,
    pub half_open: bool,
}

impl ClaimRequest {
    /// The round's limits, as one rule.
    pub fn admission(&self) -> Admission {
        Admission {
            free: self.limit,
            per_lane: self.per_webhook_limit,
            reserve: self.reserve,
        }
    }

    /// Webhooks that can take no slot in this round ([`Admission::blocks`]). Backends leave
    /// their deliveries out of the candidates, so they cannot crowd out the deliveries of
    /// webhooks that can.
    pub fn blocked_webhooks(&self) -> Vec<WebhookId> {
        let admission = self.admission();
        self.in_flight
            .iter()
            .filter(|(_, n)| admission.blocks(**n))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// How many candidates to read per webhook lane when `lanes` webhooks have due deliveries:
/// their share of twice the claim's `limit` (twice, so first attempts can be preferred over
/// retries due earlier), at least a few. Reading every lane's full room would read (and on
/// PostgreSQL lock) a hundred times more rows than a claim can take with a hundred webhooks.
pub fn lane_share(limit: usize, lanes: usize) -> usize {
    (2 * limit).div_ceil(lanes.max(1)).max(4)
}

/// Interleaves candidates webhook by webhook: each webhook's first (oldest due), then each
/// one's second, and so on, starting from the webhook at `start` (modulo how many there are),
/// so one webhook's pile of due deliveries never makes the others wait behind it. Within a
/// webhook the order is kept. Shared by every backend.
pub fn round_robin(candidates: Vec<Candidate>, start: usize) -> Vec<Candidate> {
    let mut lanes: Vec<VecDeque<Candidate>> = Vec::new();
    let mut lane_of: HashMap<WebhookId, usize> = HashMap::new();
    for candidate in candidates {
        let next = lanes.len();
        let lane = *lane_of.entry(candidate.webhook_id.clone()).or_insert(next);
        if lane == next {
            lanes.push(Default::default());
        }
        lanes[lane].push_back(candidate);
    }
    if lanes.is_empty() {
        return Vec::new();
    }
    let start = start % lanes.len();
    lanes.rotate_left(start);
    let mut interleaved = Vec::new();
    while lanes.iter().any(|lane| !lane.is_empty()) {
        interleaved.extend(lanes.iter_mut().filter_map(|lane| lane.pop_front()));
    }
    interleaved
}

/// Chooses which candidates (each lane oldest due first) to lease: first attempts before
/// retries, but retries keep at least a quarter of the slots so they are never starved; each
/// one only as [`Admission`] admits it. Shared by every backend.
pub fn pick_within_limits(candidates: &[Candidate], request: &ClaimRequest) -> Vec<DeliveryId> {
    let (retries, firsts): (Vec<&Candidate>, Vec<&Candidate>) = candidates.iter().partition(|c| c.retry);
    let retry_share = if retries.is_empty() {
        0
    } else {
        request.limit.div_ceil(4)
    };
    let first_share = request.limit.saturating_sub(retry_share);
    let mut taken: HashMap<WebhookId, usize> = HashMap::new();
    let mut chosen: HashSet<DeliveryId> = HashSet::new();
    let mut picked: Vec<DeliveryId> = Vec::new();
    let admission = request.admission();
    let mut take = |lane: &[&Candidate], cap: usize, picked: &mut Vec<DeliveryId>| {
        for candidate in lane {
            if picked.len() >= cap {
                break;
            }
            if chosen.contains(&candidate.delivery_id) {
                continue;
            }
            let already = request.in_flight.get(&candidate.webhook_id).copied().unwrap_or(0);
            let count = taken.entry(candidate.webhook_id.clone()).or_insert(0);
            if admission.admits(picked.len(), already + *count, candidate.half_open) {
                *count += 1;
                chosen.insert(candidate.delivery_id.clone());
                picked.push(candidate.delivery_id.clone());
            }
        }
    };
    take(&firsts, first_share, &mut picked);
    take(&retries, request.limit, &mut picked);
    take(&firsts, request.limit, &mut picked);
    picked
}

/// Builds the claims of a claim round from what the backend read: the leased deliveries (in
/// any order), their webhooks and their records' bodies. Claims come out in `picked` order.
/// Shared by every backend.
pub fn assemble_claims(
    picked: &[DeliveryId],
    mut deliveries: Vec<Delivery>,
    webhooks: Vec<Webhook>,
    bodies: &HashMap<String, String>,
    lease: &Lease,
) -> StoreResult<Vec<Claimed>> {
    let order: HashMap<&str, usize> = picked.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    deliveries.sort_by_key(|d| order.get(d.id.as_str()).copied());
    let hooks: HashMap<WebhookId, Arc<Webhook>> = webhooks.into_iter().map(|w| (w.id.clone(), Arc::new(w))).collect();
    let corrupt = |what: String| StoreError::corrupt("delivery", what);
    deliveries
        .into_iter()
        .map(|delivery| {
            let webhook = hooks
                .get(&delivery.webhook_id)
                .cloned()
                .ok_or_else(|| corrupt(format!("{} has no webhook", delivery.id)))?;
            let records = delivery
                .record_ids
                .iter()
                .map(|id| {
                    bodies
                        .get(id)
                        .cloned()
                        .ok_or_else(|| corrupt(format!("record {id} is missing")))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Claimed {
                delivery,
                lease: lease.clone(),
                webhook,
                records,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RESERVE_BELOW;

    fn candidates(webhook: &str, n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                delivery_id: format!("{webhook}-{i}").into(),
                webhook_id: webhook.into(),
                retry: false,
                half_open: false,
            })
            .collect()
    }

    fn request(limit: usize, reserve: usize, in_flight: &[(&str, usize)]) -> ClaimRequest {
        ClaimRequest {
            now: 0,
            lease: Lease {
                token: "l".into(),
                until: 1,
            },
            limit,
            per_webhook_limit: 64,
            reserve,
            breaker_threshold: 5,
            in_flight: in_flight.iter().map(|(w, n)| ((*w).into(), *n)).collect(),
        }
    }

    #[test]
    fn webhooks_holding_many_slots_cannot_take_the_reserve() {
        // Slow webhooks already hold most slots; 32 are free, all of them reserved.
        let mut due = candidates("slow", 40);
        due.extend(candidates("healthy", 20));
        let picked = pick_within_limits(&due, &request(32, 32, &[("slow", 48), ("healthy", 0)]));
        assert!(picked.iter().all(|id| id.starts_with("healthy")), "{picked:?}");
        assert_eq!(picked.len(), RESERVE_BELOW);
    }

    #[test]
    fn a_claim_leaves_out_the_webhooks_its_admission_blocks() {
        let mut request = request(10, 2, &[("w", 64), ("v", 3)]);
        request.per_webhook_limit = 20;
        assert_eq!(request.blocked_webhooks(), ["w"]);
    }

    #[test]
    fn each_lane_reads_its_share_of_twice_the_limit() {
        assert_eq!(lane_share(256, 1), 512);
        assert_eq!(lane_share(256, 10), 52);
        assert_eq!(lane_share(256, 1000), 4, "at least a few");
        assert_eq!(lane_share(10, 0), 20);
    }

    #[test]
    fn round_robin_takes_each_webhook_in_turn_from_a_rotating_start() {
        let mut due = candidates("pile", 5);
        due.extend(candidates("a", 2));
        due.extend(candidates("b", 1));
        let order = |start| -> Vec<DeliveryId> {
            round_robin(due.clone(), start)
                .into_iter()
                .map(|c| c.delivery_id)
                .collect()
        };
        assert_eq!(
            order(0),
            ["pile-0", "a-0", "b-0", "pile-1", "a-1", "pile-2", "pile-3", "pile-4"]
        );
        assert_eq!(
            order(4)[..3],
            ["a-0", "b-0", "pile-0"],
            "start 4 of 3 webhooks is the second"
        );
        assert!(round_robin(Vec::new(), 7).is_empty());
    }

    #[test]
    fn outside_the_reserve_only_the_per_webhook_limit_applies() {
        let due = candidates("busy", 100);
        let picked = pick_within_limits(&due, &request(100, 25, &[]));
        assert_eq!(picked.len(), 64, "the per-webhook limit, all from unreserved slots");
        let picked = pick_within_limits(&due, &request(60, 25, &[]));
        assert_eq!(
            picked.len(),
            35,
            "one webhook with many in flight leaves the reserve free"
        );
    }
}
