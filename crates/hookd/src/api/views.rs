//! How domain objects look on the wire. Times are RFC 3339; secrets and tokens never appear
//! here (the secret has its own route).

use hookd_core::store::{Attempt, Delivery, DeliveryState, Workspace};
use hookd_core::timefmt::rfc3339;
use hookd_core::webhook::Webhook;
use serde_json::{Value, json};

pub(super) fn workspace(ws: &Workspace) -> Value {
    json!({ "id": ws.id, "name": ws.name, "created_at": rfc3339(ws.created_at) })
}

pub(super) fn webhook(wh: &Webhook) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("id".into(), wh.id.clone().into());
    out.insert("workspace_id".into(), wh.workspace_id.clone().into());
    if let Value::Object(spec) = wh.spec.to_json() {
        out.extend(spec.into_iter().filter(|(key, _)| key != "token"));
    }
    out.insert("has_token".into(), wh.spec.token.is_some().into());
    out.insert("disabled_reason".into(), wh.disabled_reason.clone().into());
    out.insert("created_at".into(), rfc3339(wh.created_at).into());
    out.insert("updated_at".into(), rfc3339(wh.updated_at).into());
    Value::Object(out)
}

pub(super) fn delivery(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "workspace_id": d.workspace_id,
        "webhook_id": d.webhook_id,
        "state": d.state.as_str(),
        "record_ids": d.record_ids,
        "attempt_count": d.attempts,
        "next_attempt_at": (d.state == DeliveryState::Pending).then(|| rfc3339(d.next_attempt_at)),
        "last_status": d.last_status,
        "last_explanation": d.last_explanation,
        "created_at": rfc3339(d.created_at),
        "updated_at": rfc3339(d.updated_at),
    })
}

pub(super) fn attempt(a: &Attempt) -> Value {
    json!({
        "id": a.id,
        "delivery_id": a.delivery_id,
        "started_at": rfc3339(a.started_at),
        "duration_ms": a.duration_ms,
        "status": a.status,
        "error_kind": a.error_kind,
        "explanation": a.explanation,
        "outcome": a.outcome.as_str(),
        "response_headers": serde_json::from_str::<Value>(&a.response_headers).unwrap_or(Value::Null),
        "response_body": a.response_body,
    })
}
