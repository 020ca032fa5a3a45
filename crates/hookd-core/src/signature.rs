//! Standard Webhooks signing: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`,
//! with the key being the base64-decoded part of a `whsec_…` secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";

/// A new random secret: `whsec_` and 24 random bytes in base64.
pub fn generate_secret() -> String {
    let mut key = [0u8; 24];
    rand::rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The key bytes of a `whsec_…` secret, or why it is not one.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or_else(|| format!("a secret starts with `{SECRET_PREFIX}`"))?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| "the part after `whsec_` must be base64".to_owned())?;
    // The Standard Webhooks range.
    if !(24..=64).contains(&key.len()) {
        return Err("the secret key must be 24 to 64 bytes".to_owned());
    }
    Ok(key)
}

/// One `v1,<base64>` signature.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header value: one signature per secret, separated by spaces.
/// Secrets that are not valid `whsec_` values are skipped (they cannot be stored).
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .filter_map(|s| secret_key(s).ok())
        .map(|key| sign(&key, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How long a signed timestamp stays acceptable, either way (the Standard Webhooks default).
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the secret is not usable: {0}")]
    BadSecret(String),
    #[error("the timestamp `{0}` is not a whole number of seconds")]
    BadTimestamp(String),
    #[error("the timestamp is {0}s old, more than the {1}s allowed (a replay, or clocks apart)")]
    TooOld(i64, i64),
    #[error("the timestamp is {0}s in the future, more than the {1}s allowed")]
    InTheFuture(i64, i64),
    #[error("no v1 signature in the header matches the body (wrong secret, or the body was changed)")]
    NoMatch,
    #[error("no {0} header")]
    MissingHeader(&'static str),
}

/// The three Standard Webhooks headers of a request, as received (absent or empty: `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SignedHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

impl SignedHeaders<'_> {
    /// [`verify`] on these headers, naming the first one missing.
    pub fn verify(&self, secret: &str, body: &[u8], now: i64, tolerance: i64) -> Result<(), VerifyError> {
        fn present<'v>(value: Option<&'v str>, name: &'static str) -> Result<&'v str, VerifyError> {
            value
                .filter(|v| !v.trim().is_empty())
                .ok_or(VerifyError::MissingHeader(name))
        }
        let id = present(self.id, "webhook-id")?;
        let timestamp = present(self.timestamp, "webhook-timestamp")?;
        let signature = present(self.signature, "webhook-signature")?;
        verify(secret, id, timestamp, signature, body, now, tolerance)
    }
}

/// Verifies a Standard Webhooks signature header (one or more `v1,<base64>` separated by
/// spaces) against `secret`, with `now` and the tolerance in seconds.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), VerifyError> {
    let key = secret_key(secret).map_err(VerifyError::BadSecret)?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp(timestamp.to_owned()))?;
    if now - ts > tolerance {
        return Err(VerifyError::TooOld(now - ts, tolerance));
    }
    if ts - now > tolerance {
        return Err(VerifyError::InTheFuture(ts - now, tolerance));
    }
    let expected = sign(&key, id, ts, body);
    let matched = header
        .split(' ')
        .filter(|s| s.starts_with("v1,"))
        .any(|given| constant_time_eq(given.as_bytes(), expected.as_bytes()));
    if matched { Ok(()) } else { Err(VerifyError::NoMatch) }
}

/// Equality whose timing does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks specification.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn verification_names_what_is_wrong() {
        let secret = generate_secret();
        let header = signature_header([secret.as_str()], "msg_1", 1000, b"{}");
        assert_eq!(verify(&secret, "msg_1", "1000", &header, b"{}", 1010, 300), Ok(()));
        assert_eq!(
            verify(&secret, "msg_1", "1000", &header, b"{ }", 1010, 300),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&generate_secret(), "msg_1", "1000", &header, b"{}", 1010, 300),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&secret, "msg_1", "1000", &header, b"{}", 2000, 300),
            Err(VerifyError::TooOld(1000, 300))
        );
        assert!(matches!(
            verify(&secret, "msg_1", "soon", &header, b"{}", 1000, 300),
            Err(VerifyError::BadTimestamp(_))
        ));
    }

    #[test]
    fn generated_secrets_are_valid_and_rotation_signs_with_each_in_order() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        for secret in [&a, &b] {
            assert!(secret.starts_with("whsec_"), "{secret}");
            assert_eq!(secret_key(secret).unwrap().len(), 24, "24 random bytes");
        }
        let header = signature_header([a.as_str(), b.as_str()], "id", 1, b"{}");
        let signatures: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            signatures,
            [
                sign(&secret_key(&a).unwrap(), "id", 1, b"{}"),
                sign(&secret_key(&b).unwrap(), "id", 1, b"{}")
            ]
        );
        for secret in [&a, &b] {
            assert_eq!(
                verify(secret, "id", "1", &header, b"{}", 1, 0),
                Ok(()),
                "either secret verifies"
            );
        }
        assert_eq!(
            signature_header(["nope", a.as_str()], "id", 1, b"{}"),
            signatures[0],
            "a secret that is not one is skipped"
        );
        assert!(secret_key("nope").is_err());
        assert!(secret_key("whsec_!!!").is_err());
        assert!(
            secret_key(&format!("whsec_{}", STANDARD.encode([0u8; 23]))).is_err(),
            "23 bytes are too few"
        );
        assert!(secret_key(&format!("whsec_{}", STANDARD.encode([0u8; 64]))).is_ok());
        assert!(
            secret_key(&format!("whsec_{}", STANDARD.encode([0u8; 65]))).is_err(),
            "65 bytes are too many"
        );
    }

    #[test]
    fn the_default_tolerance_is_five_minutes_and_equality_sees_every_byte() {
        assert_eq!(DEFAULT_TOLERANCE_SECS, 300);
        assert!(constant_time_eq(b"ab", b"ab"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(
            !constant_time_eq(&[1, 1], &[0, 0]),
            "two differences that would cancel out"
        );
        assert!(!constant_time_eq(b"ab", b"ac"));
    }

    #[test]
    fn the_timestamp_tolerance_holds_to_the_second_both_ways() {
        let secret = generate_secret();
        let header = signature_header([secret.as_str()], "m", 1000, b"{}");
        let at = |now: i64| verify(&secret, "m", "1000", &header, b"{}", now, 300);
        assert_eq!(at(1300), Ok(()), "exactly the tolerance old");
        assert_eq!(at(1301), Err(VerifyError::TooOld(301, 300)));
        assert_eq!(at(700), Ok(()), "exactly the tolerance ahead");
        assert_eq!(at(699), Err(VerifyError::InTheFuture(301, 300)));
    }

    #[test]
    fn a_missing_header_is_named() {
        let secret = generate_secret();
        let header = signature_header([secret.as_str()], "m", 1000, b"{}");
        let all = SignedHeaders {
            id: Some("m"),
            timestamp: Some("1000"),
            signature: Some(&header),
        };
        assert_eq!(all.verify(&secret, b"{}", 1000, 300), Ok(()));
        for (headers, missing) in [
            (SignedHeaders { id: None, ..all }, "webhook-id"),
            (
                SignedHeaders {
                    timestamp: Some(" "),
                    ..all
                },
                "webhook-timestamp",
            ),
            (SignedHeaders { signature: None, ..all }, "webhook-signature"),
        ] {
            assert_eq!(
                headers.verify(&secret, b"{}", 1000, 300),
                Err(VerifyError::MissingHeader(missing))
            );
        }
    }
}
