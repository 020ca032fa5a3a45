//! Row → domain conversions shared by the query modules.

use hookd_core::seal::Sealer;
use hookd_core::store::{Attempt, Delivery, DeliveryState, StoreResult, StoredWebhook};
use hookd_core::webhook::{Webhook, WebhookHealth};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::db::map_err;

pub(crate) const WEBHOOK_COLUMNS: &str = "id, workspace_id, spec, secret, previous_secrets, disabled_reason, created_at, updated_at, consecutive_failures, failing_since, last_success_at, last_failure_at, breaker_until";

pub(crate) const DELIVERY_COLUMNS: &str = "id, workspace_id, webhook_id, state, record_ids, attempts, failures, \
     next_attempt_at, created_at, updated_at, last_status, last_explanation, ordering_key, coalesced, superseded, order_broken";

pub(crate) fn webhook(row: &PgRow, sealer: &Sealer) -> StoreResult<Webhook> {
    let id: String = row.try_get("id").map_err(map_err)?;
    let (spec, secret, previous_secrets) = stored_webhook(row)?.open(&id, sealer)?;
    Ok(Webhook {
        id: id.into(),
        workspace_id: row.try_get("workspace_id").map_err(map_err)?,
        spec,
        secret,
        previous_secrets,
        disabled_reason: row.try_get("disabled_reason").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        updated_at: row.try_get("updated_at").map_err(map_err)?,
        health: WebhookHealth {
            consecutive_failures: row.try_get::<i32, _>("consecutive_failures").map_err(map_err)? as u32,
            failing_since: row.try_get("failing_since").map_err(map_err)?,
            last_success_at: row.try_get("last_success_at").map_err(map_err)?,
            last_failure_at: row.try_get("last_failure_at").map_err(map_err)?,
            breaker_until: row.try_get("breaker_until").map_err(map_err)?,
        },
    })
}

/// The sealed columns of a webhook row.
pub(crate) fn stored_webhook(row: &PgRow) -> StoreResult<StoredWebhook> {
    Ok(StoredWebhook {
        spec: row.try_get("spec").map_err(map_err)?,
        secret: row.try_get("secret").map_err(map_err)?,
        previous_secrets: row.try_get("previous_secrets").map_err(map_err)?,
    })
}

pub(crate) fn delivery(row: &PgRow) -> StoreResult<Delivery> {
    let state_text: String = row.try_get("state").map_err(map_err)?;
    let last_status: Option<i32> = row.try_get("last_status").map_err(map_err)?;
    let record_ids: Vec<String> = row.try_get("record_ids").map_err(map_err)?;
    let coalesced = row.try_get::<i32, _>("coalesced").map_err(map_err)? as u32;
    Ok(Delivery {
        coalesced: coalesced.max(record_ids.len() as u32),
        id: text(row, "id")?.into(),
        workspace_id: row.try_get("workspace_id").map_err(map_err)?,
        webhook_id: text(row, "webhook_id")?.into(),
        state: DeliveryState::from_stored(&state_text)?,
        record_ids,
        attempts: row.try_get::<i32, _>("attempts").map_err(map_err)? as u32,
        failures: row.try_get::<i32, _>("failures").map_err(map_err)? as u32,
        next_attempt_at: row.try_get("next_attempt_at").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
        updated_at: row.try_get("updated_at").map_err(map_err)?,
        last_status: last_status.map(|s| s as u16),
        last_explanation: row.try_get("last_explanation").map_err(map_err)?,
        ordering_key: row.try_get("ordering_key").map_err(map_err)?,
        superseded: row.try_get::<i32, _>("superseded").map_err(map_err)? as u32,
        order_broken: row.try_get("order_broken").map_err(map_err)?,
    })
}

fn text(row: &PgRow, column: &str) -> StoreResult<String> {
    row.try_get(column).map_err(map_err)
}

pub(crate) fn attempt(row: &PgRow) -> StoreResult<Attempt> {
    let status: Option<i32> = row.try_get("status").map_err(map_err)?;
    let outcome: String = row.try_get("outcome").map_err(map_err)?;
    Ok(Attempt {
        id: row.try_get("id").map_err(map_err)?,
        delivery_id: text(row, "delivery_id")?.into(),
        started_at: row.try_get("started_at").map_err(map_err)?,
        duration_ms: row.try_get::<i64, _>("duration_ms").map_err(map_err)? as u64,
        status: status.map(|s| s as u16),
        response_headers: row.try_get("response_headers").map_err(map_err)?,
        response_body: row.try_get("response_body").map_err(map_err)?,
        error_kind: row.try_get("error_kind").map_err(map_err)?,
        explanation: row.try_get("explanation").map_err(map_err)?,
        outcome: DeliveryState::from_stored(&outcome)?,
    })
}
