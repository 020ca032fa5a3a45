//! The ingest transaction: every request of a group commit, written at once, each row by one
//! cached prepared statement.

use std::collections::HashMap;

use hookd_core::store::{IngestRequest, IngestResult, SourceRequest};
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
    let mut deliveries = tx.prepare_cached(
        "INSERT INTO deliveries (id, workspace_id, webhook_id, state, record_ids, next_attempt_at, locked_until, lease_token, created_at, updated_at) \
         SELECT ?1, ?2, ?3, 'pending', ?4, max(?8, ?6), ?6, ?7, ?5, ?5 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?3)",
    )?;
    for delivery in &request.deliveries {
        let (token, until) = match &delivery.lease {
            Some(lease) => (Some(lease.token.as_str()), lease.until),
            None => (None, 0),
        };
        deliveries.execute(params![
            delivery.id.as_str(),
            delivery.workspace_id,
            delivery.webhook_id.as_str(),
            json_list(&delivery.record_ids),
            delivery.created_at,
            until,
            token,
            delivery.due_at
        ])?;
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

fn stored_key(conn: &Connection, workspace: &str, key: &str) -> DbResult<Option<(String, Vec<String>)>> {
    let found: Option<(String, String)> = conn
        .prepare_cached("SELECT request_hash, record_ids FROM idempotency_keys WHERE workspace_id = ? AND key = ?")?
        .query_row([workspace, key], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((hash, ids)) = found else { return Ok(None) };
    Ok(Some((hash, serde_json::from_str(&ids)?)))
}
