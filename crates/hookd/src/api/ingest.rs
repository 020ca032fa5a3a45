//! Ingest: `POST …/data` and `POST …/events`. Answers 202 only once the records and their
//! deliveries are committed to disk.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hookd_core::record::Kind;
use hookd_core::store::Idempotency;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, BodyErrors, CommonErrors};
use super::extract::{Caller, IngestBody};
use crate::model;
use crate::service::{Origin, key_hash};

const MAX_IDEMPOTENCY_KEY: usize = 255;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest_data))
        .routes(routes!(ingest_events))
}

/// Ingests one data point or an array of them. All-or-nothing: one invalid record rejects
/// the request, naming it (`[1].device_id`). Answers 202 once records and deliveries are on disk.
/// The body may also be the same JSON as `text/plain`, or a form: its one key the JSON, or the
/// record's fields with `payload` as JSON.
#[utoipa::path(
    post, path = "/v1/workspaces/{ws}/data", tag = "ingest", request_body(content = model::DataBody, examples(
        ("IoT data point" = (value = json!({"timestamp_device": "2023-12-01T09:51:00Z", "tag": "d1", "device_id": "dev-124", "asset_id": "ast-1234", "asset_name": "Machine 1", "device_name": "Machine 1", "payload": {"ts": 1701424260, "ex": [0, 0], "C": {}}, "fleet_id": "flt-1234"}))),
        ("Robot sensor reading" = (value = json!({"device_id": "part-7", "tag": "Readings", "labels": {"org_name": "Acme", "location_name": "Plant 3", "machine_name": "arm-1"}, "payload": {"component_name": "temp-sensor", "component_type": "sensor", "method_name": "Readings", "data": {"metadata": {"received_at": "2024-03-01T10:00:00Z"}, "data": {"readings": {"celsius": 81.5}}}}})))
    )),
    params(("ws" = String, Path, description = "Workspace id"), ("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = r"^[!-~]([ -~]*[!-~])?$", description = "A repeat with the same key and body answers with the first request's ids; with another body, 409")),
    responses((status = 202, body = model::Accepted), (status = 409, description = "The Idempotency-Key was used with another body", body = model::ErrorBody), CommonErrors, BodyErrors)
)]
async fn ingest_data(
    state: State<AppState>,
    caller: Caller,
    ws: Path<String>,
    headers: HeaderMap,
    body: IngestBody,
) -> ApiResult<(StatusCode, Json<model::Accepted>)> {
    ingest(state, caller, ws, headers, body, Kind::Data).await
}

/// Ingests one event or an array of them. All-or-nothing: one invalid record rejects
/// the request, naming it (`[1].device_id`). Answers 202 once records and deliveries are on disk.
/// The body may also be the same JSON as `text/plain`, or a form: its one key the JSON, or the
/// record's fields with `payload` as JSON.
#[utoipa::path(
    post, path = "/v1/workspaces/{ws}/events", tag = "ingest", request_body(content = model::EventBody, examples(
        ("IoT device events" = (value = json!([{"ts": "2022-03-18T09:34:23.777118453Z", "fleet_id": "flt-123456789", "device_id": "dev-123456789", "type": "authentication", "direction": "d2c", "payload": {"clientid": "dev-123456789", "proto": "mqtt", "error": "0", "verified": "NONE", "result": "allow"}}, {"ts": "2022-03-18T09:34:23.793Z", "fleet_id": "flt-123456789", "device_id": "dev-123456789", "type": "connection", "direction": "d2c", "payload": {"device_ip": "172.0.0.193", "connected_at": "2022-03-18T09:34:23.793Z"}}]))),
        ("SaaS automation event" = (value = json!({"type": "order.created", "payload": {"accountId": "AG-1234567", "automationId": "Automation-7a416085-5668-467c-98ad-f903ad1c4187", "entityId": "AG-1234567:ORD-1234567", "marketId": "default", "orderId": "AG-1234567:ORD-1234567", "partnerId": "9YW9"}}))),
        ("PLC state change" = (value = json!({"type": "relay", "device_id": "1_03", "payload": {"dev": "relay", "relay_type": "digital", "circuit": "1_03", "value": 0, "pending": false, "mode": "Simple", "modes": ["Simple", "PWM"], "glob_dev_id": 2, "pwm_freq": 4800.0, "pwm_duty": 0}})))
    )),
    params(("ws" = String, Path, description = "Workspace id"), ("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = r"^[!-~]([ -~]*[!-~])?$", description = "A repeat with the same key and body answers with the first request's ids; with another body, 409")),
    responses((status = 202, body = model::Accepted), (status = 409, description = "The Idempotency-Key was used with another body", body = model::ErrorBody), CommonErrors, BodyErrors)
)]
async fn ingest_events(
    state: State<AppState>,
    caller: Caller,
    ws: Path<String>,
    headers: HeaderMap,
    body: IngestBody,
) -> ApiResult<(StatusCode, Json<model::Accepted>)> {
    ingest(state, caller, ws, headers, body, Kind::Event).await
}

async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    headers: HeaderMap,
    body: IngestBody,
    kind: Kind,
) -> ApiResult<(StatusCode, Json<model::Accepted>)> {
    let idempotency = idempotency(&headers, &body.raw);
    let records = body.records(&state, kind)?;
    let workspace = caller.workspace(&state, &ws).await?;
    let records = records?;
    let idempotency = idempotency?;
    let ids = state
        .service
        .ingest(&workspace.id, Origin::Api, records, idempotency)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(model::Accepted { ids })))
}

fn idempotency(headers: &HeaderMap, raw: &[u8]) -> ApiResult<Option<Idempotency>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    // Printable ASCII, no space at either end, 1 to 255 characters: as the API document says.
    let printable = |k: &str| k.bytes().all(|b| (b' '..=b'~').contains(&b)) && !k.starts_with(' ') && !k.ends_with(' ');
    let key = value.to_str().ok().filter(|k| (1..=MAX_IDEMPOTENCY_KEY).contains(&k.len()) && printable(k)).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key",
            format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters, without spaces at either end"),
        )
    })?;
    let hash = key_hash(std::str::from_utf8(raw).unwrap_or_default());
    Ok(Some(Idempotency {
        key: key.to_owned(),
        request_hash: hash,
    }))
}
