//! The wire types of the API: what requests carry and responses return. The server renders
//! its answers with them, the client ([`crate::client`]) reads them, and the OpenAPI document
//! is generated from them, so the three cannot drift apart.
//!
//! Request bodies are still validated field by field by the server (for errors that name the
//! field); the `…In` types here describe them and are what the client sends.

use std::collections::BTreeMap;

use hookd_core::store;
use hookd_core::timefmt::rfc3339;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error: a stable code, a sentence for people, and the offending field when there is one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `invalid_url`, `missing_field`, `not_found`, …
    #[schema(example = "invalid_url")]
    pub code: String,
    #[schema(example = "the URL scheme must be http or https, not `ftp`")]
    pub message: String,
    /// The field at fault; in an array body, prefixed by the record's index (`[1].device_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "url")]
    pub field: Option<String>,
    /// When the body had several bad fields: every one of them (up to 50), this one first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
}

/// One of several problems of a request body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorItem {
    #[schema(example = "missing_field")]
    pub code: String,
    pub message: String,
    #[schema(example = "[1].device_id")]
    pub field: String,
}

/// A list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceIn {
    /// A name for people, 1–200 characters.
    #[schema(example = "acme", min_length = 1, max_length = 200)]
    pub name: String,
}

/// A workspace delete must say which workspace it means to delete, with everything in it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceDeleteIn {
    /// The id of the workspace being deleted, again.
    #[schema(example = "ws_01J9Z3K2M4N5P6Q7R8S9T0V1W2")]
    pub confirm: String,
}

/// What deleting a workspace removed with it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceDeleted {
    pub deleted: String,
    pub webhooks: u64,
    pub deliveries: u64,
    pub records: u64,
    pub keys: u64,
}

/// What `DELETE …/keys/{key}` revoked (the client's answer; the route answers 204).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revoked {
    pub revoked: String,
}

/// A workspace API key as listed: never the key itself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    #[schema(example = "key_01J9Z3K2M4N5P6Q7R8S9T0V1W2")]
    pub id: String,
    pub workspace_id: String,
    /// The key's first characters, to tell keys apart (empty for keys made before hookd
    /// kept prefixes).
    #[schema(example = "hk_3J9xQ")]
    pub prefix: String,
    pub created_at: String,
    /// When a request last used it, to the minute; null if never.
    pub last_used_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Workspace {
    #[schema(example = "ws_01J9Z3K2M4N5P6Q7R8S9T0V1W2")]
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// A new API key. `key` is shown here once; only its hash is stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyCreated {
    pub id: String,
    pub workspace_id: String,
    #[schema(example = "hk_3J9x…")]
    pub key: String,
    /// The key's first characters, as `GET …/keys` lists them.
    pub prefix: String,
    pub note: String,
}

/// Which records reach a webhook. Empty lists match everything; lists are ANDed, values within
/// a list ORed; every label must be equal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    #[serde(default)]
    pub fleets: Vec<String>,
    /// Data webhooks only.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Event webhooks only.
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub devices: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    Data,
    Event,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Post,
    Get,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Batch,
    Single,
}

/// Declares a webhook request body: the fields given, then every optional setting.
macro_rules! webhook_body {
    ($(#[$meta:meta])* $name:ident { $($fields:tt)* }) => {
        #[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        $(#[$meta])*
        pub struct $name {
            $($fields)*
            /// Default `POST`. `GET` webhooks send no body.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub method: Option<HttpMethod>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub filters: Option<Filters>,
            /// Sent in `token_header` with every request.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub token: Option<String>,
            /// Default `X-AUTH-TOKEN`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub token_header: Option<String>,
            /// Extra headers; values may use `{{device_id}}`, `{{labels.site}}`, `{{payload.x}}`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub headers: Option<BTreeMap<String, String>>,
            /// Default `batch`; `single` for a `GET` webhook, which cannot batch.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub format: Option<Format>,
            /// Records per batch, 1–1000; default 100.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schema(minimum = 1, maximum = 1000)]
            pub batch_max: Option<u32>,
            /// Default `30s`; at most `delivery.max_timeout`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schema(example = "10s")]
            pub timeout: Option<String>,
            /// Delays after the first attempt; default 5s, 5m, 30m, 2h, 5h, 10h, 10h.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schema(example = json!(["5s", "5m", "30m"]))]
            pub retry_schedule: Option<Vec<String>>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub enabled: Option<bool>,
            /// Certificates for `https` receivers: a CA to trust, a client certificate.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub tls: Option<TlsIn>,
        }
    };
}

/// How deliveries to an `https` receiver check and present certificates, beyond the server's
/// `[delivery]` TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsIn {
    /// PEM certificates to trust as issuers, besides the public roots (an on-prem CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// A PEM client certificate (chain) for mutual TLS; needs `client_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// The client certificate's PEM private key; stored sealed, never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// Default `true`. `false` accepts any certificate, so anyone on the way can read and
    /// change deliveries; hookd warns about it when it is set and at every start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<bool>,
}

