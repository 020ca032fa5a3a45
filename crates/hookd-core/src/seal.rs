//! Encryption of secrets at rest: webhooks' signing secrets, tokens, headers and URLs are
//! sealed with AES-256-GCM before they are stored, when keys are configured.
//!
//! A sealed value is text: `sealed:v1:<key id>:<base64 of nonce ‖ ciphertext>`. The key id (the
//! first 8 hex digits of the key's SHA-256) says which configured key opens it, so keys can be
//! rotated: the first key seals, every key opens. The associated data binds a value to its row
//! and column, so a sealed value copied into another row does not open. Values stored before
//! keys were configured are plain JSON and read as they are; [`Sealer::is_current`] tells a
//! backend what to re-seal at start.

use std::borrow::Cow;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

const PREFIX: &str = "sealed:v1:";
const NONCE_LEN: usize = 12;
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("encryption key {index}: {reason}")]
    BadKey { index: usize, reason: String },
    #[error("it is encrypted with key {0}, which is not configured (secrets.encryption_keys)")]
    UnknownKey(String),
    #[error("it is encrypted, but no encryption key is configured (secrets.encryption_keys)")]
    NoKeys,
    #[error("it does not decrypt with key {0}: damaged, or sealed for another row")]
    Damaged(String),
}

struct Key {
    id: String,
    cipher: Aes256Gcm,
}

/// The configured encryption keys. Without keys it stores values as they are.
#[derive(Default)]
pub struct Sealer {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Sealer").field("key_ids", &ids).finish()
    }
}

impl Sealer {
    /// No encryption: values are stored as they are.
    pub fn none() -> Self {
        Self::default()
    }

    /// Keys as base64 text (32 bytes each); the first seals, all open.
    pub fn from_base64(keys: &[String]) -> Result<Self, SealError> {
        let keys = keys
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let bytes = STANDARD.decode(text.trim()).map_err(|_| SealError::BadKey {
                    index,
                    reason: "not base64 (generate one with `hookd secrets generate-key`)".into(),
                })?;
                if bytes.len() != KEY_LEN {
                    return Err(SealError::BadKey {
                        index,
                        reason: format!("{} bytes, but a key is {KEY_LEN} bytes", bytes.len()),
                    });
                }
                Ok(Key::new(&bytes))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { keys })
    }

    /// A new random key, as base64.
    pub fn generate_key() -> String {
        STANDARD.encode(rand::random::<[u8; KEY_LEN]>())
    }

    /// The id of the key that seals, if any.
    pub fn current_key_id(&self) -> Option<&str> {
        self.keys.first().map(|k| k.id.as_str())
    }

    /// Seals `plain` for the place named by `context` (e.g. `webhook/wh_…/secret`).
    pub fn seal(&self, context: &str, plain: &str) -> String {
        let Some(key) = self.keys.first() else {
            return plain.to_owned();
        };
        let nonce: [u8; NONCE_LEN] = rand::random();
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: context.as_bytes(),
        };
        let ciphertext = key
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        format!("{PREFIX}{}:{}", key.id, STANDARD.encode(sealed))
    }

    /// Opens a value [`Sealer::seal`] made for the same context; plain values pass through
    /// as they are (borrowed, and without building the context).
    pub fn open<'a>(&self, stored: &'a str, context: impl FnOnce() -> String) -> Result<Cow<'a, str>, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(Cow::Borrowed(stored));
        };
        let (id, data) = rest.split_once(':').unwrap_or((rest, ""));
        if self.keys.is_empty() {
            return Err(SealError::NoKeys);
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let damaged = || SealError::Damaged(id.to_owned());
        let bytes = STANDARD.decode(data).map_err(|_| damaged())?;
        if bytes.len() < NONCE_LEN {
            return Err(damaged());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let context = context();
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| damaged())?;
        String::from_utf8(plain).map(Cow::Owned).map_err(|_| damaged())
    }

    /// Whether a stored value is in the form this sealer writes: sealed with the current key,
    /// or plain when there is no key.
    pub fn is_current(&self, stored: &str) -> bool {
        match self.current_key_id() {
            None => !stored.starts_with(PREFIX),
            Some(id) => stored
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.split_once(':'))
                .is_some_and(|(key, _)| key == id),
        }
    }
}

impl Key {
    fn new(bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            id,
            cipher: Aes256Gcm::new_from_slice(bytes).expect("the length was checked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(keys: &[&str]) -> Sealer {
        Sealer::from_base64(&keys.iter().map(|k| k.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_with_its_context_and_hides_the_plaintext() {
        let key = Sealer::generate_key();
        let s = sealer(&[&key]);
        let sealed = s.seal("webhook/wh_1/secret", "whsec_topsecret");
        assert!(sealed.starts_with("sealed:v1:"), "{sealed}");
        assert!(!sealed.contains("topsecret"));
        assert_ne!(
            sealed,
            s.seal("webhook/wh_1/secret", "whsec_topsecret"),
            "a fresh nonce each time"
        );
        assert_eq!(
            s.open(&sealed, || "webhook/wh_1/secret".into()).unwrap(),
            "whsec_topsecret"
        );
        assert!(matches!(
            s.open(&sealed, || "webhook/wh_2/secret".into()),
            Err(SealError::Damaged(_))
        ));
        assert!(s.is_current(&sealed));
    }

    #[test]
    fn keys_rotate_the_first_seals_and_every_key_opens() {
        let (old, new) = (Sealer::generate_key(), Sealer::generate_key());
        let sealed_by_old = sealer(&[&old]).seal("c", "v");
        let rotated = sealer(&[&new, &old]);
        assert_eq!(rotated.open(&sealed_by_old, || "c".into()).unwrap(), "v");
        assert!(!rotated.is_current(&sealed_by_old));
        assert!(matches!(
            sealer(&[&new]).open(&sealed_by_old, || "c".into()),
            Err(SealError::UnknownKey(_))
        ));
        assert_eq!(
            Sealer::none().open(&sealed_by_old, || "c".into()),
            Err(SealError::NoKeys)
        );
    }

    #[test]
    fn plain_values_pass_through_and_are_current_only_without_keys() {
        let plain = r#"{"url":"https://example.com"}"#;
        assert_eq!(Sealer::none().seal("c", plain), plain);
        assert_eq!(
            sealer(&[&Sealer::generate_key()]).open(plain, || "c".into()).unwrap(),
            plain
        );
        assert!(Sealer::none().is_current(plain));
        assert!(!sealer(&[&Sealer::generate_key()]).is_current(plain));
    }

    #[test]
    fn bad_keys_and_damaged_values_are_errors() {
        assert!(matches!(
            Sealer::from_base64(&["not base64!".into()]),
            Err(SealError::BadKey { index: 0, .. })
        ));
        let short = STANDARD.encode([1u8; 16]);
        let err = Sealer::from_base64(&[short]).unwrap_err().to_string();
        assert!(err.contains("16 bytes"), "{err}");
        let s = sealer(&[&Sealer::generate_key()]);
        let mut sealed = s.seal("c", "value");
        sealed.pop();
        assert!(s.open(&sealed, || "c".into()).is_err());
        let id = s.current_key_id().unwrap();
        assert!(s.open(&format!("sealed:v1:{id}:AAAA"), || "c".into()).is_err());
    }
}
