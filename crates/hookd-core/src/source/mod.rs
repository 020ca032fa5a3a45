//! Sources: inbound doors (`/in/{src}`) that verify a sender's requests and turn them into
//! records.
//!
//! - this module: [`SourceSpec`], everything a customer sets, parsed from JSON with a field
//!   path for every error and rendered back to the same JSON (its stored form);
//! - `hmac`: HMAC schemes as configuration, and the presets of the named senders;
//! - `verify`: checking one request against a spec, with a reason code and evidence;
//! - `body`: reading a body as JSON, a form or text;
//! - `program`: jq programs, compiled once and run with the request's variables;
//! - `reshape`: from a body to records, through `split`, `transform` and `fields`;
//! - `ed25519`: Standard Webhooks' asymmetric `v1a` signatures;
//! - `compact`: JSON written the way Python's `json.dumps(…, separators=(",", ":"))` does.

mod body;
mod compact;
mod ed25519;
mod hmac;
mod program;
mod reshape;
mod verify;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::clock::Millis;
use crate::duration;
use crate::record::Kind;
use crate::timefmt::{parse_rfc3339, rfc3339};
use crate::validation::{Fields, Problems, ValidationError};

pub use body::{BodyError, media_type, read_body};
pub use compact::python_compact;
pub use ed25519::PUBLIC_KEY_PREFIX;
pub use hmac::{Algorithm, Encoding, HmacSpec, TimestampUnit};
pub use program::{Bindings, Program, ProgramError, VARIABLES, compile};
pub use reshape::{Limits, Reshape, ReshapeSpec};
pub use verify::{Inbound, Reason, Rejection, Verified, verify};

/// The inbound verification schemes. There is no default: a source names one, and `none`
/// must be said explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Token,
    Basic,
    Hmac,
    StandardWebhooks,
    Github,
    Stripe,
    Slack,
    Shopify,
    Orbit,
    None,
}

impl Scheme {
    pub const ALL: [Scheme; 10] = [
        Self::Token,
        Self::Basic,
        Self::Hmac,
        Self::StandardWebhooks,
        Self::Github,
        Self::Stripe,
        Self::Slack,
        Self::Shopify,
        Self::Orbit,
        Self::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Basic => "basic",
            Self::Hmac => "hmac",
            Self::StandardWebhooks => "standard_webhooks",
            Self::Github => "github",
            Self::Stripe => "stripe",
            Self::Slack => "slack",
            Self::Shopify => "shopify",
            Self::Orbit => "orbit",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scheme| scheme.as_str() == s)
    }

    fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

/// A secret that verifies requests; after `expires_at` it no longer does (rotation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSecret {
    pub value: String,
    pub expires_at: Option<Millis>,
}

/// Everything a customer sets on a source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    pub name: String,
    pub scheme: Scheme,
    pub secrets: Vec<SourceSecret>,
    /// `token`: the header carrying the token. `hmac`: the signature header.
    pub header: Option<String>,
    /// `token`: the query parameter carrying the token instead of a header.
    pub query: Option<String>,
    /// `hmac`: the scheme (presets carry their own).
    pub hmac: Option<HmacSpec>,
    /// How far a signed timestamp may be from now, either way.
    pub tolerance: Duration,
    pub record_type: Kind,
    pub split: Option<String>,
    pub transform: Option<String>,
    pub fields: BTreeMap<String, String>,
    pub methods: Vec<String>,
    pub response_status: u16,
}

/// A stored source.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: String,
    pub workspace_id: String,
    pub spec: SourceSpec,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// The fields a source body may have.
pub const FIELDS: [&str; 14] = [
    "name",
    "scheme",
    "secret",
    "secrets",
    "header",
    "query",
    "hmac",
    "tolerance",
    "record_type",
    "split",
    "transform",
    "fields",
    "methods",
    "response_status",
];

pub const DEFAULT_TOKEN_HEADER: &str = "X-AUTH-TOKEN";
const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
const MAX_NAME_LEN: usize = 200;
const MAX_SECRETS: usize = 10;
const MAX_PROGRAM_LEN: usize = 10_000;
/// Record fields `fields` may set.
pub const MAPPABLE_FIELDS: [&str; 11] = [
    "type",
    "device_id",
    "fleet_id",
    "tag",
    "ts",
    "direction",
    "device_name",
    "asset_id",
    "asset_name",
    "timestamp_device",
    "labels.<key>",
];

