//! Webhooks: a customer's subscription, as the API accepts it and as it is stored.
//!
//! [`WebhookSpec`] is everything a customer sets. It is parsed from JSON with a field path for
//! every error and rendered back to the same JSON, which is also its stored form.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use url::Url;

use crate::clock::Millis;
use crate::duration;
use crate::filter::Filters;
use crate::id::WebhookId;
use crate::record::{Kind, RecordIn};
use crate::retry;
use crate::validation::{Fields, Problems, ValidationError};

pub mod condition;
pub(crate) mod fields;
pub mod pacing;
pub mod template;
mod tls;
mod url_shown;

use fields::*;
pub use pacing::{Coalesce, Ordering, Pacing};
pub use tls::{TLS_FIELDS, TlsSpec};
pub use url_shown::redacted_url;

pub const DEFAULT_TOKEN_HEADER: &str = "X-AUTH-TOKEN";
pub const DEFAULT_BATCH_MAX: u32 = 100;
pub const MAX_BATCH_MAX: u32 = 1000;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_NAME_LEN: usize = 200;
const MAX_URL_LEN: usize = 2048;
const MAX_TOKEN_LEN: usize = 1024;
const MAX_HEADERS: usize = 50;
const MAX_QUERY_NAME_LEN: usize = 128;
const MAX_RETRY_STEPS: usize = 30;
const MAX_RETRY_STEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// Headers hookd sets itself; a webhook may not override them.
const RESERVED_HEADERS: [&str; 10] = [
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "transfer-encoding",
    "hookd-coalesced",
    "hookd-superseded",
];

/// The shape of stored specs: 1 before it was written down (GET webhooks could batch), 2 since.
pub const SPEC_VERSION: u64 = 2;

