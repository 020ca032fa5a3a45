//! A webhook row's sealed columns: what is stored of a webhook, encrypted when keys are set.

use std::borrow::Cow;

use super::{StoreError, StoreResult};
use crate::seal::Sealer;
use crate::webhook::{PreviousSecret, Webhook, WebhookSpec};

/// A webhook's stored columns: its spec (JSON), its secret and its previous secrets (JSON),
/// each sealed when encryption keys are configured. Shared by every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWebhook {
    pub spec: String,
    pub secret: String,
    pub previous_secrets: String,
}

impl StoredWebhook {
    pub fn seal(webhook: &Webhook, sealer: &Sealer) -> StoreResult<Self> {
        let previous = serde_json::to_string(&webhook.previous_secrets).map_err(|e| StoreError::Other(e.into()))?;
        Ok(Self::sealed(
            &webhook.id,
            sealer,
            &webhook.spec.to_stored().to_string(),
            &webhook.secret,
            &previous,
        ))
    }

    fn sealed(id: &str, sealer: &Sealer, spec: &str, secret: &str, previous: &str) -> Self {
        Self {
            spec: sealer.seal(&context(id, "spec"), spec),
            secret: sealer.seal(&context(id, "secret"), secret),
            previous_secrets: sealer.seal(&context(id, "previous_secrets"), previous),
        }
    }

    /// The spec, secret and previous secrets of webhook `id`.
    pub fn open(&self, id: &str, sealer: &Sealer) -> StoreResult<(WebhookSpec, String, Vec<PreviousSecret>)> {
        let (spec, secret, previous) = self.open_text(id, sealer)?;
        let spec: serde_json::Value = serde_json::from_str(&spec).map_err(|e| StoreError::corrupt("webhook", e))?;
        let spec = WebhookSpec::from_stored(&spec).map_err(|e| StoreError::corrupt("webhook", e))?;
        let previous = serde_json::from_str(&previous).map_err(|e| StoreError::corrupt("webhook secrets", e))?;
        Ok((spec, secret.into_owned(), previous))
    }

    fn open_text<'a>(&'a self, id: &str, sealer: &Sealer) -> StoreResult<(Cow<'a, str>, Cow<'a, str>, Cow<'a, str>)> {
        let open = |column: &str, value: &'a str| {
            sealer
                .open(value, || context(id, column))
                .map_err(|e| StoreError::corrupt(&format!("webhook {id}'s {column}"), e))
        };
        Ok((
            open("spec", &self.spec)?,
            open("secret", &self.secret)?,
            open("previous_secrets", &self.previous_secrets)?,
        ))
    }

    /// The columns in the form `sealer` writes (sealed with its current key, or plain), or
    /// `None` when they already are. An error when a value does not open with the keys given.
    pub fn resealed(&self, id: &str, sealer: &Sealer) -> StoreResult<Option<Self>> {
        if [&self.spec, &self.secret, &self.previous_secrets]
            .iter()
            .all(|v| sealer.is_current(v))
        {
            return Ok(None);
        }
        let (spec, secret, previous) = self.open_text(id, sealer)?;
        Ok(Some(Self::sealed(id, sealer, &spec, &secret, &previous)))
    }
}

fn context(id: &str, column: &str) -> String {
    format!("webhook/{id}/{column}")
}
