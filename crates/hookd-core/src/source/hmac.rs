//! HMAC signatures of incoming requests, as configuration: which algorithm, how the key and the
//! signature are encoded, which header carries them in which format, and what was signed.
//! Every named sender (GitHub, Stripe, Slack, Shopify, Standard Webhooks, the robot site
//! manager) is one such configuration ([`HmacSpec::preset`]).

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::Scheme;
use crate::validation::{Fields, Problems, ValidationError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// How bytes are written as text: a key in the secret, a signature in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Raw,
    Hex,
    Base64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUnit {
    Seconds,
    Millis,
}

/// One HMAC scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacSpec {
    pub algorithm: Algorithm,
    /// How the secret gives the key: its bytes as written (`raw`), or hex or base64 of them
    /// (a `whsec_` prefix is dropped before base64).
    pub key_encoding: Encoding,
    /// How the signature is written in the header: hex or base64.
    pub encoding: Encoding,
    /// The header carrying the signature.
    pub header: String,
    /// The header's shape: entries separated by `separator`, each a fixed prefix then
    /// `{signature}` or `{timestamp}` (`sha256={signature}`, `t={timestamp},v1={signature}`).
    /// Several signature entries may be present; any one matching verifies.
    pub header_format: String,
    pub separator: String,
    /// What was signed: `{body}` (the raw bytes), `{timestamp}` and `{id}` placeholders.
    pub signed_content: String,
    /// A header carrying the timestamp, when the signature header does not.
    pub timestamp_header: Option<String>,
    pub timestamp_unit: TimestampUnit,
    /// A header carrying the message id, signed as `{id}` and remembered against replays.
    pub id_header: Option<String>,
}

pub(super) const FIELDS: [&str; 9] = [
    "algorithm",
    "key_encoding",
    "encoding",
    "header_format",
    "separator",
    "signed_content",
    "timestamp_header",
    "timestamp_unit",
    "id_header",
];

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha512]
            .into_iter()
            .find(|a| a.as_str() == s)
    }

    /// The MAC of `parts` (concatenated) under `key`.
    pub fn mac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Self::Sha1 => run::<Hmac<Sha1>>(key, parts),
            Self::Sha256 => run::<Hmac<Sha256>>(key, parts),
            Self::Sha512 => run::<Hmac<Sha512>>(key, parts),
        }
    }
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Hex => "hex",
            Self::Base64 => "base64",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Raw, Self::Hex, Self::Base64]
            .into_iter()
            .find(|e| e.as_str() == s)
    }

    /// The bytes `text` stands for, or `None` when it is not in this encoding.
    pub fn decode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Self::Raw => Some(text.as_bytes().to_vec()),
            Self::Hex => hex::decode(text.trim()).ok(),
            Self::Base64 => {
                let text = text.trim();
                STANDARD.decode(text.strip_prefix("whsec_").unwrap_or(text)).ok()
            }
        }
    }

    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            Self::Raw => String::from_utf8_lossy(bytes).into_owned(),
            Self::Hex => hex::encode(bytes),
            Self::Base64 => STANDARD.encode(bytes),
        }
    }
}

impl TimestampUnit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Seconds => "s",
            Self::Millis => "ms",
        }
    }

    /// A timestamp in this unit, in milliseconds.
    pub fn to_millis(self, value: i64) -> i64 {
        match self {
            Self::Seconds => value.saturating_mul(1000),
            Self::Millis => value,
        }
    }
}

