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
use crate::record::{Kind, RecordIn};
use crate::retry;
use crate::validation::{Fields, Problems, ValidationError};

pub const DEFAULT_TOKEN_HEADER: &str = "X-AUTH-TOKEN";
pub const DEFAULT_BATCH_MAX: u32 = 100;
pub const MAX_BATCH_MAX: u32 = 1000;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_NAME_LEN: usize = 200;
const MAX_URL_LEN: usize = 2048;
const MAX_TOKEN_LEN: usize = 1024;
const MAX_HEADERS: usize = 50;
const MAX_RETRY_STEPS: usize = 30;
const MAX_RETRY_STEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// Headers hookd sets itself; a webhook may not override them.
const RESERVED_HEADERS: [&str; 8] = [
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "transfer-encoding",
];

/// The shape of stored specs: 1 before it was written down (GET webhooks could batch), 2 since.
pub const SPEC_VERSION: u64 = 2;

const FIELDS: [&str; 15] = [
    "name",
    "kind",
    "url",
    "method",
    "filters",
    "token",
    "token_header",
    "secret",
    "headers",
    "format",
    "batch_max",
    "timeout",
    "retry_schedule",
    "enabled",
    "tls",
];

/// The largest PEM text a webhook's `tls` may hold, per field.
const MAX_PEM_LEN: usize = 64 * 1024;

/// How deliveries of one webhook check (and present) certificates, beyond the server's own
/// `[delivery]` TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsSpec {
    /// PEM certificates to trust as issuers, besides the public roots (an on-prem CA).
    pub ca: Option<String>,
    /// A PEM client certificate (chain) for mutual TLS, with its key.
    pub client_cert: Option<String>,
    /// The client certificate's PEM private key. A secret: stored sealed, never shown.
    pub client_key: Option<String>,
    /// Turned off: any certificate is accepted, so anyone between hookd and the receiver can
    /// read and change deliveries. A named, per-webhook choice, warned about when made and at
    /// every start.
    pub skip_verify: bool,
}

impl TlsSpec {
    /// Whether this asks for nothing beyond the server's settings.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    fn parse(value: Option<&Value>) -> Result<Self, ValidationError> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(Self::default());
        };
        let f = Fields::new(value, "tls")?;
        f.deny_unknown(&["ca", "client_cert", "client_key", "verify"])?;
        let pem = |key: &str, marker: &str| -> Result<Option<String>, ValidationError> {
            let Some(text) = f.opt_str(key)? else {
                return Ok(None);
            };
            if text.len() > MAX_PEM_LEN {
                return Err(f.invalid(key, format!("`{key}` is larger than {MAX_PEM_LEN} bytes")));
            }
            if !text.contains("-----BEGIN ") || !text.contains(marker) {
                return Err(ValidationError::new(
                    "invalid_tls",
                    f.path(key),
                    format!("`{key}` must be PEM text holding a {marker} block (-----BEGIN …-----)"),
                ));
            }
            Ok(Some(text.to_owned()))
        };
        let tls = Self {
            ca: pem("ca", "CERTIFICATE")?,
            client_cert: pem("client_cert", "CERTIFICATE")?,
            client_key: pem("client_key", "PRIVATE KEY")?,
            skip_verify: !f.opt_bool("verify")?.unwrap_or(true),
        };
        if tls.client_cert.is_some() != tls.client_key.is_some() {
            let missing = if tls.client_cert.is_some() {
                "client_key"
            } else {
                "client_cert"
            };
            return Err(f.missing(missing));
        }
        Ok(tls)
    }

    fn to_json(&self) -> Value {
        json!({
            "ca": self.ca,
            "client_cert": self.client_cert,
            "client_key": self.client_key,
            "verify": !self.skip_verify,
        })
    }
}

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
    pub token: Option<String>,
    pub token_header: String,
    pub headers: BTreeMap<String, String>,
    pub format: Format,
    pub batch_max: u32,
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
        let token = problems.check(parse_token(&f));
        let token_header = problems.check(f.opt_str("token_header").and_then(|header| {
            let header = header.unwrap_or(DEFAULT_TOKEN_HEADER);
            check_header_name(&f, "token_header", header)?;
            Ok(header.to_owned())
        }));
        let headers = problems.check(parse_headers(&f));
        let format = problems.check(parse_format(&f, method.as_ref()));
        let batch_max = problems.check(parse_batch_max(&f));
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
                token: token?,
                token_header: token_header?,
                headers: headers?,
                format: format?,
                batch_max: batch_max?,
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
        json!({
            "name": self.name,
            "kind": self.kind.as_str(),
            "url": self.url.as_str(),
            "method": self.method.as_str(),
            "filters": self.filters.to_json(),
            "token": self.token,
            "token_header": self.token_header,
            "headers": self.headers,
            "format": self.format.as_str(),
            "batch_max": self.batch_max,
            "timeout": duration::format(self.timeout),
            "retry_schedule": self.retry_schedule.iter().map(|d| duration::format(*d)).collect::<Vec<_>>(),
            "enabled": self.enabled,
            "tls": self.tls.to_json(),
        })
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

