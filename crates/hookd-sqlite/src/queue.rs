//! The delivery queue: leasing due deliveries, recording attempts, giving leases back.

use std::collections::{HashMap, HashSet};

use hookd_core::clock::Millis;
use hookd_core::id::{DeliveryId, LeaseToken, WebhookId};
use hookd_core::seal::Sealer;
use hookd_core::store::{
    BreakerChange, Candidate, ClaimRequest, Claimed, Finish, HealthChange, QueueStats, StoreError, assemble_claims,
    breaker_changes, lane_share, minute_tallies, pick_within_limits, round_robin,
};
use hookd_core::webhook::Webhook;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::db::DbResult;
use crate::rows::{self, DELIVERY_COLUMNS};
use crate::webhooks;

/// Leases due deliveries. Each webhook that can take a slot is a lane of its own (its due
/// deliveries, oldest first, read from the `(webhook_id, next_attempt_at)` index), and the
/// lanes are taken in turn, so one webhook's pile of due deliveries never makes the others
/// wait behind it. A delivery with an ordering key is taken only when it is the oldest
/// pending one of its key: the one before it, in flight or waiting for a retry, holds it.
pub(crate) fn claim_due(conn: &mut Connection, request: &ClaimRequest, sealer: &Sealer) -> DbResult<Vec<Claimed>> {
    let tx = conn.transaction()?;
    let candidates = candidates(&tx, request)?;
    let picked = pick_within_limits(&candidates, request);
    if picked.is_empty() {
        tx.commit()?;
        return Ok(Vec::new());
    }
    // A probe of a half-open breaker pauses its webhook again until the probe's lease ends (or
    // its result closes or re-opens the breaker), so no other worker probes at the same time.
    let picked_set: HashSet<&str> = picked.iter().map(DeliveryId::as_str).collect();
    let probing: Vec<&str> = candidates
        .iter()
        .filter(|c| c.half_open && picked_set.contains(c.delivery_id.as_str()))
        .map(|c| c.webhook_id.as_str())
        .collect();
    for webhook in probing {
        tx.prepare_cached("UPDATE webhooks SET breaker_until = ? WHERE id = ?")?
            .execute(params![request.lease.until, webhook])?;
    }
    let lease = format!(
        "UPDATE deliveries SET next_attempt_at = ?1, locked_until = ?1, lease_token = ?2 WHERE id = ?3 RETURNING {DELIVERY_COLUMNS}"
    );
    let mut deliveries = Vec::with_capacity(picked.len());
    let mut hooks: HashMap<WebhookId, Webhook> = HashMap::new();
    let mut bodies: HashMap<String, String> = HashMap::new();
    for id in &picked {
        let delivery = tx.prepare_cached(&lease)?.query_row(
            params![request.lease.until, request.lease.token.as_str(), id.as_str()],
            |row| Ok(rows::delivery(row)),
        )??;
        if !hooks.contains_key(&delivery.webhook_id) {
            let webhook = webhooks::by_id(&tx, &delivery.webhook_id, sealer)?
                .ok_or_else(|| StoreError::corrupt("delivery", format!("{} has no webhook", delivery.id)))?;
            hooks.insert(delivery.webhook_id.clone(), webhook);
        }
        for record in &delivery.record_ids {
            if !bodies.contains_key(record) {
                let body: Option<String> = tx
                    .prepare_cached("SELECT body FROM records WHERE id = ?")?
                    .query_row([record], |row| row.get(0))
                    .optional()?;
                if let Some(body) = body {
                    bodies.insert(record.clone(), body);
                }
            }
        }
        deliveries.push(delivery);
    }
    tx.commit()?;
    let hooks = hooks.into_values().collect();
    Ok(assemble_claims(&picked, deliveries, hooks, &bodies, &request.lease)?)
}