/// The presets, as the JSON a custom `hmac` source would write.
fn preset_json(scheme: Scheme) -> Option<Value> {
    Some(match scheme {
        Scheme::Github => json!({
            "header": "X-Hub-Signature-256", "algorithm": "sha256", "key_encoding": "raw", "encoding": "hex",
            "header_format": "sha256={signature}", "signed_content": "{body}", "id_header": "X-GitHub-Delivery",
        }),
        Scheme::Stripe => json!({
            "header": "Stripe-Signature", "algorithm": "sha256", "key_encoding": "raw", "encoding": "hex",
            "header_format": "t={timestamp},v1={signature}", "signed_content": "{timestamp}.{body}", "timestamp_unit": "s",
        }),
        Scheme::Slack => json!({
            "header": "X-Slack-Signature", "algorithm": "sha256", "key_encoding": "raw", "encoding": "hex",
            "header_format": "v0={signature}", "signed_content": "v0:{timestamp}:{body}",
            "timestamp_header": "X-Slack-Request-Timestamp", "timestamp_unit": "s",
        }),
        Scheme::Shopify => json!({
            "header": "X-Shopify-Hmac-Sha256", "algorithm": "sha256", "key_encoding": "raw", "encoding": "base64",
            "header_format": "{signature}", "signed_content": "{body}", "id_header": "X-Shopify-Webhook-Id",
        }),
        Scheme::StandardWebhooks => json!({
            "header": "webhook-signature", "algorithm": "sha256", "key_encoding": "base64", "encoding": "base64",
            "header_format": "v1,{signature}", "separator": " ", "signed_content": "{id}.{timestamp}.{body}",
            "timestamp_header": "webhook-timestamp", "timestamp_unit": "s", "id_header": "webhook-id",
        }),
        Scheme::Orbit => json!({
            "header": "Orbit-Signature", "algorithm": "sha256", "key_encoding": "hex", "encoding": "hex",
            "header_format": "t={timestamp},v1={signature}", "signed_content": "{timestamp}.{body}", "timestamp_unit": "ms",
        }),
        _ => return None,
    })
}