/// Query parameters whose values are taken for credentials: a name containing one of these.
const SECRET_PARAMS: [&str; 9] = [
    "token",
    "key",
    "secret",
    "pass",
    "pwd",
    "auth",
    "sig",
    "credential",
    "session",
];

/// The URL as it may be shown (API answers, logs): a password in it and the values of query
/// parameters named like credentials (`token`, `api_key`, `sig`, …) replaced by `***`. The
/// stored URL, and the one requests go to, keep them.
pub fn redacted_url(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    let secret = |name: &str| {
        let name = name.to_ascii_lowercase();
        SECRET_PARAMS.iter().any(|s| name.contains(s))
    };
    if url.query_pairs().any(|(name, _)| secret(&name)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if secret(&name) {
                    "***".into()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

fn parse_kind(f: &Fields<'_>) -> Result<Kind, ValidationError> {
    let kind = f.req_str("kind", 16)?;
    Kind::parse(kind).ok_or_else(|| f.invalid("kind", format!("unknown kind `{kind}`; expected \"data\" or \"event\"")))
}

fn parse_method(f: &Fields<'_>) -> Result<Method, ValidationError> {
    match f.opt_str("method")?.map(str::to_ascii_uppercase).as_deref() {
        None | Some("POST") => Ok(Method::Post),
        Some("GET") => Ok(Method::Get),
        Some(other) => Err(f.invalid(
            "method",
            format!("unsupported method `{other}`; expected \"POST\" or \"GET\""),
        )),
    }
}

fn parse_token(f: &Fields<'_>) -> Result<Option<String>, ValidationError> {
    let Some(token) = f.opt_str("token")? else {
        return Ok(None);
    };
    f.check_len("token", token, MAX_TOKEN_LEN)?;
    if !is_header_value(token) {
        return Err(f.invalid("token", "`token` must be printable ASCII"));
    }
    Ok(Some(token.to_owned()))
}

fn parse_headers(f: &Fields<'_>) -> Result<BTreeMap<String, String>, ValidationError> {
    let headers = f.str_map("headers")?;
    if headers.len() > MAX_HEADERS {
        return Err(f.invalid("headers", format!("at most {MAX_HEADERS} headers")));
    }
    for (header, value) in &headers {
        check_header_name(f, &format!("headers.{header}"), header)?;
        if !is_header_value(value) {
            return Err(f.invalid(&format!("headers.{header}"), "header values must be printable ASCII"));
        }
    }
    Ok(headers)
}

/// The format; `single` by default for GET webhooks, which cannot batch (a GET request carries
/// no body, so a batch would deliver only its first record's header values).
fn parse_format(f: &Fields<'_>, method: Option<&Method>) -> Result<Format, ValidationError> {
    let get = method == Some(&Method::Get);
    match f.opt_str("format")? {
        None if get => Ok(Format::Single),
        Some("batch") if get => Err(f.invalid(
            "format",
            "a GET request carries no body, so a GET webhook cannot batch records: set \"format\": \"single\" or leave it out",
        )),
        None | Some("batch") => Ok(Format::Batch),
        Some("single") => Ok(Format::Single),
        Some(other) => Err(f.invalid(
            "format",
            format!("unknown format `{other}`; expected \"batch\" or \"single\""),
        )),
    }
}

fn parse_batch_max(f: &Fields<'_>) -> Result<u32, ValidationError> {
    match f.opt_u64("batch_max")? {
        None => Ok(DEFAULT_BATCH_MAX),
        Some(n) if (1..=u64::from(MAX_BATCH_MAX)).contains(&n) => Ok(n as u32),
        Some(n) => Err(f.invalid(
            "batch_max",
            format!("`batch_max` must be between 1 and {MAX_BATCH_MAX}, got {n}"),
        )),
    }
}

fn parse_timeout(f: &Fields<'_>, limits: WebhookLimits) -> Result<Duration, ValidationError> {
    let Some(s) = f.opt_str("timeout")? else {
        return Ok(DEFAULT_TIMEOUT.min(limits.max_timeout));
    };
    let t = duration::parse(s).map_err(|m| ValidationError::new("invalid_duration", "timeout", m))?;
    if t < MIN_TIMEOUT || t > limits.max_timeout {
        return Err(f.invalid(
            "timeout",
            format!(
                "`timeout` must be between {} and {}",
                duration::format(MIN_TIMEOUT),
                duration::format(limits.max_timeout)
            ),
        ));
    }
    Ok(t)
}

fn parse_url(f: &Fields<'_>) -> Result<Url, ValidationError> {
    let raw = f.req_str("url", MAX_URL_LEN)?;
    let invalid = |message: String| ValidationError::new("invalid_url", f.path("url"), message);
    let url = Url::parse(raw).map_err(|e| invalid(format!("`{raw}` is not a valid URL ({e})")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid(format!(
            "the URL scheme must be http or https, not `{}`",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host".into()));
    }
    // Percent-encoding can make the normalized URL longer than what was sent; the stored form
    // must read back, so the limit holds for it too.
    if url.as_str().len() > MAX_URL_LEN {
        return Err(invalid(format!(
            "the URL is longer than {MAX_URL_LEN} characters once percent-encoded"
        )));
    }
    Ok(url)
}

fn parse_schedule(f: &Fields<'_>) -> Result<Vec<Duration>, ValidationError> {
    if f.value("retry_schedule").is_none() {
        return Ok(retry::default_schedule());
    }
    let steps = f.str_list("retry_schedule")?;
    if steps.len() > MAX_RETRY_STEPS {
        return Err(f.invalid("retry_schedule", format!("at most {MAX_RETRY_STEPS} steps")));
    }
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let field = format!("retry_schedule[{i}]");
            let d = duration::parse(step).map_err(|m| ValidationError::new("invalid_duration", field.clone(), m))?;
            if d.is_zero() || d > MAX_RETRY_STEP {
                return Err(ValidationError::new(
                    "invalid_duration",
                    field,
                    format!(
                        "each step must be more than 0 and at most {}",
                        duration::format(MAX_RETRY_STEP)
                    ),
                ));
            }
            Ok(d)
        })
        .collect()
}

fn check_header_name(f: &Fields<'_>, field: &str, name: &str) -> Result<(), ValidationError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(ValidationError::new(
            "invalid_header",
            f.path(field),
            format!("`{name}` is not a valid header name"),
        ));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(ValidationError::new(
            "invalid_header",
            f.path(field),
            format!("`{name}` is set by hookd and cannot be changed"),
        ));
    }
    Ok(())
}

fn is_header_value(s: &str) -> bool {
    s.len() <= 8192 && s.bytes().all(|b| (0x20..0x7f).contains(&b) || b == b'\t')
}

/// A stored webhook: the spec plus what hookd manages.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: String,
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

    /// Renders a header template: `{{device_id}}`, `{{labels.site}}`, `{{payload.dev}}` take
    /// the value from `record` (the delivery's first record); unknown fields render as an
    /// empty string, and characters a header cannot carry are dropped.
    pub fn render_header(template: &str, record: Option<&Value>) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            let Some(len) = rest[start + 2..].find("}}") else { break };
            out.push_str(&rest[..start]);
            let path = rest[start + 2..start + 2 + len].trim();
            if let Some(value) = record.and_then(|r| lookup(r, path)) {
                match value {
                    Value::String(s) => out.push_str(s),
                    Value::Null => {}
                    other => out.push_str(&other.to_string()),
                }
            }
            rest = &rest[start + 2 + len + 2..];
        }
        out.push_str(rest);
        out.retain(|c| (' '..='~').contains(&c));
        out
    }
}