/// The claim candidates: the lanes of the webhooks that can take a slot, taken in turn from a
/// webhook that rotates per round.
fn candidates(tx: &Transaction<'_>, request: &ClaimRequest) -> DbResult<Vec<Candidate>> {
    let blocked: HashSet<WebhookId> = request.blocked_webhooks().into_iter().collect();
    let due: Vec<(String, bool)> = tx
        .prepare_cached(
            "SELECT id, consecutive_failures >= ?1 FROM webhooks w \
             WHERE enabled = 1 AND NOT (consecutive_failures >= ?1 AND breaker_until > ?2) \
               AND EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id AND d.state = 'pending' AND d.next_attempt_at <= ?2)",
        )?
        .query_map(params![request.breaker_threshold, request.now], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    // Each lane's room: one for a half-open breaker, else what its in-flight limit leaves
    // (never none: a webhook at its limit is among the blocked ones).
    let lanes: Vec<(String, bool, usize)> = due
        .into_iter()
        .filter(|(webhook, _)| !blocked.contains(webhook.as_str()))
        .map(|(webhook, half_open)| {
            let in_flight = request.in_flight.get(webhook.as_str()).copied().unwrap_or(0);
            let room = if half_open {
                1
            } else {
                request.per_webhook_limit.saturating_sub(in_flight)
            };
            (webhook, half_open, room)
        })
        .collect();
    let share = lane_share(request.limit, lanes.len());
    let mut lane = tx.prepare_cached(
        "SELECT id, failures > 0 FROM deliveries d WHERE webhook_id = ?1 AND state = 'pending' AND next_attempt_at <= ?2 \
           AND (ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries e \
             WHERE e.webhook_id = ?1 AND e.ordering_key = d.ordering_key AND e.state = 'pending' AND e.id < d.id)) \
         ORDER BY next_attempt_at LIMIT ?3",
    )?;
    let mut candidates = Vec::new();
    for (webhook, half_open, room) in lanes {
        // Twice the room, so first attempts can be preferred over retries due earlier.
        let take = share.min(room * 2) as i64;
        let found = lane.query_map(params![webhook, request.now, take], |row| {
            Ok(Candidate {
                delivery_id: row.get::<_, String>(0)?.into(),
                webhook_id: webhook.as_str().into(),
                retry: row.get(1)?,
                half_open,
            })
        })?;
        for candidate in found {
            candidates.push(candidate?);
        }
    }
    Ok(round_robin(candidates, request.now.unsigned_abs() as usize))
}

/// Records a batch of attempts in one transaction: each delivery whose lease is still held
/// moves to its new state and gets its attempt.
pub(crate) fn finish_many(conn: &mut Connection, finishes: &[Finish]) -> DbResult<Vec<bool>> {
    let tx = conn.transaction()?;
    let mut written = Vec::with_capacity(finishes.len());
    for f in finishes {
        let moved =
            tx.prepare_cached(
                "UPDATE deliveries SET state = ?3, attempts = attempts + 1, failures = ?4, next_attempt_at = ?5, \
                   locked_until = 0, lease_token = NULL, updated_at = ?6, last_status = ?7, last_explanation = ?8, \
                   order_broken = (order_broken OR (?3 = 'dead' AND ordering_key IS NOT NULL)) \
                 WHERE id = ?1 AND lease_token = ?2 AND state = 'pending'",
            )?
            .execute(params![
                f.delivery_id.as_str(),
                f.lease_token.as_str(),
                f.state.as_str(),
                f.failures,
                f.next_attempt_at,
                f.now,
                f.attempt.status,
                f.attempt.explanation
            ])? == 1;
        if moved {
            insert_attempt(&tx, f)?;
            if let Some(reason) = &f.disable_webhook {
                disable_webhook(&tx, f, reason)?;
            }
        }
        written.push(moved);
    }
    let recorded = finishes
        .iter()
        .zip(&written)
        .filter(|(_, moved)| **moved)
        .map(|(f, _)| f);
    for (webhook, change) in breaker_changes(recorded.clone()) {
        update_breaker(&tx, webhook, change)?;
    }
    crate::dashboard::add_tallies(&tx, &minute_tallies(recorded))?;
    tx.commit()?;
    Ok(written)
}

fn insert_attempt(tx: &Transaction<'_>, f: &Finish) -> DbResult<()> {
    let a = &f.attempt;
    tx.prepare_cached(
        "INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status, response_headers, response_body, error_kind, explanation, outcome) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        a.id,
        a.delivery_id.as_str(),
        a.started_at,
        a.duration_ms as i64,
        a.status,
        a.response_headers,
        a.response_body,
        a.error_kind,
        a.explanation,
        a.outcome.as_str()
    ])?;
    Ok(())
}