/// Every field a webhook body may have (a create; a patch, except `secret`). The API's wire
/// types are checked against this list by a test, so the two cannot drift apart.
pub const FIELDS: [&str; 21] = [
    "name",
    "kind",
    "url",
    "method",
    "filters",
    "condition",
    "token",
    "token_header",
    "secret",
    "headers",
    "query",
    "format",
    "batch_max",
    "batch_window",
    "min_interval",
    "coalesce",
    "ordering",
    "timeout",
    "retry_schedule",
    "enabled",
    "tls",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Get,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Get => "GET",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"batch_id": …, "result": [records]}`, up to `batch_max` records per delivery.
    Batch,
    /// The record itself, one per delivery.
    Single,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Batch => "batch",
            Format::Single => "single",
        }
    }
}

/// The bounds a deployment puts on webhooks (from config).
#[derive(Debug, Clone, Copy)]
pub struct WebhookLimits {
    pub max_timeout: Duration,
}

/// Everything a customer sets on a webhook. The secret is handled apart ([`Webhook`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSpec {
    pub name: String,
    pub kind: Kind,
    pub url: Url,
    pub method: Method,
    pub filters: Filters,
    /// A jq program each record must yield `true` for (see [`condition`]).
    pub condition: Option<String>,
    pub token: Option<String>,
    pub token_header: String,
    pub headers: BTreeMap<String, String>,
    /// Query parameters added to the URL, values templated like `headers`.
    pub query: BTreeMap<String, String>,
    pub format: Format,
    pub batch_max: u32,
    /// Batch windows, debounce and per-device ordering.
    pub pacing: Pacing,
    pub timeout: Duration,
    pub retry_schedule: Vec<Duration>,
    pub enabled: bool,
    pub tls: TlsSpec,
}

impl WebhookSpec {
    /// Parses a create body (or a stored spec). `secret` is accepted but read by the caller.
    /// Every problem found is reported, the first one first.
    pub fn parse(value: &Value, limits: WebhookLimits) -> Result<Self, ValidationError> {
        let f = Fields::new(value, "")?;
        f.deny_unknown(&FIELDS)?;
        let mut problems = Problems::default();
        let name = problems.check(f.req_str("name", MAX_NAME_LEN).map(str::to_owned));
        let kind = problems.check(parse_kind(&f));
        let url = problems.check(parse_url(&f));
        let method = problems.check(parse_method(&f));
        let filters = kind.and_then(|kind| problems.check(Filters::parse(f.value("filters"), kind)));
        let condition = problems.check(condition::parse(&f));
        let token = problems.check(parse_token(&f));
        let token_header = problems.check(f.opt_str("token_header").and_then(|header| {
            let header = header.unwrap_or(DEFAULT_TOKEN_HEADER);
            check_header_name(&f, "token_header", header)?;
            Ok(header.to_owned())
        }));
        let headers = problems.check(parse_headers(&f));
        let query = problems.check(parse_query(&f));
        let format = problems.check(parse_format(&f, method.as_ref()));
        let batch_max = problems.check(parse_batch_max(&f));
        let pacing = problems.check(Pacing::parse(&f, format));
        let timeout = problems.check(parse_timeout(&f, limits));
        let retry_schedule = problems.check(parse_schedule(&f));
        let enabled = problems.check(f.opt_bool("enabled"));
        let tls = problems.check(TlsSpec::parse(f.value("tls")));
        let spec = (|| {
            Some(Self {
                name: name?,
                kind: kind?,
                url: url?,
                method: method?,
                filters: filters?,
                condition: condition?,
                token: token?,
                token_header: token_header?,
                headers: headers?,
                query: query?,
                format: format?,
                batch_max: batch_max?,
                pacing: pacing?,
                timeout: timeout?,
                retry_schedule: retry_schedule?,
                enabled: enabled?.unwrap_or(true),
                tls: tls?,
            })
        })();
        problems.and(spec)
    }

    /// Reads a spec this process or an earlier one stored ([`WebhookSpec::to_stored`]), of
    /// any version up to [`SPEC_VERSION`]. Bounds are those of the format, not of today's
    /// config, so a tighter config never makes stored webhooks unreadable.
    pub fn from_stored(value: &Value) -> Result<Self, ValidationError> {
        let mut stored = match value {
            Value::Object(map) => map.clone(),
            _ => {
                return Err(ValidationError::new(
                    "invalid_type",
                    "",
                    "a stored webhook spec is an object",
                ));
            }
        };
        let version = match stored.remove("version") {
            None => 1,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| ValidationError::new("invalid_type", "version", "the spec version is a number"))?,
        };
        if version > SPEC_VERSION {
            return Err(ValidationError::new(
                "unsupported_version",
                "version",
                format!("stored by a newer hookd (spec version {version}); this one reads up to {SPEC_VERSION}"),
            ));
        }
        // Version 1 let GET webhooks batch; their requests never carried more than the first
        // record's header values, which is what `single` sends.
        if version < 2 && stored.get("method").and_then(Value::as_str) == Some("GET") {
            stored.insert("format".into(), "single".into());
        }
        Self::parse(
            &Value::Object(stored),
            WebhookLimits {
                max_timeout: MAX_RETRY_STEP,
            },
        )
    }

    /// The spec as stored: [`WebhookSpec::to_json`] with its [`SPEC_VERSION`], so a later
    /// hookd can read it even after the API's shape changes.
    pub fn to_stored(&self) -> Value {
        let mut json = self.to_json();
        if let Value::Object(map) = &mut json {
            map.insert("version".into(), SPEC_VERSION.into());
        }
        json
    }

    /// The spec as JSON, in the shape [`WebhookSpec::parse`] reads. Includes the token.
    pub fn to_json(&self) -> Value {
        let mut json = json!({
            "name": self.name,
            "kind": self.kind.as_str(),
            "url": self.url.as_str(),
            "method": self.method.as_str(),
            "filters": self.filters.to_json(),
            "condition": self.condition,
            "token": self.token,
            "token_header": self.token_header,
            "headers": self.headers,
            "query": self.query,
            "format": self.format.as_str(),
            "batch_max": self.batch_max,
            "timeout": duration::format(self.timeout),
            "retry_schedule": self.retry_schedule.iter().map(|d| duration::format(*d)).collect::<Vec<_>>(),
            "enabled": self.enabled,
            "tls": self.tls.to_json(),
        });
        if let Value::Object(map) = &mut json {
            self.pacing.write(map);
        }
        json
    }

    /// Records per delivery: `batch_max` for batches, one for `single`.
    pub fn records_per_delivery(&self) -> usize {
        match self.format {
            Format::Batch => self.batch_max as usize,
            Format::Single => 1,
        }
    }

    pub fn accepts(&self, record: &RecordIn) -> bool {
        self.enabled && record.kind == self.kind && self.filters.matches(record)
    }
}

/// Applies a PATCH body onto a spec: top-level fields present in `patch` replace the current
/// ones (`null` resets a field to its default), then the whole result is validated again.
pub fn apply_patch(
    current: &WebhookSpec,
    patch: &Value,
    limits: WebhookLimits,
) -> Result<WebhookSpec, ValidationError> {
    let f = Fields::new(patch, "")?;
    f.deny_unknown(&FIELDS)?;
    if f.map().contains_key("secret") {
        return Err(f.invalid("secret", "the secret is changed with POST …/secret/rotate"));
    }
    let mut merged: Map<String, Value> = match current.to_json() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    // The format follows a changed method (GET cannot batch) unless the patch gives it.
    if f.map().contains_key("method") && !f.map().contains_key("format") {
        merged.remove("format");
    }
    for (key, value) in f.map() {
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    // The URL as the API shows it (credentials as `***`) means the URL as it is.
    if f.opt_str("url").ok().flatten() == Some(redacted_url(&current.url).as_str()) {
        merged.insert("url".into(), Value::String(current.url.to_string()));
    }
    WebhookSpec::parse(&Value::Object(merged), limits)
}

/// A stored webhook: the spec plus what hookd manages.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: WebhookId,
    pub workspace_id: String,
    pub spec: WebhookSpec,
    /// The current signing secret (`whsec_…`).
    pub secret: String,
    /// Secrets replaced by a rotation, still signed with until they expire.
    pub previous_secrets: Vec<PreviousSecret>,
    pub disabled_reason: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// How its receiver has been doing; managed by the dispatcher, not by the API.
    pub health: WebhookHealth,
}

/// A webhook's recent record, kept by the store as attempts finish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookHealth {
    /// Failed attempts in a row, across its deliveries.
    pub consecutive_failures: u32,
    /// When it started failing without a success since; 0 when it is not failing.
    pub failing_since: Millis,
    /// When its receiver last answered well (2xx, or a deliberate 3xx/4xx); 0: never.
    pub last_success_at: Millis,
    /// When an attempt last failed (5xx, 408/425/429, timeout, broken connection); 0: never.
    pub last_failure_at: Millis,
    /// Until when its circuit breaker pauses it, once `consecutive_failures` reached the
    /// threshold; 0: not paused.
    pub breaker_until: Millis,
}

/// Where a webhook's circuit breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    /// Deliveries flow.
    Closed,
    /// Paused until its next retry time: nothing is sent.
    Open,
    /// Past the pause: one attempt at a time probes the receiver.
    HalfOpen,
}

impl WebhookHealth {
    pub fn breaker(&self, threshold: u32, now: Millis) -> Breaker {
        if self.consecutive_failures < threshold {
            Breaker::Closed
        } else if self.breaker_until > now {
            Breaker::Open
        } else {
            Breaker::HalfOpen
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PreviousSecret {
    pub secret: String,
    pub expires_at: Millis,
}

impl Webhook {
    /// Every secret to sign with at `now`: the current one, then unexpired previous ones.
    pub fn signing_secrets(&self, now: Millis) -> impl Iterator<Item = &str> {
        std::iter::once(self.secret.as_str()).chain(
            self.previous_secrets
                .iter()
                .filter(move |p| p.expires_at > now)
                .map(|p| p.secret.as_str()),
        )
    }

    /// Renders a header template (see [`template`]); characters a header cannot carry are
    /// dropped.
    pub fn render_header(template: &str, record: Option<&Value>) -> String {
        let mut out = template::render(template, record);
        out.retain(|c| (' '..='~').contains(&c));
        out
    }
}

#[cfg(test)]
mod tests;
