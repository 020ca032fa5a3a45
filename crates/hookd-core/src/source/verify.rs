//! Checking one incoming request against its source: the method, then the scheme's
//! credentials over the raw bytes, compared in constant time. A rejection carries a stable
//! reason code and a one-line explanation with the evidence (for the source's request log;
//! the sender only ever hears "verification failed").

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::{Scheme, SourceSecret, SourceSpec, ed25519, python_compact};
use crate::clock::Millis;
use crate::signature::constant_time_eq;

/// A request as received.
#[derive(Debug, Clone, Default)]
pub struct Inbound<'a> {
    pub method: &'a str,
    /// Header names in lower case.
    pub headers: &'a [(String, String)],
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Inbound<'_> {
    /// The first value of a header, by any case of its name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A request that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// What identifies this message, to refuse it if it comes again within the tolerance
    /// (an id header, else the signature itself); `None` where the scheme signs nothing.
    pub message_id: Option<String>,
}

/// Why a request was refused, with a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    MethodNotAllowed,
    MissingHeader,
    MalformedHeader,
    BadSignature,
    StaleTimestamp,
    Replayed,
    BadToken,
    BadCredentials,
    NotJson,
    /// Larger than the API's body limit (set by the door, which reads the body).
    TooLarge,
    TransformError,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "method_not_allowed",
            Self::MissingHeader => "missing_header",
            Self::MalformedHeader => "malformed_header",
            Self::BadSignature => "bad_signature",
            Self::StaleTimestamp => "stale_timestamp",
            Self::Replayed => "replayed",
            Self::BadToken => "bad_token",
            Self::BadCredentials => "bad_credentials",
            Self::NotJson => "not_json",
            Self::TooLarge => "too_large",
            Self::TransformError => "transform_error",
        }
    }
}

/// A refused request: the reason code and what the log says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub explanation: String,
}

fn reject(reason: Reason, explanation: impl Into<String>) -> Rejection {
    Rejection {
        reason,
        explanation: explanation.into(),
    }
}

/// Verifies `request` against `spec` at `now`.
pub fn verify(spec: &SourceSpec, request: &Inbound<'_>, now: Millis) -> Result<Verified, Rejection> {
    if !spec.methods.iter().any(|m| m.eq_ignore_ascii_case(request.method)) {
        return Err(reject(
            Reason::MethodNotAllowed,
            format!("method {} is not one of {}", request.method, spec.methods.join(", ")),
        ));
    }
    let live: Vec<&SourceSecret> = spec
        .secrets
        .iter()
        .filter(|s| s.expires_at.is_none_or(|at| at > now))
        .collect();
    let expired = spec.secrets.len() - live.len();
    let tried = |n: usize| {
        let mut text = format!("{n} secret{} tried", if n == 1 { "" } else { "s" });
        if expired > 0 {
            text.push_str(&format!(", {expired} expired"));
        }
        text
    };
    match spec.scheme {
        Scheme::None => Ok(Verified { message_id: None }),
        Scheme::Token => verify_token(spec, request, &live, &tried(live.len())),
        Scheme::Basic => verify_basic(request, &live, &tried(live.len())),
        _ => verify_hmac(spec, request, &live, &tried(live.len()), now),
    }
}

/// Equal in constant time, whatever the lengths: both sides are hashed first.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    constant_time_eq(&Sha256::digest(given), &Sha256::digest(expected))
}

fn verify_token(
    spec: &SourceSpec,
    request: &Inbound<'_>,
    live: &[&SourceSecret],
    tried: &str,
) -> Result<Verified, Rejection> {
    let (given, place) = match &spec.query {
        Some(param) => (request.query_param(param), format!("query parameter `{param}`")),
        None => {
            let header = spec.header.as_deref().unwrap_or(super::DEFAULT_TOKEN_HEADER);
            let value = request.header(header);
            let value = match header.eq_ignore_ascii_case("authorization") {
                true => value.map(|v| v.strip_prefix("Bearer ").unwrap_or(v)),
                false => value,
            };
            (value, format!("header {header}"))
        }
    };
    let Some(given) = given.filter(|g| !g.is_empty()) else {
        return Err(reject(
            Reason::MissingHeader,
            format!("expected the token in {place}; it was absent"),
        ));
    };
    if live.iter().any(|s| same_secret(given.as_bytes(), s.value.as_bytes())) {
        return Ok(Verified { message_id: None });
    }
    Err(reject(
        Reason::BadToken,
        format!(
            "the token in {place} ({} characters) matched no secret ({tried})",
            given.chars().count()
        ),
    ))
}

fn verify_basic(request: &Inbound<'_>, live: &[&SourceSecret], tried: &str) -> Result<Verified, Rejection> {
    let Some(header) = request.header("authorization") else {
        return Err(reject(
            Reason::MissingHeader,
            "expected header Authorization: Basic <base64 of user:password>; it was absent",
        ));
    };
    let decoded = header
        .strip_prefix("Basic ")
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .filter(|d| d.contains(&b':'));
    let Some(given) = decoded else {
        return Err(reject(
            Reason::MalformedHeader,
            "header Authorization is not `Basic <base64 of user:password>`",
        ));
    };
    if live.iter().any(|s| same_secret(&given, s.value.as_bytes())) {
        return Ok(Verified { message_id: None });
    }
    let user = String::from_utf8_lossy(&given[..given.iter().position(|b| *b == b':').unwrap_or(0)]).into_owned();
    Err(reject(
        Reason::BadCredentials,
        format!("user `{user}` and its password matched no secret ({tried})"),
    ))
}