impl HmacSpec {
    /// The configuration of a named sender's scheme; `None` for schemes that are not HMAC.
    /// Read once, then shared: every request to a source verifies with it.
    pub fn preset(scheme: Scheme) -> Option<&'static Self> {
        static PRESETS: LazyLock<Vec<(Scheme, HmacSpec)>> = LazyLock::new(|| {
            Scheme::ALL
                .into_iter()
                .filter_map(|scheme| {
                    let json = preset_json(scheme)?;
                    let header = json["header"].as_str().unwrap_or_default();
                    Some((
                        scheme,
                        HmacSpec::parse(&json, header, "").expect("the presets are valid"),
                    ))
                })
                .collect()
        });
        PRESETS.iter().find(|(s, _)| *s == scheme).map(|(_, spec)| spec)
    }

    /// Reads an `hmac` object (the source's `header` names the signature header).
    pub fn parse(value: &Value, header: &str, prefix: &str) -> Result<Self, ValidationError> {
        let f = Fields::new(value, prefix)?;
        let allowed: Vec<&str> = FIELDS.iter().copied().chain(["header"]).collect();
        f.deny_unknown(&allowed)?;
        let mut problems = Problems::default();
        let choice = |key: &str, default: &str| f.opt_str(key).map(|v| v.unwrap_or(default).to_owned());
        let algorithm = problems.check(choice("algorithm", "sha256").and_then(|s| {
            Algorithm::parse(&s).ok_or_else(|| f.invalid("algorithm", "`algorithm` is one of sha1, sha256, sha512"))
        }));
        let key_encoding = problems.check(choice("key_encoding", "raw").and_then(|s| {
            Encoding::parse(&s).ok_or_else(|| f.invalid("key_encoding", "`key_encoding` is one of raw, hex, base64"))
        }));
        let encoding = problems.check(choice("encoding", "hex").and_then(|s| match Encoding::parse(&s) {
            Some(e @ (Encoding::Hex | Encoding::Base64)) => Ok(e),
            _ => Err(f.invalid("encoding", "`encoding` is hex or base64")),
        }));
        let header_format = problems.check(choice("header_format", "{signature}").and_then(|s| {
            if s.matches("{signature}").count() == 1 {
                Ok(s)
            } else {
                Err(f.invalid(
                    "header_format",
                    "`header_format` holds `{signature}` once, e.g. \"sha256={signature}\"",
                ))
            }
        }));
        let separator = problems.check(choice("separator", ","));
        let signed_content = problems.check(choice("signed_content", "{body}").and_then(|s| {
            if s.contains("{body}") {
                Ok(s)
            } else {
                Err(f.invalid(
                    "signed_content",
                    "`signed_content` holds `{body}`, e.g. \"{timestamp}.{body}\"",
                ))
            }
        }));
        let timestamp_header = problems.check(f.opt_str("timestamp_header").map(|v| v.map(str::to_owned)));
        let timestamp_unit = problems.check(choice("timestamp_unit", "s").and_then(|s| match s.as_str() {
            "s" => Ok(TimestampUnit::Seconds),
            "ms" => Ok(TimestampUnit::Millis),
            _ => Err(f.invalid("timestamp_unit", "`timestamp_unit` is s or ms")),
        }));
        let id_header = problems.check(f.opt_str("id_header").map(|v| v.map(str::to_owned)));
        if header.trim().is_empty() {
            problems.add(ValidationError::new(
                "missing_field",
                "header",
                "an `hmac` source names its signature header in `header`",
            ));
        }
        if let (Some(format), Some(content), Some(ts_header)) = (&header_format, &signed_content, &timestamp_header)
            && content.contains("{timestamp}")
            && !format.contains("{timestamp}")
            && ts_header.is_none()
        {
            problems.add(f.invalid(
                "signed_content",
                "`signed_content` holds `{timestamp}` but neither `header_format` nor `timestamp_header` gives one",
            ));
        }
        let spec = (|| {
            Some(Self {
                algorithm: algorithm?,
                key_encoding: key_encoding?,
                encoding: encoding?,
                header: header.to_owned(),
                header_format: header_format?,
                separator: separator?,
                signed_content: signed_content?,
                timestamp_header: timestamp_header?,
                timestamp_unit: timestamp_unit?,
                id_header: id_header?,
            })
        })();
        problems.and(spec)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "algorithm": self.algorithm.as_str(),
            "key_encoding": self.key_encoding.as_str(),
            "encoding": self.encoding.as_str(),
            "header_format": self.header_format,
            "separator": self.separator,
            "signed_content": self.signed_content,
            "timestamp_header": self.timestamp_header,
            "timestamp_unit": self.timestamp_unit.as_str(),
            "id_header": self.id_header,
        })
    }

    /// Whether a timestamp is signed (and so checked against the tolerance).
    pub fn is_timestamped(&self) -> bool {
        self.signed_content.contains("{timestamp}") || self.header_format.contains("{timestamp}")
    }

    /// Splits a signature header by [`HmacSpec::header_format`]: the signatures (as written)
    /// and the timestamp, if the header carries one.
    pub fn read_header<'h>(&self, value: &'h str) -> (Vec<&'h str>, Option<&'h str>) {
        let entries: Vec<(&str, &str)> = self
            .header_format
            .split(self.separator.as_str())
            .filter_map(|entry| {
                let open = entry.find('{')?;
                let name = &entry[open..];
                Some((&entry[..open], name))
            })
            .collect();
        let mut signatures = Vec::new();
        let mut timestamp = None;
        let pieces: Vec<&str> = if entries.len() == 1 && entries[0].0.is_empty() {
            vec![value.trim()]
        } else {
            value.split(self.separator.as_str()).map(str::trim).collect()
        };
        for piece in pieces {
            // The longest matching prefix, so `v1=` is not taken for `v=`.
            let matched = entries
                .iter()
                .filter(|(prefix, _)| piece.starts_with(prefix))
                .max_by_key(|(prefix, _)| prefix.len());
            match matched {
                Some((prefix, "{signature}")) => signatures.push(&piece[prefix.len()..]),
                Some((prefix, "{timestamp}")) => timestamp = Some(&piece[prefix.len()..]),
                _ => {}
            }
        }
        signatures.retain(|s| !s.is_empty());
        (signatures, timestamp)
    }

    /// The signed content for this request, as the pieces to feed the MAC in order.
    pub fn content<'a>(&'a self, body: &'a [u8], timestamp: &'a str, id: &'a str) -> Vec<&'a [u8]> {
        let mut parts: Vec<&'a [u8]> = Vec::new();
        let mut rest: &'a str = &self.signed_content;
        while let Some(open) = rest.find('{') {
            let (literal, tail) = rest.split_at(open);
            parts.push(literal.as_bytes());
            let close = tail.find('}').map_or(tail.len(), |c| c + 1);
            parts.push(match &tail[..close] {
                "{body}" => body,
                "{timestamp}" => timestamp.as_bytes(),
                "{id}" => id.as_bytes(),
                other => other.as_bytes(),
            });
            rest = &tail[close..];
        }
        parts.push(rest.as_bytes());
        parts
    }
}