impl SourceSpec {
    pub fn parse(value: &Value) -> Result<Self, ValidationError> {
        let f = Fields::new(value, "")?;
        f.deny_unknown(&FIELDS)?;
        let mut problems = Problems::default();
        let name = problems.check(f.req_str("name", MAX_NAME_LEN).map(str::to_owned));
        let scheme = problems.check(parse_scheme(&f));
        let secrets = problems.check(parse_secrets(&f));
        let header = problems.check(f.opt_str("header").map(|h| h.map(str::to_owned)));
        let query = problems.check(f.opt_str("query").map(|q| q.map(str::to_owned)));
        let tolerance = problems.check(parse_tolerance(&f));
        let record_type = problems.check(f.opt_str("record_type").and_then(|t| match t.unwrap_or("event") {
            "event" => Ok(Kind::Event),
            "data" => Ok(Kind::Data),
            _ => Err(f.invalid("record_type", "`record_type` is event or data")),
        }));
        let split = problems.check(parse_program(&f, "split"));
        let transform = problems.check(parse_program(&f, "transform"));
        let fields = problems.check(parse_fields(&f));
        let methods = problems.check(parse_methods(&f));
        let response_status = problems.check(f.opt_u64("response_status").and_then(|s| match s.unwrap_or(202) {
            s @ (200 | 202 | 204) => Ok(s as u16),
            _ => Err(f.invalid("response_status", "`response_status` is 200, 202 or 204")),
        }));
        let hmac = scheme.and_then(|scheme| {
            let named = header.clone().flatten().unwrap_or_default();
            problems.check(parse_scheme_options(
                &f,
                scheme,
                &named,
                &query.clone().flatten(),
                &secrets,
            ))
        });
        let spec = (|| {
            Some(Self {
                name: name?,
                scheme: scheme?,
                secrets: secrets?,
                header: header?,
                query: query?,
                hmac: hmac?,
                tolerance: tolerance?,
                record_type: record_type?,
                split: split?,
                transform: transform?,
                fields: fields?,
                methods: methods?,
                response_status: response_status?,
            })
        })();
        problems.and(spec)
    }

    /// The spec as JSON, in the shape [`SourceSpec::parse`] reads, secrets included: its
    /// stored form, and what a patch is merged into.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "scheme": self.scheme.as_str(),
            "secrets": self.secrets.iter().map(|s| json!({
                "value": s.value,
                "expires_at": s.expires_at.map(rfc3339),
            })).collect::<Vec<_>>(),
            "header": self.header,
            "query": self.query,
            "hmac": self.hmac.as_ref().filter(|_| self.scheme == Scheme::Hmac).map(HmacSpec::to_json),
            "tolerance": duration::format(self.tolerance),
            "record_type": self.record_type.as_str(),
            "split": self.split,
            "transform": self.transform,
            "fields": self.fields,
            "methods": self.methods,
            "response_status": self.response_status,
        })
    }

    /// The HMAC scheme requests are verified by: the preset's, or the configured one.
    pub fn hmac_scheme(&self) -> Option<&HmacSpec> {
        match self.scheme {
            Scheme::Hmac => self.hmac.as_ref(),
            scheme => HmacSpec::preset(scheme),
        }
    }

    /// A warning to give whoever creates or changes the source, if any.
    pub fn warning(&self) -> Option<String> {
        (self.scheme == Scheme::None).then(|| {
            format!(
                "source `{}` has scheme `none`: anyone who knows its address can send records to it",
                self.name
            )
        })
    }
}

/// Applies a PATCH body onto a spec: top-level fields present replace the current ones
/// (`null` resets to the default), then the whole is validated again. `secret` replaces
/// `secrets`.
pub fn apply_patch(current: &SourceSpec, patch: &Value) -> Result<SourceSpec, ValidationError> {
    let f = Fields::new(patch, "")?;
    f.deny_unknown(&FIELDS)?;
    let mut merged: Map<String, Value> = match current.to_json() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for (key, value) in f.map() {
        if key == "secret" {
            merged.remove("secrets");
        }
        if key == "scheme" {
            // A new scheme starts from its own defaults.
            for key in ["header", "hmac"] {
                merged.remove(key);
            }
        }
        merged.insert(key.clone(), value.clone());
    }
    SourceSpec::parse(&Value::Object(merged))
}