fn verify_hmac(
    spec: &SourceSpec,
    request: &Inbound<'_>,
    live: &[&SourceSecret],
    tried: &str,
    now: Millis,
) -> Result<Verified, Rejection> {
    let Some(scheme) = spec.hmac_scheme() else {
        return Err(reject(Reason::BadSignature, "the source has no HMAC scheme"));
    };
    let shape = format!(
        "HMAC-{} over `{}`, {}",
        scheme.algorithm.as_str().to_ascii_uppercase(),
        scheme.signed_content,
        scheme.encoding.as_str()
    );
    let Some(value) = request.header(&scheme.header) else {
        return Err(reject(
            Reason::MissingHeader,
            format!("expected header {} ({shape}); it was absent", scheme.header),
        ));
    };
    let (signatures, header_timestamp) = scheme.read_header(value);
    let asymmetric = match spec.scheme {
        Scheme::StandardWebhooks => ed25519::signatures(value),
        _ => Vec::new(),
    };
    if signatures.is_empty() && asymmetric.is_empty() {
        return Err(reject(
            Reason::MalformedHeader,
            format!(
                "header {} holds no signature of the form `{}`",
                scheme.header, scheme.header_format
            ),
        ));
    }
    let timestamp = match (&scheme.timestamp_header, header_timestamp) {
        (_, Some(ts)) => Some(ts.to_owned()),
        (Some(name), None) => Some(
            request
                .header(name)
                .ok_or_else(|| {
                    reject(
                        Reason::MissingHeader,
                        format!("expected the timestamp in header {name}; it was absent"),
                    )
                })?
                .trim()
                .to_owned(),
        ),
        (None, None) if scheme.is_timestamped() => {
            return Err(reject(
                Reason::MalformedHeader,
                format!(
                    "header {} carries no timestamp in the form `{}`",
                    scheme.header, scheme.header_format
                ),
            ));
        }
        (None, None) => None,
    };
    if let Some(ts) = &timestamp {
        let Ok(value) = ts.parse::<i64>() else {
            return Err(reject(
                Reason::MalformedHeader,
                format!("timestamp `{ts}` is not a whole number"),
            ));
        };
        let skew = now - scheme.timestamp_unit.to_millis(value);
        let tolerance = spec.tolerance.as_millis() as i64;
        if skew.abs() > tolerance {
            let (amount, direction) = (
                skew.abs() / 1000,
                if skew > 0 { "in the past" } else { "in the future" },
            );
            return Err(reject(
                Reason::StaleTimestamp,
                format!(
                    "timestamp {ts} is {amount} s {direction}; the tolerance is {} s",
                    tolerance / 1000
                ),
            ));
        }
    }
    let id = match &scheme.id_header {
        Some(name) => request.header(name).map(str::to_owned),
        None => None,
    };
    if scheme.signed_content.contains("{id}") && id.is_none() {
        let name = scheme.id_header.as_deref().unwrap_or("id");
        return Err(reject(
            Reason::MissingHeader,
            format!("expected the message id in header {name}; it was absent"),
        ));
    }
    let given: Vec<(Vec<u8>, &str)> = signatures
        .iter()
        .filter_map(|s| scheme.encoding.decode(s).map(|bytes| (bytes, *s)))
        .collect();
    if given.is_empty() && asymmetric.is_empty() {
        return Err(reject(
            Reason::MalformedHeader,
            format!(
                "no signature in header {} is {}",
                scheme.header,
                scheme.encoding.as_str()
            ),
        ));
    }
    let ts = timestamp.as_deref().unwrap_or_default();
    let id_text = id.as_deref().unwrap_or_default();
    // The site manager's validator signs the body as Python writes it compactly; the raw
    // bytes are tried first, as they normally are that already.
    let compact = match spec.scheme {
        Scheme::Orbit => python_compact(request.body).filter(|c| c.as_bytes() != request.body),
        _ => None,
    };
    let bodies: Vec<&[u8]> = std::iter::once(request.body)
        .chain(compact.as_deref().map(str::as_bytes))
        .collect();
    let mut unusable = 0;
    for secret in live {
        if let Some(public) = ed25519::public_key(&secret.value) {
            let content = scheme.content(request.body, ts, id_text);
            if let Some(written) = ed25519::matching(&public, &asymmetric, &content) {
                return Ok(Verified {
                    message_id: Some(id.clone().unwrap_or_else(|| written.to_owned())),
                });
            }
            continue;
        }
        let Some(key) = scheme.key_encoding.decode(&secret.value) else {
            unusable += 1;
            continue;
        };
        for body in &bodies {
            let expected = scheme.algorithm.mac(&key, &scheme.content(body, ts, id_text));
            if let Some((_, written)) = given.iter().find(|(bytes, _)| constant_time_eq(bytes, &expected)) {
                return Ok(Verified {
                    message_id: Some(id.clone().unwrap_or_else(|| (*written).to_owned())),
                });
            }
        }
    }
    let count = given.len() + asymmetric.len();
    let mut explanation = format!(
        "no signature matched: {shape}; {tried}, {count} signature{} in header {}",
        if count == 1 { "" } else { "s" },
        scheme.header
    );
    if unusable > 0 {
        explanation.push_str(&format!(
            "; {unusable} secret{} not {} as the scheme reads keys",
            if unusable == 1 { " is" } else { "s are" },
            scheme.key_encoding.as_str()
        ));
    }
    if compact.is_some() {
        explanation.push_str("; the body re-written compactly did not match either");
    }
    Err(reject(Reason::BadSignature, explanation))
}
