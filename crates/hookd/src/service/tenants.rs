//! Workspaces and their API keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hookd_core::ValidationError;
use hookd_core::id::new_id;
use hookd_core::store::{ApiKey, Workspace, WorkspaceDeletion};
use hookd_core::validation::Fields;
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Service, ServiceError, ServiceResult};

/// The longest workspace name.
const MAX_NAME_LEN: usize = 200;

/// Characters of a key kept as its prefix: `hk_` and 6 of its 43 random ones (36 of 256 bits).
const PREFIX_LEN: usize = 9;

/// SHA-256 of a key, hex: what is stored for workspace keys and compared for the admin key.
pub fn key_hash(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key just made: the stored record, and the key itself, which is shown only now.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub record: ApiKey,
    pub key: String,
}

/// The `name` of a workspace body, required.
fn name_of(body: &Value) -> Result<String, ValidationError> {
    let fields = Fields::new(body, "")?;
    fields.deny_unknown(&["name"])?;
    Ok(fields.req_str("name", MAX_NAME_LEN)?.to_owned())
}

impl Service {
    /// The workspace `id`, remembered once found.
    pub async fn workspace(&self, id: &str) -> ServiceResult<Workspace> {
        self.inner
            .known
            .workspace(self.store(), id)
            .await?
            .ok_or(ServiceError::NotFound("workspace"))
    }

    /// The API key whose hash is `hash`, noting its use now; `None` when there is none.
    pub async fn authenticate(&self, hash: &str) -> ServiceResult<Option<ApiKey>> {
        let found = self.inner.known.api_key(self.store(), hash).await?;
        if let Some(key) = &found {
            self.inner.known.used(&self.inner.parts.store, key, self.now());
        }
        Ok(found)
    }

    pub async fn create_workspace(&self, body: &Value) -> ServiceResult<Workspace> {
        let workspace = Workspace {
            id: new_id("ws"),
            name: name_of(body)?,
            created_at: self.now(),
            offline_after: None,
        };
        self.store().create_workspace(&workspace).await?;
        Ok(workspace)
    }

    pub async fn list_workspaces(&self) -> ServiceResult<Vec<Workspace>> {
        Ok(self.store().list_workspaces().await?)
    }

    /// The workspace read afresh (the remembered one may carry a name another process changed).
    pub async fn read_workspace(&self, id: &str) -> ServiceResult<Workspace> {
        self.store()
            .get_workspace(id)
            .await?
            .ok_or(ServiceError::NotFound("workspace"))
    }

    /// Changes what `body` gives: `name`, `presence` (`{"offline_after": "5m"}`, or `null`
    /// for no presence events). Everything is checked before anything is written.
    pub async fn update_workspace(&self, id: &str, body: &Value) -> ServiceResult<Workspace> {
        let fields = Fields::new(body, "")?;
        fields.deny_unknown(&["name", "presence"])?;
        let name = fields
            .opt_str("name")?
            .map(|name| match name.trim().is_empty() {
                true => Err(fields.invalid("name", "`name` must not be empty")),
                false => fields.check_len("name", name, MAX_NAME_LEN).map(|()| name),
            })
            .transpose()?;
        let presence = match fields.value("presence") {
            None => None,
            Some(value) => Some(super::devices::offline_after(value)?),
        };
        if name.is_none() && presence.is_none() {
            return Err(ValidationError::new("invalid_value", "", "give `name`, `presence` or both").into());
        }
        let mut updated = self.read_workspace(id).await?;
        if let Some(name) = name {
            updated = self
                .store()
                .rename_workspace(id, name)
                .await?
                .ok_or(ServiceError::NotFound("workspace"))?;
        }
        if let Some(offline_after) = presence {
            updated = self
                .store()
                .set_offline_after(id, offline_after)
                .await?
                .ok_or(ServiceError::NotFound("workspace"))?;
        }
        self.inner.known.forget_all();
        Ok(updated)
    }

    /// Deletes the workspace and everything in it, when `body` names it again
    /// (`{"confirm": "<id>"}`).
    pub async fn delete_workspace(&self, id: &str, body: &Value) -> ServiceResult<WorkspaceDeletion> {
        let fields = Fields::new(body, "")?;
        fields.deny_unknown(&["confirm"])?;
        if fields.opt_str("confirm")? != Some(id) {
            return Err(ValidationError::new(
                "confirmation_required",
                "confirm",
                format!(
                    "deleting {id} deletes its webhooks, deliveries, records and keys for good: send {{\"confirm\": \"{id}\"}} to go ahead"
                ),
            )
            .into());
        }
        let deletion = self
            .store()
            .delete_workspace(id)
            .await?
            .ok_or(ServiceError::NotFound("workspace"))?;
        self.inner.known.forget_all();
        self.inner.doors.forget_all();
        self.webhooks_changed(id);
        tracing::warn!(workspace = %id, webhooks = deletion.webhooks, deliveries = deletion.deliveries, records = deletion.records, keys = deletion.keys, "workspace deleted");
        Ok(deletion)
    }

    /// A new API key for the workspace; the key itself is in the answer only.
    pub async fn create_key(&self, workspace_id: &str) -> ServiceResult<NewKey> {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let key = format!("hk_{}", URL_SAFE_NO_PAD.encode(secret));
        let record = ApiKey {
            id: new_id("key"),
            workspace_id: workspace_id.to_owned(),
            key_hash: key_hash(&key),
            prefix: key[..PREFIX_LEN].to_owned(),
            created_at: self.now(),
            last_used_at: None,
        };
        self.store().create_api_key(&record).await?;
        Ok(NewKey { record, key })
    }

    pub async fn list_keys(&self, workspace_id: &str) -> ServiceResult<Vec<ApiKey>> {
        Ok(self.store().list_api_keys(workspace_id).await?)
    }

    /// Revokes a key: refused from now on, by this process at once and by the others when the
    /// store tells them.
    pub async fn revoke_key(&self, workspace_id: &str, id: &str) -> ServiceResult<()> {
        if !self.store().revoke_api_key(workspace_id, id).await? {
            return Err(ServiceError::NotFound("key"));
        }
        self.inner.known.forget_all();
        tracing::info!(workspace = %workspace_id, key = %id, "API key revoked");
        Ok(())
    }
}