/// Where a webhook's circuit breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Deliveries flow.
    Closed,
    /// Paused after `dispatch.breaker_failures` failures in a row, until `paused_until`.
    Open,
    /// Past the pause: one attempt at a time probes the receiver.
    HalfOpen,
}

/// How a webhook's receiver has been doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookHealth {
    pub breaker: BreakerState,
    /// Failed attempts in a row, across its deliveries.
    pub consecutive_failures: u32,
    /// When its receiver last answered well; null if never.
    pub last_success_at: Option<String>,
    /// When an attempt last failed; null if never.
    pub last_failure_at: Option<String>,
    /// When it started failing without a success since; null when it is not failing.
    pub failing_since: Option<String>,
    /// While the breaker is open: when the next probe may go.
    pub paused_until: Option<String>,
}

/// A webhook's TLS settings as shown: never the client key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Tls {
    pub ca: Option<String>,
    pub client_cert: Option<String>,
    /// Whether a client key is set (it is never shown).
    pub has_client_key: bool,
    pub verify: bool,
}

webhook_body!(
    /// A new webhook. Unknown fields are refused.
    #[schema(example = json!({"name": "plant 3", "kind": "data", "url": "https://example.com/hooks", "filters": {"fleets": ["flt-1234"]}, "token": "t0k3n"}))]
    WebhookIn {
        #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
        pub name: String,
        pub kind: RecordKind,
        /// `http` or `https`.
        #[schema(example = "https://example.com/hooks", max_length = 2048, pattern = r"^[hH][tT][tT][pP][sS]?://")]
        pub url: String,
        /// A signing secret (`whsec_` and 24–64 bytes in base64); generated when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(pattern = r"^whsec_[A-Za-z0-9+/]+={0,2}$")]
        pub secret: Option<String>,
    }
);

webhook_body!(
    /// A partial update: only the fields given change; `null` puts a field back to its default.
    #[derive(Default)]
    WebhookPatch {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub kind: Option<RecordKind>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub url: Option<String>,
    }
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    #[schema(example = "wh_01J9Z3K2M4N5P6Q7R8S9T0V1W2")]
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub kind: RecordKind,
    /// Where deliveries go. A password in it and the values of query parameters named like
    /// credentials (`token`, `api_key`, `sig`, …) are shown as `***`; a PATCH sending this
    /// shown form back keeps the real URL.
    pub url: String,
    pub method: HttpMethod,
    pub filters: Filters,
    pub token_header: String,
    pub headers: BTreeMap<String, String>,
    pub format: Format,
    pub batch_max: u32,
    pub timeout: String,
    pub retry_schedule: Vec<String>,
    pub enabled: bool,
    pub tls: Tls,
    pub health: WebhookHealth,
    /// Whether a token is set (tokens are never shown).
    pub has_token: bool,
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Problems worth knowing now, e.g. a URL the SSRF policy blocks (create and update only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A created webhook, with its signing secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: Webhook,
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Secret {
    pub secret: String,
    /// Secrets replaced by rotation that still sign until they expire.
    pub previous: Vec<PreviousSecret>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PreviousSecret {
    pub expires_at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// The new secret (`whsec_` and 24–64 bytes in base64); generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^whsec_[A-Za-z0-9+/]+={0,2}$")]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
    Dead,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayIn {
    /// Deliveries created at or after this time (RFC 3339).
    #[schema(example = "2024-03-01T00:00:00Z", format = DateTime)]
    pub since: String,
    /// …and before this time; default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub until: Option<String>,
    /// Default `["dead", "failed"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states: Option<Vec<DeliveryState>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplayResult {
    /// How many deliveries were made pending again.
    pub replayed: u64,
    pub since: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TestResult {
    pub delivery_id: String,
    pub attempt: Attempt,
}

/// Records accepted: on disk, with their deliveries.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    #[schema(example = json!(["rec_01J9Z3K2M4N5P6Q7R8S9T0V1W2"]))]
    pub ids: Vec<String>,
}

/// A data point. Unknown fields are kept and delivered; `id`, `workspace_id` and
/// `timestamp_in` are set by hookd.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"timestamp_device": "2023-12-01T09:51:00Z", "tag": "d1", "device_id": "dev-124",
    "asset_id": "ast-1234", "asset_name": "Machine 1", "device_name": "Machine 1",
    "payload": {"ts": 1701424260, "ex": [0, 0], "C": {}}, "fleet_id": "flt-1234"}))]
