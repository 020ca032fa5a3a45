//! A webhook's own TLS settings: the CA it trusts, its client identity, whether it verifies.

use serde_json::{Value, json};

use crate::validation::{Fields, ValidationError};

/// The largest PEM text a webhook's `tls` may hold, per field.
const MAX_PEM_LEN: usize = 64 * 1024;

/// Every field of a webhook's `tls`.
pub const TLS_FIELDS: [&str; 4] = ["ca", "client_cert", "client_key", "verify"];

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

    pub(super) fn parse(value: Option<&Value>) -> Result<Self, ValidationError> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(Self::default());
        };
        let f = Fields::new(value, "tls")?;
        f.deny_unknown(&TLS_FIELDS)?;
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

    pub(super) fn to_json(&self) -> Value {
        json!({
            "ca": self.ca,
            "client_cert": self.client_cert,
            "client_key": self.client_key,
            "verify": !self.skip_verify,
        })
    }
}