fn parse_scheme(f: &Fields<'_>) -> Result<Scheme, ValidationError> {
    let Some(name) = f.opt_str("scheme")? else {
        return Err(ValidationError::new(
            "missing_field",
            "scheme",
            format!(
                "`scheme` is required: one of {}; a source without one would accept anything (say `none` for that)",
                Scheme::names()
            ),
        ));
    };
    Scheme::parse(name).ok_or_else(|| {
        f.invalid(
            "scheme",
            format!("unknown scheme `{name}`; expected one of {}", Scheme::names()),
        )
    })
}

fn parse_secrets(f: &Fields<'_>) -> Result<Vec<SourceSecret>, ValidationError> {
    match (f.value("secret"), f.value("secrets")) {
        (Some(_), Some(_)) => Err(f.invalid("secrets", "give `secret` or `secrets`, not both")),
        (Some(_), None) => {
            let value = f.opt_str("secret")?.unwrap_or_default();
            Ok(vec![secret(f, "secret", value, None)?])
        }
        (None, Some(Value::Array(items))) => {
            if items.len() > MAX_SECRETS {
                return Err(f.invalid("secrets", format!("at most {MAX_SECRETS} secrets")));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let field = format!("secrets[{i}]");
                    match item {
                        Value::String(s) => secret(f, &field, s, None),
                        Value::Object(_) => {
                            let entry = Fields::new(item, &f.path(&field))?;
                            entry.deny_unknown(&["value", "expires_at"])?;
                            let value = entry.req_str("value", 1000)?;
                            let expires_at =
                                match entry.opt_str("expires_at")? {
                                    None => None,
                                    Some(at) => Some(parse_rfc3339(at).ok_or_else(|| {
                                        entry.invalid("expires_at", "`expires_at` is an RFC 3339 time")
                                    })?),
                                };
                            secret(f, &field, value, expires_at)
                        }
                        _ => Err(f.invalid(&field, "a secret is a string or {\"value\", \"expires_at\"}")),
                    }
                })
                .collect()
        }
        (None, Some(_)) => Err(f.invalid("secrets", "`secrets` is an array")),
        (None, None) => Ok(Vec::new()),
    }
}

fn secret(
    f: &Fields<'_>,
    field: &str,
    value: &str,
    expires_at: Option<Millis>,
) -> Result<SourceSecret, ValidationError> {
    if value.is_empty() {
        return Err(f.invalid(field, "a secret must not be empty"));
    }
    f.check_len(field, value, 1000)?;
    Ok(SourceSecret {
        value: value.to_owned(),
        expires_at,
    })
}

fn parse_tolerance(f: &Fields<'_>) -> Result<Duration, ValidationError> {
    match f.opt_str("tolerance")? {
        None => Ok(DEFAULT_TOLERANCE),
        Some(text) => {
            let tolerance = duration::parse(text).map_err(|e| f.invalid("tolerance", e))?;
            if tolerance.is_zero() || tolerance > Duration::from_secs(86_400) {
                return Err(f.invalid("tolerance", "`tolerance` is more than 0 and at most 24h"));
            }
            Ok(tolerance)
        }
    }
}

fn parse_program(f: &Fields<'_>, key: &str) -> Result<Option<String>, ValidationError> {
    let program = f.opt_str(key)?;
    if let Some(program) = program {
        if program.trim().is_empty() {
            return Err(f.invalid(key, format!("`{key}` must not be empty; leave it out for the default")));
        }
        f.check_len(key, program, MAX_PROGRAM_LEN)?;
    }
    Ok(program.map(str::to_owned))
}

fn parse_fields(f: &Fields<'_>) -> Result<BTreeMap<String, String>, ValidationError> {
    let fields = f.str_map("fields")?;
    for (key, program) in &fields {
        let known = MAPPABLE_FIELDS[..MAPPABLE_FIELDS.len() - 1].contains(&key.as_str())
            || key.strip_prefix("labels.").is_some_and(|label| !label.is_empty());
        if !known {
            return Err(f.invalid(
                &format!("fields.{key}"),
                format!(
                    "`{key}` is not a record field; expected one of {}",
                    MAPPABLE_FIELDS.join(", ")
                ),
            ));
        }
        f.check_len(&format!("fields.{key}"), program, MAX_PROGRAM_LEN)?;
    }
    Ok(fields)
}