pub struct DataPoint {
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    pub device_id: String,
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    pub tag: String,
    /// Any JSON.
    pub payload: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    D2c,
    C2d,
}

/// An event. Unknown fields are kept and delivered; `id`, `workspace_id` and `timestamp_in`
/// are set by hookd.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"type": "order.created", "payload": {"accountId": "AG-1234567",
    "automationId": "Automation-7a416085-5668-467c-98ad-f903ad1c4187", "entityId": "AG-1234567:ORD-1234567",
    "marketId": "default", "orderId": "AG-1234567:ORD-1234567", "partnerId": "9YW9"}}))]
pub struct Event {
    #[serde(rename = "type")]
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    pub event_type: String,
    /// Any JSON.
    pub payload: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// A time string or a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<EventTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// When an event happened, as the producer wrote it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EventTime {
    Text(String),
    Number(f64),
}

/// One data point or an array of them (all-or-nothing).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DataBody {
    One(Box<DataPoint>),
    Many(Vec<DataPoint>),
}

/// One event or an array of them (all-or-nothing).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventBody {
    One(Box<Event>),
    Many(Vec<Event>),
}

/// The schema of an ingest body: one record, or 1 to 1,000 of them (the default
/// `api.max_records_per_request`).
fn one_or_many<T: ToSchema>(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder, Ref};
    let record = Ref::from_schema_name(T::name());
    let many = ArrayBuilder::new()
        .items(record.clone())
        .min_items(Some(1))
        .max_items(Some(1000));
    OneOfBuilder::new()
        .item(record)
        .item(many)
        .description(Some(description))
        .into()
}

macro_rules! ingest_body_schema {
    ($body:ty, $record:ty, $description:literal) => {
        impl utoipa::PartialSchema for $body {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                one_or_many::<$record>($description)
            }
        }

        impl ToSchema for $body {
            fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
                schemas.push((
                    <$record>::name().into(),
                    <$record as utoipa::PartialSchema>::schema(),
                ));
                <$record>::schemas(schemas);
            }
        }
    };
}

ingest_body_schema!(
    DataBody,
    DataPoint,
    "One data point or an array of 1 to 1,000 (all-or-nothing)."
);
ingest_body_schema!(
    EventBody,
    Event,
    "One event or an array of 1 to 1,000 (all-or-nothing)."
);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    #[schema(example = "dlv_01J9Z3K2M4N5P6Q7R8S9T0V1W2")]
    pub id: String,
    pub workspace_id: String,
    pub webhook_id: String,
    pub state: DeliveryState,
    pub record_ids: Vec<String>,
    pub attempt_count: u32,
    /// When pending: the next attempt.
    pub next_attempt_at: Option<String>,
    pub last_status: Option<u16>,
    pub last_explanation: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A delivery with the request body it sends and its attempts, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    /// The body every attempt sends (the batch envelope, or the record for `single`); null
    /// for GET webhooks, or when its records were pruned (see `request_body_note`).
    #[schema(value_type = Option<Object>)]
    pub request_body: Option<serde_json::Value>,
    /// Why there is no `request_body`, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body_note: Option<String>,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPage {
    /// Newest first.
    pub data: Vec<Delivery>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    pub id: String,
    pub delivery_id: String,
    pub started_at: String,
    pub duration_ms: u64,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// When it did not: `timeout`, `connect`, `reset`, `dns`, `tls` or `blocked`.
    pub error_kind: Option<String>,
    /// What the receiver did and what hookd did about it.
    #[schema(example = "the receiver answered 503 Service Unavailable; retrying in 5s (attempt 2 of 8)")]
    pub explanation: String,
    /// The delivery's state after this attempt.
    pub outcome: DeliveryState,
    pub response_headers: BTreeMap<String, String>,
    /// The start of the response body (capped).
    pub response_body: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

// ---- Rendering domain objects -------------------------------------------------------------

impl From<&store::ApiKey> for ApiKey {
    fn from(key: &store::ApiKey) -> Self {
        Self {
            id: key.id.clone(),
            workspace_id: key.workspace_id.clone(),
            prefix: key.prefix.clone(),
            created_at: rfc3339(key.created_at),
            last_used_at: key.last_used_at.map(rfc3339),
        }
    }
}

impl From<&store::Workspace> for Workspace {
    fn from(ws: &store::Workspace) -> Self {
        Self {
            id: ws.id.clone(),
            name: ws.name.clone(),
            created_at: rfc3339(ws.created_at),
        }
    }
}

