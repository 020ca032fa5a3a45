//! Row → domain conversions shared by the query modules.

use hookd_core::seal::Sealer;
use hookd_core::store::{Attempt, Delivery, DeliveryState, StoredWebhook};
use hookd_core::webhook::{Webhook, WebhookHealth};
use rusqlite::Row;

use crate::db::DbResult;

pub(crate) const WEBHOOK_COLUMNS: &str = "id, workspace_id, spec, secret, previous_secrets, disabled_reason, created_at, updated_at, consecutive_failures, failing_since, last_success_at, last_failure_at, breaker_until";

pub(crate) const DELIVERY_COLUMNS: &str = "id, workspace_id, webhook_id, state, record_ids, attempts, failures, \
     next_attempt_at, created_at, updated_at, last_status, last_explanation, ordering_key, coalesced, superseded, order_broken";

pub(crate) fn webhook(row: &Row<'_>, sealer: &Sealer) -> DbResult<Webhook> {
    let id: String = row.get("id")?;
    let (spec, secret, previous_secrets) = stored_webhook(row)?.open(&id, sealer)?;
    Ok(Webhook {
        id: id.into(),
        workspace_id: row.get("workspace_id")?,
        spec,
        secret,
        previous_secrets,
        disabled_reason: row.get("disabled_reason")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        health: WebhookHealth {
            consecutive_failures: row.get("consecutive_failures")?,
            failing_since: row.get("failing_since")?,
            last_success_at: row.get("last_success_at")?,
            last_failure_at: row.get("last_failure_at")?,
            breaker_until: row.get("breaker_until")?,
        },
    })
}

/// The sealed columns of a webhook row.
pub(crate) fn stored_webhook(row: &Row<'_>) -> DbResult<StoredWebhook> {
    Ok(StoredWebhook {
        spec: row.get("spec")?,
        secret: row.get("secret")?,
        previous_secrets: row.get("previous_secrets")?,
    })
}

pub(crate) fn delivery(row: &Row<'_>) -> DbResult<Delivery> {
    let record_ids: Vec<String> = serde_json::from_str(&row.get::<_, String>("record_ids")?)?;
    let state: String = row.get("state")?;
    Ok(Delivery {
        coalesced: row.get::<_, u32>("coalesced")?.max(record_ids.len() as u32),
        id: row.get::<_, String>("id")?.into(),
        workspace_id: row.get("workspace_id")?,
        webhook_id: row.get::<_, String>("webhook_id")?.into(),
        state: DeliveryState::from_stored(&state)?,
        record_ids,
        attempts: row.get("attempts")?,
        failures: row.get("failures")?,
        next_attempt_at: row.get("next_attempt_at")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        last_status: row.get("last_status")?,
        last_explanation: row.get("last_explanation")?,
        ordering_key: row.get("ordering_key")?,
        superseded: row.get("superseded")?,
        order_broken: row.get("order_broken")?,
    })
}

pub(crate) fn attempt(row: &Row<'_>) -> DbResult<Attempt> {
    let outcome: String = row.get("outcome")?;
    Ok(Attempt {
        id: row.get("id")?,
        delivery_id: row.get::<_, String>("delivery_id")?.into(),
        started_at: row.get("started_at")?,
        duration_ms: row.get("duration_ms")?,
        status: row.get("status")?,
        response_headers: row.get("response_headers")?,
        response_body: row.get("response_body")?,
        error_kind: row.get("error_kind")?,
        explanation: row.get("explanation")?,
        outcome: DeliveryState::from_stored(&outcome)?,
    })
}

/// A JSON array of strings, for `json_each(?)` parameters and id-list columns.
pub(crate) fn json_list<S: AsRef<str>>(items: &[S]) -> String {
    serde_json::Value::from(items.iter().map(|s| s.as_ref()).collect::<Vec<_>>()).to_string()
}