fn parse_methods(f: &Fields<'_>) -> Result<Vec<String>, ValidationError> {
    let methods = f.str_list("methods")?;
    if f.value("methods").is_none() {
        return Ok(vec!["POST".to_owned()]);
    }
    if methods.is_empty() {
        return Err(f.invalid("methods", "`methods` names at least one of POST, PUT, GET"));
    }
    let mut upper: Vec<String> = Vec::new();
    for (i, method) in methods.iter().enumerate() {
        let method = method.to_ascii_uppercase();
        if !["POST", "PUT", "GET"].contains(&method.as_str()) {
            return Err(f.invalid(&format!("methods[{i}]"), "a method is POST, PUT or GET"));
        }
        if !upper.contains(&method) {
            upper.push(method);
        }
    }
    Ok(upper)
}

/// What each scheme needs besides its secrets: checks the options given fit it, and returns
/// the custom HMAC scheme for `hmac`.
fn parse_scheme_options(
    f: &Fields<'_>,
    scheme: Scheme,
    header: &str,
    query: &Option<String>,
    secrets: &Option<Vec<SourceSecret>>,
) -> Result<Option<HmacSpec>, ValidationError> {
    let has_secrets = secrets.as_ref().is_some_and(|s| !s.is_empty());
    if scheme == Scheme::None {
        if has_secrets {
            return Err(f.invalid("secret", "a source with scheme `none` checks no secret; leave it out"));
        }
    } else if secrets.is_some() && !has_secrets {
        return Err(ValidationError::new(
            "missing_field",
            "secret",
            format!("scheme `{}` needs a `secret` (or `secrets`)", scheme.as_str()),
        ));
    }
    if scheme != Scheme::Token && query.is_some() {
        return Err(f.invalid("query", "`query` is for scheme `token` only"));
    }
    if !matches!(scheme, Scheme::Token | Scheme::Hmac) && !header.is_empty() {
        return Err(f.invalid(
            "header",
            format!(
                "scheme `{}` has its own header; `header` is for `token` and `hmac`",
                scheme.as_str()
            ),
        ));
    }
    if scheme == Scheme::Token && !header.is_empty() && query.is_some() {
        return Err(f.invalid("query", "give `header` or `query`, not both"));
    }
    if !header.is_empty() {
        crate::webhook::fields::check_header_name(f, "header", header)?;
    }
    if scheme == Scheme::Basic
        && let Some(secrets) = secrets
        && let Some(i) = secrets.iter().position(|s| !s.value.contains(':'))
    {
        return Err(f.invalid(
            if secrets.len() == 1 {
                "secret".to_owned()
            } else {
                format!("secrets[{i}]")
            }
            .as_str(),
            "a `basic` secret is `user:password`",
        ));
    }
    if scheme == Scheme::StandardWebhooks
        && let Some(secrets) = secrets
        && let Some(i) = secrets
            .iter()
            .position(|s| s.value.starts_with(PUBLIC_KEY_PREFIX) && ed25519::public_key(&s.value).is_none())
    {
        return Err(f.invalid(
            if secrets.len() == 1 {
                "secret".to_owned()
            } else {
                format!("secrets[{i}]")
            }
            .as_str(),
            "a `whpk_` public key is `whpk_` and 32 bytes in base64 (for `v1a` signatures)",
        ));
    }
    match (scheme, f.value("hmac")) {
        (Scheme::Hmac, Some(value)) => HmacSpec::parse(value, header, &f.path("hmac")).map(Some),
        (Scheme::Hmac, None) => Err(ValidationError::new(
            "missing_field",
            "hmac",
            "scheme `hmac` needs `hmac`: {algorithm, key_encoding, encoding, header_format, signed_content, …}",
        )),
        (_, Some(_)) => Err(f.invalid("hmac", "`hmac` is for scheme `hmac`; a named scheme has its own")),
        (_, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests;
