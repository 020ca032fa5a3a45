//! The ingest transaction: every request of a group commit, written at once, each row by one
//! cached prepared statement.

use std::collections::HashMap;

use hookd_core::store::{
    Coalescing, DeviceSeen, IngestRequest, IngestResult, Insert, NewDelivery, Newest, Placement, SourceRequest, place,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::db::DbResult;
use crate::rows::json_list;

pub(crate) fn commit(conn: &mut Connection, batch: &[IngestRequest]) -> DbResult<Vec<IngestResult>> {
    let tx = conn.transaction()?;
    let mut results = Vec::with_capacity(batch.len());
    // Keys written earlier in this batch: (workspace, key) → (request hash, record ids).
    let mut fresh_keys: HashMap<(&str, &str), (&str, Vec<String>)> = HashMap::new();
    let mut written: Vec<&IngestRequest> = Vec::with_capacity(batch.len());
    for request in batch {
        let ids: Vec<String> = request.records.iter().map(|r| r.id.clone()).collect();
        if let Some(m) = request.door.as_ref().and_then(|d| d.message.as_ref())
            && !crate::sources::remember(&tx, &m.source_id, &m.message_id, m.now, m.until)?
        {
            results.push(IngestResult::MessageSeen);
            continue;
        }
        if let Some(idem) = &request.idempotency {
            let seen = match fresh_keys.get(&(request.workspace_id.as_str(), idem.key.as_str())) {
                Some((hash, ids)) => Some(((*hash).to_owned(), ids.clone())),
                None => stored_key(&tx, &request.workspace_id, &idem.key)?,
            };
            if let Some((hash, first_ids)) = seen {
                results.push(if hash == idem.request_hash {
                    IngestResult::Replayed(first_ids)
                } else {
                    IngestResult::KeyConflict
                });
                continue;
            }
            fresh_keys.insert((&request.workspace_id, &idem.key), (&idem.request_hash, ids.clone()));
        }
        written.push(request);
        results.push(IngestResult::Committed(ids));
    }
    let mut heard: Vec<(&str, &DeviceSeen)> = Vec::new();
    for request in &written {
        heard.extend(request.devices.iter().map(|d| (request.workspace_id.as_str(), d)));
    }
    crate::presence::seen(&tx, &heard)?;
    for request in &written {
        insert(&tx, request)?;
        if let Some(door) = &request.door {
            let log = SourceRequest {
                record_ids: request.records.iter().map(|r| r.id.clone()).collect(),
                ..door.log.clone()
            };
            crate::sources::log_request(&tx, &log)?;
        }
    }
    tx.commit()?;
    Ok(results)
}

/// One request's records (with the number of deliveries that reference them, for retention),
/// its deliveries whose webhook still exists (one deleted meanwhile is skipped), its key.
fn insert(tx: &Transaction<'_>, request: &IngestRequest) -> DbResult<()> {
    let mut records = tx.prepare_cached(
        "INSERT INTO records (id, workspace_id, kind, body, created_at, refs) VALUES (?, ?, ?, ?, ?, ?)",
    )?;
    for (record, refs) in request.records.iter().zip(request.references()) {
        records.execute(params![
            record.id,
            record.workspace_id,
            record.kind.as_str(),
            record.body,
            record.created_at,
            refs
        ])?;
    }
    for delivery in &request.deliveries {
        match &delivery.coalescing {
            None => insert_delivery(tx, delivery, &Insert::planned(delivery))?,
            Some(coalescing) => coalesce(tx, delivery, coalescing)?,
        }
    }
    if let Some(idem) = &request.idempotency {
        let ids: Vec<&str> = request.records.iter().map(|r| r.id.as_str()).collect();
        tx.prepare_cached(
            "INSERT INTO idempotency_keys (workspace_id, key, request_hash, record_ids, created_at) VALUES (?, ?, ?, ?, ?)",
        )?
        .execute(params![
            request.workspace_id,
            idem.key,
            idem.request_hash,
            json_list(&ids),
            request.records.first().map_or(0, |r| r.created_at)
        ])?;
    }
    Ok(())
}

/// Writes one delivery (unless its webhook was deleted meanwhile) as `how` says.
fn insert_delivery(tx: &Transaction<'_>, delivery: &NewDelivery, how: &Insert<'_>) -> DbResult<()> {
    let (token, until) = match &delivery.lease {
        Some(lease) => (Some(lease.token.as_str()), lease.until),
        None => (None, 0),
    };
    tx.prepare_cached(
        "INSERT INTO deliveries (id, workspace_id, webhook_id, state, record_ids, next_attempt_at, locked_until, lease_token, \
           created_at, updated_at, planned_at, ordering_key, coalescing_key, device_time, coalesced, superseded) \
         SELECT ?1, ?2, ?3, 'pending', ?4, max(?8, ?6), ?6, ?7, ?5, ?5, ?8, ?9, ?10, ?11, ?12, ?13 \
         WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?3)",
    )?
    .execute(params![
        delivery.id.as_str(),
        delivery.workspace_id,
        delivery.webhook_id.as_str(),
        json_list(&how.record_ids),
        delivery.created_at,
        until,
        token,
        how.due_at,
        delivery.ordering_key,
        delivery.coalescing.as_ref().map(|c| c.key.as_str()),
        how.rank,
        how.coalesced,
        how.superseded
    ])?;
    Ok(())
}

/// Writes a delivery with a coalescing key: it joins the newest delivery of its key while
/// that one is open, else goes in on its own, spaced from it ([`place`]).
fn coalesce(tx: &Transaction<'_>, delivery: &NewDelivery, coalescing: &Coalescing) -> DbResult<()> {
    let newest = tx
        .prepare_cached(
            "SELECT id, state = 'pending' AND attempts = 0 AND lease_token IS NULL AND next_attempt_at > 0, \
               record_ids, planned_at, next_attempt_at, device_time, coalesced, superseded \
             FROM deliveries WHERE webhook_id = ? AND coalescing_key = ? ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![delivery.webhook_id.as_str(), coalescing.key], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, bool>(1)?,
                row.get::<_, String>(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
            ))
        })
        .optional()?;
    let newest = match newest {
        None => None,
        Some((id, open, records, planned_at, next_attempt_at, rank, coalesced, superseded)) => Some(Newest {
            id: id.into(),
            open,
            record_ids: serde_json::from_str(&records)?,
            planned_at,
            next_attempt_at,
            rank,
            coalesced,
            superseded,
        }),
    };
    match place(delivery, coalescing, newest.as_ref(), delivery.created_at) {
        Placement::Insert(how) => insert_delivery(tx, delivery, &how),
        Placement::Join { open, dropped, rest } => {
            tx.prepare_cached(
                "UPDATE deliveries SET record_ids = ?2, next_attempt_at = ?3, device_time = ?4, coalesced = ?5, \
                   superseded = ?6, updated_at = ?7 WHERE id = ?1",
            )?
            .execute(params![
                open.id.as_str(),
                json_list(&open.record_ids),
                open.next_attempt_at,
                open.rank,
                open.coalesced,
                open.superseded,
                delivery.created_at
            ])?;
            for record in &dropped {
                tx.prepare_cached("UPDATE records SET refs = refs - 1 WHERE id = ?")?
                    .execute([record])?;
            }
            match rest {
                Some(rest) => insert_delivery(tx, delivery, &rest),
                None => Ok(()),
            }
        }
    }
}

fn stored_key(conn: &Connection, workspace: &str, key: &str) -> DbResult<Option<(String, Vec<String>)>> {
    let found: Option<(String, String)> = conn
        .prepare_cached("SELECT request_hash, record_ids FROM idempotency_keys WHERE workspace_id = ? AND key = ?")?
        .query_row([workspace, key], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((hash, ids)) = found else { return Ok(None) };
    Ok(Some((hash, serde_json::from_str(&ids)?)))
}