fn update_breaker(tx: &Transaction<'_>, webhook: &str, change: HealthChange) -> DbResult<()> {
    let (success, failure) = (change.last_success, change.last_failure);
    match change.breaker {
        BreakerChange::Add { failures, until, since } => tx
            .prepare_cached(
                "UPDATE webhooks SET consecutive_failures = consecutive_failures + ?1, breaker_until = ?2, \
                 failing_since = CASE WHEN failing_since = 0 THEN ?3 ELSE failing_since END, \
                 last_success_at = max(last_success_at, ?5), last_failure_at = max(last_failure_at, ?6) WHERE id = ?4",
            )?
            .execute(params![failures, until, since, webhook, success, failure])?,
        BreakerChange::Set { failures, until, since } => tx
            .prepare_cached(
                "UPDATE webhooks SET consecutive_failures = ?1, breaker_until = ?2, failing_since = ?3, \
                 last_success_at = max(last_success_at, ?5), last_failure_at = max(last_failure_at, ?6) WHERE id = ?4",
            )?
            .execute(params![failures, until, since, webhook, success, failure])?,
    };
    Ok(())
}

fn disable_webhook(tx: &Transaction<'_>, f: &Finish, reason: &str) -> DbResult<()> {
    tx.prepare_cached(
        "UPDATE webhooks SET enabled = 0, disabled_reason = ?, spec = json_set(spec, '$.enabled', json('false')), updated_at = ? \
         WHERE id = (SELECT webhook_id FROM deliveries WHERE id = ?)",
    )?
    .execute(params![reason, f.now, f.delivery_id.as_str()])?;
    Ok(())
}

pub(crate) fn release(conn: &mut Connection, leases: &[(DeliveryId, LeaseToken)]) -> DbResult<()> {
    let tx = conn.transaction()?;
    for (delivery_id, token) in leases {
        tx.prepare_cached(
            "UPDATE deliveries SET next_attempt_at = 0, locked_until = 0, lease_token = NULL \
             WHERE id = ? AND lease_token = ? AND state = 'pending'",
        )?
        .execute([delivery_id.as_str(), token.as_str()])?;
    }
    tx.commit()?;
    Ok(())
}

/// When the next delivery is due: the earliest per enabled webhook (an index seek each), no
/// earlier than its breaker's pause. A delivery waiting behind an earlier one of its lane
/// (per-device ordering) is not due, whatever its time says.
pub(crate) fn next_wake_at(conn: &Connection, breaker_threshold: u32) -> DbResult<Option<Millis>> {
    let at = conn
        .prepare_cached(
            "SELECT min(CASE WHEN failures >= ?1 THEN max(at, breaker_until) ELSE at END) FROM ( \
               SELECT w.consecutive_failures AS failures, w.breaker_until, \
                 (SELECT d.next_attempt_at FROM deliveries d WHERE d.webhook_id = w.id AND d.state = 'pending' \
                    AND (d.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries e \
                      WHERE e.webhook_id = w.id AND e.ordering_key = d.ordering_key AND e.state = 'pending' AND e.id < d.id)) ORDER BY d.next_attempt_at LIMIT 1) AS at \
               FROM webhooks w WHERE w.enabled = 1) \
             WHERE at IS NOT NULL",
        )?
        .query_row([breaker_threshold], |row| row.get(0))?;
    Ok(at)
}

pub(crate) fn stats(conn: &Connection, now: Millis) -> DbResult<QueueStats> {
    // One pass over the pending deliveries' index alone: rowids grow with insertion, so the
    // smallest is the oldest pending delivery, read on its own.
    let (pending, due, first): (u64, u64, Option<i64>) = conn
        .prepare_cached(
            "SELECT count(*), coalesce(sum(next_attempt_at <= ?), 0), min(rowid) \
             FROM deliveries INDEXED BY deliveries_due_by_webhook WHERE state = 'pending'",
        )?
        .query_row([now], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    let oldest = match first {
        Some(rowid) => Some(
            conn.prepare_cached("SELECT created_at FROM deliveries WHERE rowid = ?")?
                .query_row([rowid], |row| row.get(0))?,
        ),
        None => None,
    };
    Ok(QueueStats {
        pending,
        due,
        oldest_pending_at: oldest,
    })
}
