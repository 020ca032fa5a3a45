//! Sources: their bodies and answers, and their request log.

use hookd_core::source::Source as StoredSource;
use hookd_core::store::SourceRequest as StoredRequest;
use hookd_core::timefmt::rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A source to create. `scheme` is required (there is no default: `none` must be said).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "github", "scheme": "github", "secret": "It's a Secret to Everybody"}))]
pub struct SourceIn {
    pub name: String,
    /// token, basic, hmac, standard_webhooks, github, stripe, slack, shopify, orbit or none.
    pub scheme: String,
    /// One secret (basic: `user:password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Several secrets, any of which verifies: strings or `{"value", "expires_at"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub secrets: Option<Vec<Value>>,
    /// `token`: the token's header (default `X-AUTH-TOKEN`). `hmac`: the signature header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `token`: read the token from this query parameter instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `hmac`: `{algorithm, key_encoding, encoding, header_format, separator, signed_content,
    /// timestamp_header, timestamp_unit, id_header}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub hmac: Option<Value>,
    /// How far a signed timestamp may be from now, either way (default `5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<String>,
    /// `event` (default) or `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    /// jq: the items a request carries (default: the body, once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// jq: each item's payload (default: the item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    /// Record field (`type`, `device_id`, `fleet_id`, `tag`, `ts`, `labels.<k>`, …) → jq on the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Value>,
    /// Default `["POST"]`; `PUT` and `GET` allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// 200, 202 (default) or 204.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
}

/// A source's secret as shown: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SecretShown {
    /// Its last four characters, to tell secrets apart.
    pub ends_with: String,
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Source {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub scheme: String,
    /// The door senders post to, relative to hookd's address.
    #[schema(example = "/in/src_01J9Z3K2M4N5P6Q7R8S9T0V1W2")]
    pub path: String,
    pub secrets: Vec<SecretShown>,
    pub header: Option<String>,
    pub query: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub hmac: Option<Value>,
    pub tolerance: String,
    pub record_type: String,
    /// jq: the items a request carries.
    pub split: Option<String>,
    /// jq: each item's payload.
    pub transform: Option<String>,
    /// Record field → jq.
    pub fields: std::collections::BTreeMap<String, String>,
    pub methods: Vec<String>,
    pub response_status: u16,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Source {
    pub fn render(source: &StoredSource, warnings: Vec<String>) -> Self {
        let spec = &source.spec;
        let json = spec.to_json();
        Self {
            id: source.id.clone(),
            workspace_id: source.workspace_id.clone(),
            name: spec.name.clone(),
            scheme: spec.scheme.as_str().to_owned(),
            path: format!("/in/{}", source.id),
            secrets: spec
                .secrets
                .iter()
                .map(|s| SecretShown {
                    ends_with: s
                        .value
                        .chars()
                        .rev()
                        .take(4)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect(),
                    expires_at: s.expires_at.map(rfc3339),
                })
                .collect(),
            header: spec.header.clone(),
            query: spec.query.clone(),
            hmac: json.get("hmac").filter(|h| !h.is_null()).cloned(),
            tolerance: json["tolerance"].as_str().unwrap_or_default().to_owned(),
            record_type: spec.record_type.as_str().to_owned(),
            split: spec.split.clone(),
            transform: spec.transform.clone(),
            fields: spec.fields.clone(),
            methods: spec.methods.clone(),
            response_status: spec.response_status,
            created_at: rfc3339(source.created_at),
            updated_at: rfc3339(source.updated_at),
            warnings,
        }
    }
}

/// One request a source received, as its log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SourceRequest {
    pub id: String,
    pub source_id: String,
    pub received_at: String,
    pub method: String,
    /// Lower-case names; credentials redacted.
    #[schema(value_type = Object)]
    pub headers: Value,
    #[schema(value_type = Object)]
    pub query: Value,
    /// The body as received (as text; bytes that are not UTF-8 replaced), capped for refused
    /// requests.
    pub body: String,
    pub body_truncated: bool,
    /// accepted, rejected or failed.
    pub outcome: String,
    /// A stable code: missing_header, malformed_header, bad_signature, stale_timestamp,
    /// replayed, bad_token, bad_credentials, method_not_allowed, not_json,
    /// too_large, transform_error.
    pub reason: Option<String>,
    /// One line, with the evidence.
    pub explanation: String,
    pub record_ids: Vec<String>,
}

impl From<&StoredRequest> for SourceRequest {
    fn from(r: &StoredRequest) -> Self {
        Self {
            id: r.id.clone(),
            source_id: r.source_id.clone(),
            received_at: rfc3339(r.received_at),
            method: r.method.clone(),
            headers: serde_json::from_str(&r.headers).unwrap_or(Value::Null),
            query: serde_json::from_str(&r.query).unwrap_or(Value::Null),
            body: String::from_utf8_lossy(&r.body).into_owned(),
            body_truncated: r.body_truncated,
            outcome: r.outcome.as_str().to_owned(),
            reason: r.reason.clone(),
            explanation: r.explanation.clone(),
            record_ids: r.record_ids.clone(),
        }
    }
}

/// Draft programs to try on a source's last requests. Left out: the source's own.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"split": ".result[]", "transform": ".payload", "fields": {"device_id": ".device_id", "tag": ".tag"}, "record_type": "data", "limit": 5}))]
pub struct PreviewIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    /// A request to try first: `{"body", "headers", "content_type"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub sample: Option<Value>,
    /// How many of the last verified requests, 1–50 (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// What the draft makes of one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Preview {
    /// The logged request; absent for the sample.
    pub request_id: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<Value>,
    /// Why it makes no records: a reason code and where.
    pub error: Option<String>,
}

impl From<&crate::service::Preview> for Preview {
    fn from(p: &crate::service::Preview) -> Self {
        Self {
            request_id: p.request_id.clone(),
            records: p.records.clone(),
            error: p.error.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SourceRequestPage {
    pub data: Vec<SourceRequest>,
    /// Pass as `after` for the next (older) page; absent on the last.
    pub next_cursor: Option<String>,
}