impl From<store::DeliveryState> for DeliveryState {
    fn from(state: store::DeliveryState) -> Self {
        match state {
            store::DeliveryState::Pending => Self::Pending,
            store::DeliveryState::Delivered => Self::Delivered,
            store::DeliveryState::Failed => Self::Failed,
            store::DeliveryState::Dead => Self::Dead,
        }
    }
}

impl From<DeliveryState> for store::DeliveryState {
    fn from(state: DeliveryState) -> Self {
        match state {
            DeliveryState::Pending => Self::Pending,
            DeliveryState::Delivered => Self::Delivered,
            DeliveryState::Failed => Self::Failed,
            DeliveryState::Dead => Self::Dead,
        }
    }
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        store::DeliveryState::from(self).as_str()
    }
}

impl Webhook {
    /// The webhook as the API shows it at `now`, its breaker judged by `breaker_threshold`
    /// (`dispatch.breaker_failures`).
    pub fn render(wh: &hookd_core::webhook::Webhook, breaker_threshold: u32, now: i64) -> Self {
        use hookd_core::webhook::Breaker;
        let h = &wh.health;
        let at = |ms: i64| (ms > 0).then(|| rfc3339(ms));
        let breaker = match h.breaker(breaker_threshold, now) {
            Breaker::Closed => BreakerState::Closed,
            Breaker::Open => BreakerState::Open,
            Breaker::HalfOpen => BreakerState::HalfOpen,
        };
        let health = WebhookHealth {
            breaker,
            consecutive_failures: h.consecutive_failures,
            last_success_at: at(h.last_success_at),
            last_failure_at: at(h.last_failure_at),
            failing_since: at(h.failing_since),
            paused_until: (breaker == BreakerState::Open).then(|| rfc3339(h.breaker_until)),
        };
        use hookd_core::webhook::{Format as F, Method as M};
        let spec = &wh.spec;
        let f = &spec.filters;
        Self {
            id: wh.id.clone(),
            workspace_id: wh.workspace_id.clone(),
            name: spec.name.clone(),
            kind: match spec.kind {
                hookd_core::record::Kind::Data => RecordKind::Data,
                hookd_core::record::Kind::Event => RecordKind::Event,
            },
            url: hookd_core::webhook::redacted_url(&spec.url),
            method: match spec.method {
                M::Post => HttpMethod::Post,
                M::Get => HttpMethod::Get,
            },
            filters: Filters {
                fleets: f.fleets.clone(),
                tags: f.tags.clone(),
                event_types: f.event_types.clone(),
                devices: f.devices.clone(),
                labels: f.labels.clone(),
            },
            token_header: spec.token_header.clone(),
            headers: spec.headers.clone(),
            format: match spec.format {
                F::Batch => Format::Batch,
                F::Single => Format::Single,
            },
            batch_max: spec.batch_max,
            timeout: hookd_core::duration::format(spec.timeout),
            retry_schedule: spec
                .retry_schedule
                .iter()
                .map(|d| hookd_core::duration::format(*d))
                .collect(),
            enabled: spec.enabled,
            tls: Tls {
                ca: spec.tls.ca.clone(),
                client_cert: spec.tls.client_cert.clone(),
                has_client_key: spec.tls.client_key.is_some(),
                verify: !spec.tls.skip_verify,
            },
            health,
            has_token: spec.token.is_some(),
            disabled_reason: wh.disabled_reason.clone(),
            created_at: rfc3339(wh.created_at),
            updated_at: rfc3339(wh.updated_at),
            warnings: Vec::new(),
        }
    }
}

impl From<&store::Delivery> for Delivery {
    fn from(d: &store::Delivery) -> Self {
        Self {
            id: d.id.clone(),
            workspace_id: d.workspace_id.clone(),
            webhook_id: d.webhook_id.clone(),
            state: d.state.into(),
            record_ids: d.record_ids.clone(),
            attempt_count: d.attempts,
            next_attempt_at: (d.state == store::DeliveryState::Pending).then(|| rfc3339(d.next_attempt_at)),
            last_status: d.last_status,
            last_explanation: d.last_explanation.clone(),
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

impl From<&store::Attempt> for Attempt {
    fn from(a: &store::Attempt) -> Self {
        Self {
            id: a.id.clone(),
            delivery_id: a.delivery_id.clone(),
            started_at: rfc3339(a.started_at),
            duration_ms: a.duration_ms,
            status: a.status,
            error_kind: a.error_kind.clone(),
            explanation: a.explanation.clone(),
            outcome: a.outcome.into(),
            response_headers: serde_json::from_str(&a.response_headers).unwrap_or_default(),
            response_body: a.response_body.clone(),
        }
    }
}
