//! Standard Webhooks' asymmetric signatures (`v1a`): ed25519 over the same signed content as
//! `v1`, verified with the sender's public key (`whpk_<base64>`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};

pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// The public key a `whpk_` secret holds; `None` for any other secret.
pub(super) fn public_key(secret: &str) -> Option<VerifyingKey> {
    let bytes = STANDARD.decode(secret.strip_prefix(PUBLIC_KEY_PREFIX)?).ok()?;
    VerifyingKey::from_bytes(&bytes.try_into().ok()?).ok()
}

/// The `v1a,<base64>` entries of a `webhook-signature` header, decoded, each with its text.
pub(super) fn signatures(header: &str) -> Vec<(Signature, &str)> {
    header
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1a,"))
        .filter_map(|text| {
            let bytes: [u8; 64] = STANDARD.decode(text).ok()?.try_into().ok()?;
            Some((Signature::from_bytes(&bytes), text))
        })
        .collect()
}

/// The first of `signatures` that `key` made of `content` (its pieces in order).
pub(super) fn matching<'h>(
    key: &VerifyingKey,
    signatures: &[(Signature, &'h str)],
    content: &[&[u8]],
) -> Option<&'h str> {
    let message = content.concat();
    signatures
        .iter()
        .find(|(signature, _)| key.verify_strict(&message, signature).is_ok())
        .map(|(_, text)| *text)
}
