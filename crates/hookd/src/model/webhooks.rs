//! Webhooks on the wire: what creating and changing one sends, what reading one shows, its
//! secret, replay and the test send.

use std::collections::BTreeMap;

use hookd_core::timefmt::rfc3339;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Attempt, DeliveryState};

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
    /// Only records from these sources (`src_…`); empty (and left out): records from every door.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
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

/// How a debounce merges the records of one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Coalesce {
    /// Only the device's newest record (by `ts` / `timestamp_device`, then arrival).
    Latest,
    /// Every record, in one batch, when the interval ends (batch webhooks).
    All,
}

/// Whose records keep their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    None,
    /// One device's records in its own time order, one delivery in flight per device.
    Device,
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
            /// A jq program run on each record that passes the filters: the record matches
            /// only when it yields `true` (an error on a record is no match). Delivered records
            /// carry it as `trigger_condition`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schema(example = ".payload.temp > 80")]
            pub condition: Option<String>,
            /// Sent in `token_header` with every request.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub token: Option<String>,
            /// Default `X-AUTH-TOKEN`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub token_header: Option<String>,
            /// Extra headers; values may use `{{device_id}}`, `{{labels.site}}`, `{{payload.x}}`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub headers: Option<BTreeMap<String, String>>,
            /// Query parameters added to the URL, values templated like `headers`
            /// (`{"part": "{{device_id}}"}`) and encoded. Shown as given: a credential belongs
            /// in `token` or the URL, which are redacted.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub query: Option<BTreeMap<String, String>>,
            /// Default `batch`; `single` for a `GET` webhook, which cannot batch.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub format: Option<Format>,
            /// Records per batch, 1–1000; default 100.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schema(minimum = 1, maximum = 1000)]
            pub batch_max: Option<u32>,
            /// A batch webhook waits up to this long after its first pending record for more
            /// (records of separate requests share the batch), sending sooner at `batch_max`.
            /// Default `0s`: send at once. At most `1h`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schema(example = "2s")]
            pub batch_window: Option<String>,
            /// Debounce: at most one delivery per device per this interval; records arriving
            /// inside it are merged by `coalesce`. Default `0s`: none. At most `24h`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schema(example = "1s")]
            pub min_interval: Option<String>,
            /// Default `latest`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub coalesce: Option<Coalesce>,
            /// Default `none`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub ordering: Option<Ordering>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    pub token_header: String,
    pub headers: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    pub format: Format,
    pub batch_max: u32,
    pub batch_window: String,
    pub min_interval: String,
    pub coalesce: Coalesce,
    pub ordering: Ordering,
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
    /// Only count the deliveries it would replay (`replayed`); change nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplayResult {
    /// How many deliveries were made pending again (with `dry_run`, would be).
    pub replayed: u64,
    pub since: String,
    #[serde(default)]
    pub dry_run: bool,
}

/// A draft condition to try on the workspace's newest records of the webhook's kind.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"condition": ".payload.temp > 80", "limit": 20}))]
pub struct ConditionPreviewIn {
    pub condition: String,
    /// How many of the newest records, 1–500 (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// What the draft says of one record, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConditionVerdict {
    pub record_id: String,
    /// The condition yields `true` for it.
    pub matched: bool,
    /// The webhook's filters pass it: with `matched`, the webhook would get it.
    pub filters: bool,
    /// Why the condition could not be told (no match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<&crate::service::ConditionVerdict> for ConditionVerdict {
    fn from(v: &crate::service::ConditionVerdict) -> Self {
        Self {
            record_id: v.record_id.clone(),
            matched: v.matched,
            filters: v.filters,
            error: v.error.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TestResult {
    pub delivery_id: String,
    pub attempt: Attempt,
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
            id: wh.id.to_string(),
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
                sources: f.sources.clone(),
            },
            condition: spec.condition.clone(),
            token_header: spec.token_header.clone(),
            headers: spec.headers.clone(),
            query: spec.query.clone(),
            format: match spec.format {
                F::Batch => Format::Batch,
                F::Single => Format::Single,
            },
            batch_max: spec.batch_max,
            batch_window: hookd_core::duration::format(spec.pacing.batch_window),
            min_interval: hookd_core::duration::format(spec.pacing.min_interval),
            coalesce: match spec.pacing.coalesce {
                hookd_core::webhook::Coalesce::Latest => Coalesce::Latest,
                hookd_core::webhook::Coalesce::All => Coalesce::All,
            },
            ordering: match spec.pacing.ordering {
                hookd_core::webhook::Ordering::None => Ordering::None,
                hookd_core::webhook::Ordering::Device => Ordering::Device,
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use hookd_core::webhook::{FIELDS, TLS_FIELDS};

    /// The property names of a wire type's schema.
    fn properties<T: utoipa::PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        let mut names: Vec<String> = schema["properties"].as_object().unwrap().keys().cloned().collect();
        names.sort();
        names
    }

    fn sorted(fields: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn the_wire_types_describe_exactly_the_fields_the_parser_takes() {
        assert_eq!(properties::<WebhookIn>(), sorted(&FIELDS), "a new webhook");
        let patchable: Vec<&str> = FIELDS.into_iter().filter(|f| *f != "secret").collect();
        assert_eq!(properties::<WebhookPatch>(), sorted(&patchable), "a patch");
        assert_eq!(properties::<TlsIn>(), sorted(&TLS_FIELDS), "tls");
    }
}