/// The value at a dotted path (`labels.org_name`) in a JSON object.
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |current, part| current.get(part))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const LIMITS: WebhookLimits = WebhookLimits {
        max_timeout: Duration::from_secs(60),
    };

    #[test]
    fn defaults_follow_the_design() {
        let spec = WebhookSpec::parse(
            &json!({"name": "n", "kind": "data", "url": "https://example.com/h"}),
            LIMITS,
        )
        .unwrap();
        assert_eq!(spec.method, Method::Post);
        assert_eq!(spec.format, Format::Batch);
        assert_eq!(spec.batch_max, 100);
        assert_eq!(spec.timeout, Duration::from_secs(30));
        assert_eq!(spec.token_header, "X-AUTH-TOKEN");
        assert_eq!(spec.retry_schedule, retry::default_schedule());
        assert!(spec.enabled);
        assert_eq!(WebhookSpec::parse(&spec.to_json(), LIMITS).unwrap(), spec);
    }

    #[test]
    fn each_bad_field_is_named() {
        let base = json!({"name": "n", "kind": "data", "url": "https://example.com"});
        let cases = [
            (json!({"url": "ftp://x"}), "url", "invalid_url"),
            (json!({"kind": "log"}), "kind", "invalid_value"),
            (json!({"name": " "}), "name", "invalid_value"),
            (
                json!({"retry_schedule": ["5s", "soon"]}),
                "retry_schedule[1]",
                "invalid_duration",
            ),
            (json!({"batch_max": 0}), "batch_max", "invalid_value"),
            (json!({"timeout": "2m"}), "timeout", "invalid_value"),
            (
                json!({"headers": {"Webhook-Id": "x"}}),
                "headers.Webhook-Id",
                "invalid_header",
            ),
            (json!({"colour": "red"}), "colour", "unknown_field"),
        ];
        for (patch, field, code) in cases {
            let mut body = base.clone();
            body.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
            let err = WebhookSpec::parse(&body, LIMITS).unwrap_err();
            assert_eq!((err.field.as_str(), err.code), (field, code), "{body}");
        }
    }

    #[test]
    fn a_get_webhook_sends_one_record_per_request_and_refuses_to_batch() {
        let get = json!({"name": "n", "kind": "data", "url": "https://example.com", "method": "GET"});
        assert_eq!(
            WebhookSpec::parse(&get, LIMITS).unwrap().format,
            Format::Single,
            "single by default"
        );
        let mut batch = get.clone();
        batch["format"] = json!("batch");
        let err = WebhookSpec::parse(&batch, LIMITS).unwrap_err();
        assert_eq!((err.field.as_str(), err.code), ("format", "invalid_value"));
        assert!(err.message.contains("GET"), "{}", err.message);

        let post = WebhookSpec::parse(
            &json!({"name": "n", "kind": "data", "url": "https://example.com"}),
            LIMITS,
        )
        .unwrap();
        let to_get = apply_patch(&post, &json!({"method": "GET"}), LIMITS).unwrap();
        assert_eq!(to_get.format, Format::Single, "the format follows the method");
        let back = apply_patch(&to_get, &json!({"method": "POST"}), LIMITS).unwrap();
        assert_eq!(back.format, Format::Batch);
        let kept = apply_patch(&to_get, &json!({"name": "m"}), LIMITS).unwrap();
        assert_eq!(kept.format, Format::Single);
        assert!(apply_patch(&post, &json!({"method": "GET", "format": "batch"}), LIMITS).is_err());
    }

    #[test]
    fn stored_specs_carry_their_version_and_older_ones_are_read_as_they_behaved() {
        let spec = WebhookSpec::parse(
            &json!({"name": "n", "kind": "data", "url": "https://example.com"}),
            LIMITS,
        )
        .unwrap();
        let stored = spec.to_stored();
        assert_eq!(stored["version"], SPEC_VERSION);
        assert_eq!(WebhookSpec::from_stored(&stored).unwrap(), spec);

        let v1_get_batch =
            json!({"name": "n", "kind": "data", "url": "https://example.com", "method": "GET", "format": "batch"});
        assert_eq!(
            WebhookSpec::from_stored(&v1_get_batch).unwrap().format,
            Format::Single,
            "a version 1 GET batch sent one record's worth: read as single"
        );
        let mut newer = stored.clone();
        newer["version"] = json!(SPEC_VERSION + 1);
        let err = WebhookSpec::from_stored(&newer).unwrap_err();
        assert_eq!((err.field.as_str(), err.code), ("version", "unsupported_version"));
        newer["version"] = json!("two");
        assert_eq!(WebhookSpec::from_stored(&newer).unwrap_err().field, "version");
        assert!(WebhookSpec::from_stored(&json!([])).is_err());
    }

    #[test]
    fn every_bad_field_of_a_body_is_named_the_first_one_first() {
        let err = WebhookSpec::parse(
            &json!({"name": "", "kind": "data", "url": "ftp://x", "batch_max": 0, "timeout": "soon"}),
            LIMITS,
        )
        .unwrap_err();
        let fields: Vec<&str> = err.all().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "url", "batch_max", "timeout"]);
    }

    #[test]
    fn tls_settings_are_pem_and_come_in_pairs() {
        let with = |tls: Value| {
            WebhookSpec::parse(
                &json!({"name": "n", "kind": "data", "url": "https://a.example", "tls": tls}),
                LIMITS,
            )
        };
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
        let spec = with(json!({"ca": cert, "client_cert": cert, "client_key": key})).unwrap();
        assert_eq!(spec.tls.ca.as_deref(), Some(cert));
        assert!(!spec.tls.skip_verify, "verification is on unless turned off");
        assert_eq!(WebhookSpec::from_stored(&spec.to_json()).unwrap(), spec);
        assert!(with(json!({"verify": false})).unwrap().tls.skip_verify);
        assert_eq!(with(json!({"ca": "not pem"})).unwrap_err().field, "tls.ca");
        assert_eq!(with(json!({"client_cert": cert})).unwrap_err().field, "tls.client_key");
        assert_eq!(with(json!({"colour": 1})).unwrap_err().code, "unknown_field");
        assert!(with(Value::Null).unwrap().tls.is_default());
    }

    #[test]
    fn a_patch_replaces_only_what_it_names() {
        let spec = WebhookSpec::parse(
            &json!({"name": "n", "kind": "event", "url": "https://a.example", "token": "t"}),
            LIMITS,
        )
        .unwrap();
        let patched = apply_patch(&spec, &json!({"name": "m", "token": null}), LIMITS).unwrap();
        assert_eq!(patched.name, "m");
        assert_eq!(patched.token, None);
        assert_eq!(patched.url, spec.url);
    }

    #[test]
    fn credentials_in_a_url_are_not_shown() {
        let shown = |url: &str| redacted_url(&Url::parse(url).unwrap());
        assert_eq!(shown("https://u:p@host.example/x"), "https://u:***@host.example/x");
        assert_eq!(
            shown("https://host.example/x?site=3&token=abc&API_KEY=k&sig=s"),
            "https://host.example/x?site=3&token=***&API_KEY=***&sig=***"
        );
        assert_eq!(shown("https://host.example/x?site=3"), "https://host.example/x?site=3");
        assert_eq!(shown("https://user@host.example/"), "https://user@host.example/");
    }

    #[test]
    fn a_patch_sending_the_shown_url_back_keeps_the_real_one() {
        let spec = WebhookSpec::parse(
            &json!({"name": "n", "kind": "data", "url": "https://u:p@a.example/?token=t"}),
            LIMITS,
        )
        .unwrap();
        let shown = redacted_url(&spec.url);
        let patched = apply_patch(&spec, &json!({"url": shown, "name": "m"}), LIMITS).unwrap();
        assert_eq!(patched.url, spec.url);
        let moved = apply_patch(&spec, &json!({"url": "https://b.example/"}), LIMITS).unwrap();
        assert_eq!(moved.url.as_str(), "https://b.example/");
    }

    /// A spec from the three required fields and `extra`.
    fn spec(extra: Value) -> Result<WebhookSpec, ValidationError> {
        let mut body = json!({"name": "n", "kind": "data", "url": "https://example.com/h"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        WebhookSpec::parse(&body, LIMITS)
    }

    fn field_of(extra: Value) -> String {
        spec(extra).unwrap_err().field
    }

    #[test]
    fn every_bound_holds_to_the_last_value_allowed() {
        let day = 24 * 3600;
        assert!(
            spec(json!({"retry_schedule": [format!("{}s", 7 * day)]})).is_ok(),
            "a week"
        );
        assert_eq!(
            field_of(json!({"retry_schedule": [format!("{}s", 7 * day + 1)]})),
            "retry_schedule[0]"
        );
        assert_eq!(field_of(json!({"retry_schedule": ["0s"]})), "retry_schedule[0]");
        assert!(spec(json!({"retry_schedule": vec!["1s"; 30]})).is_ok());
        assert_eq!(field_of(json!({"retry_schedule": vec!["1s"; 31]})), "retry_schedule");
        assert!(spec(json!({"timeout": "100ms"})).is_ok());
        assert_eq!(field_of(json!({"timeout": "99ms"})), "timeout");
        assert!(spec(json!({"timeout": "60s"})).is_ok(), "the configured maximum");
        assert_eq!(field_of(json!({"timeout": "61s"})), "timeout");
        let headers = |n: usize| (0..n).map(|i| (format!("X-H{i}"), json!("v"))).collect::<Map<_, _>>();
        assert!(spec(json!({"headers": headers(50)})).is_ok());
        assert_eq!(field_of(json!({"headers": headers(51)})), "headers");
        assert!(spec(json!({"batch_max": 1000})).is_ok());
        assert_eq!(field_of(json!({"batch_max": 1001})), "batch_max");
    }

    #[test]
    fn a_url_is_at_most_2048_characters_once_percent_encoded() {
        let url = |path: &str| json!({"url": format!("https://example.com/{path}")});
        let room = 2048 - "https://example.com/".len();
        assert!(spec(url(&"p".repeat(room))).is_ok(), "exactly 2048");
        assert_eq!(field_of(url(&"p".repeat(room + 1))), "url");
        // 2048 characters as sent, longer once `é` is written %C3%A9.
        assert_eq!(field_of(url(&format!("{}é", "p".repeat(room - 1)))), "url");
    }

    #[test]
    fn header_names_and_values_are_checked() {
        assert!(
            spec(json!({"headers": {"X-Tab": "a\tb"}})).is_ok(),
            "a tab may be in a value"
        );
        for bad in ["a\nb", "é"] {
            assert_eq!(field_of(json!({"headers": {"X-A": bad}})), "headers.X-A", "{bad:?}");
        }
        assert!(spec(json!({"headers": {"X-A": "v".repeat(8192)}})).is_ok());
        assert_eq!(field_of(json!({"headers": {"X-A": "v".repeat(8193)}})), "headers.X-A");
        assert!(spec(json!({"token_header": "h".repeat(128)})).is_ok());
        for bad in ["", "h h", "é"] {
            assert_eq!(field_of(json!({"token_header": bad})), "token_header", "{bad:?}");
        }
        assert_eq!(field_of(json!({"token_header": "h".repeat(129)})), "token_header");
        assert_eq!(spec(json!({"token": "t0k3n"})).unwrap().token.as_deref(), Some("t0k3n"));
        assert_eq!(field_of(json!({"token": "bad\ntoken"})), "token");
    }

    #[test]
    fn tls_pem_is_bounded_and_of_the_kind_asked() {
        let cert = |len: usize| {
            let head = "-----BEGIN CERTIFICATE-----\n";
            format!("{head}{}", "A".repeat(len - head.len()))
        };
        assert!(spec(json!({"tls": {"ca": cert(64 * 1024)}})).is_ok());
        assert_eq!(field_of(json!({"tls": {"ca": cert(64 * 1024 + 1)}})), "tls.ca");
        let key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            field_of(json!({"tls": {"ca": key}})),
            "tls.ca",
            "a key is not a CA certificate"
        );
        assert!(TlsSpec::default().is_default());
        assert!(!spec(json!({"tls": {"ca": cert(100)}})).unwrap().tls.is_default());
        assert!(!spec(json!({"tls": {"verify": false}})).unwrap().tls.is_default());
    }

    #[test]
    fn a_webhook_takes_the_records_of_its_kind_its_filters_let_through_while_enabled() {
        let data = |v: Value| crate::record::parse_body(&v, Kind::Data, 1).unwrap().remove(0);
        let event = crate::record::parse_body(&json!({"type": "x", "payload": 1}), Kind::Event, 1)
            .unwrap()
            .remove(0);
        let mut spec = spec(json!({"filters": {"tags": ["t"]}})).unwrap();
        let tagged = data(json!({"device_id": "d", "tag": "t", "payload": 1}));
        let other = data(json!({"device_id": "d", "tag": "u", "payload": 1}));
        assert!(spec.accepts(&tagged));
        assert!(!spec.accepts(&other), "the filter");
        assert!(!spec.accepts(&event), "the kind");
        spec.enabled = false;
        assert!(!spec.accepts(&tagged), "disabled");
        assert_eq!(spec.records_per_delivery(), 100);
        spec.batch_max = 7;
        assert_eq!(spec.records_per_delivery(), 7);
        spec.format = Format::Single;
        assert_eq!(spec.records_per_delivery(), 1);
    }

    #[test]
    fn the_breaker_is_closed_below_its_threshold_open_while_paused_then_half_open() {
        let health = |failures: u32, until: Millis| WebhookHealth {
            consecutive_failures: failures,
            breaker_until: until,
            ..Default::default()
        };
        assert_eq!(
            health(4, 2000).breaker(5, 1000),
            Breaker::Closed,
            "one below the threshold"
        );
        assert_eq!(
            health(5, 2000).breaker(5, 1000),
            Breaker::Open,
            "at the threshold, paused"
        );
        assert_eq!(health(6, 2000).breaker(5, 1999), Breaker::Open);
        assert_eq!(health(5, 2000).breaker(5, 2000), Breaker::HalfOpen, "the pause is over");
        assert_eq!(health(5, 2000).breaker(5, 2001), Breaker::HalfOpen);
    }

    #[test]
    fn a_webhook_signs_with_its_secret_and_the_previous_ones_until_they_expire() {
        let webhook = Webhook {
            id: "wh_1".into(),
            workspace_id: "ws_1".into(),
            spec: spec(json!({})).unwrap(),
            secret: "new".into(),
            previous_secrets: vec![
                PreviousSecret {
                    secret: "old".into(),
                    expires_at: 1000,
                },
                PreviousSecret {
                    secret: "older".into(),
                    expires_at: 500,
                },
            ],
            disabled_reason: None,
            created_at: 0,
            updated_at: 0,
            health: WebhookHealth::default(),
        };
        let at = |now: Millis| webhook.signing_secrets(now).collect::<Vec<_>>();
        assert_eq!(at(499), ["new", "old", "older"]);
        assert_eq!(at(500), ["new", "old"], "expired at its expiry");
        assert_eq!(at(999), ["new", "old"]);
        assert_eq!(at(1000), ["new"]);
    }

    #[test]
    fn header_templates_take_record_fields() {
        let rec = json!({"device_id": "d1", "tag": "t", "payload": {"n": 3}, "labels": {"site": "s"}});
        assert_eq!(
            Webhook::render_header("{{device_id}}/{{labels.site}}/{{payload.n}}/{{nope}}", Some(&rec)),
            "d1/s/3/"
        );
    }
}
