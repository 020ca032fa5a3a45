//! The wire types of the API: what requests carry and responses return. The server renders
//! its answers with them, the client ([`crate::client`]) reads them, and the OpenAPI document
//! is generated from them, so the three cannot drift apart.
//!
//! Request bodies are still validated field by field by the server (for errors that name the
//! field); the `…In` types here describe them and are what the client sends.
//! # Layout
//!
//! - this module: errors, lists, workspaces and keys, health, what ingest answers;
//! - `webhooks`: webhook bodies and answers, secrets, replay and the test send;
//! - `records`: data points and events, and the ingest bodies' schemas;
//! - `deliveries`: the delivery log and its attempts;
//! - `sources`: inbound doors and their request log.

mod deliveries;
mod records;
mod sources;
mod webhooks;

use hookd_core::store;
use hookd_core::timefmt::rfc3339;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use deliveries::*;
pub use records::*;
pub use sources::*;
pub use webhooks::*;

/// Every error: a stable code, a sentence for people, and the offending field when there is one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `invalid_url`, `missing_field`, `not_found`, …
    #[schema(example = "invalid_url")]
    pub code: String,
    #[schema(example = "the URL scheme must be http or https, not `ftp`")]
    pub message: String,
    /// The field at fault; in an array body, prefixed by the record's index (`[1].device_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "url")]
    pub field: Option<String>,
    /// When the body had several bad fields: every one of them (up to 50), this one first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
}

/// One of several problems of a request body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorItem {
    #[schema(example = "missing_field")]
    pub code: String,
    pub message: String,
    #[schema(example = "[1].device_id")]
    pub field: String,
}

/// A list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceIn {
    /// A name for people, 1–200 characters.
    #[schema(example = "acme", min_length = 1, max_length = 200)]
    pub name: String,
}

/// A workspace delete must say which workspace it means to delete, with everything in it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceDeleteIn {
    /// The id of the workspace being deleted, again.
    #[schema(example = "ws_01J9Z3K2M4N5P6Q7R8S9T0V1W2")]
    pub confirm: String,
}

/// What deleting a workspace removed with it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceDeleted {
    pub deleted: String,
    pub webhooks: u64,
    pub deliveries: u64,
    pub records: u64,
    pub keys: u64,
}

/// What `DELETE …/keys/{key}` revoked (the client's answer; the route answers 204).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revoked {
    pub revoked: String,
}

/// A workspace API key as listed: never the key itself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    #[schema(example = "key_01J9Z3K2M4N5P6Q7R8S9T0V1W2")]
    pub id: String,
    pub workspace_id: String,
    /// The key's first characters, to tell keys apart (empty for keys made before hookd
    /// kept prefixes).
    #[schema(example = "hk_3J9xQ")]
    pub prefix: String,
    pub created_at: String,
    /// When a request last used it, to the minute; null if never.
    pub last_used_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Workspace {
    #[schema(example = "ws_01J9Z3K2M4N5P6Q7R8S9T0V1W2")]
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub presence: Presence,
}

/// A workspace's presence setting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    /// A device silent for longer is offline (`device.offline`); its next record brings it
    /// back (`device.online`). 1s–30 days; null: no presence events.
    #[schema(example = "5m")]
    pub offline_after: Option<String>,
}

/// A workspace change: its name, its presence, or both.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspacePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "acme", min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// `{"offline_after": "5m"}`; null turns presence events off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<Presence>,
}

/// A device the workspace heard from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Device {
    #[schema(example = "dev-7")]
    pub device_id: String,
    pub fleet_id: Option<String>,
    /// `online` or `offline`; without `presence.offline_after` only its own `disconnection`
    /// events and a sweep change it, and no sweep runs, so it stays as first seen.
    #[schema(example = "online")]
    pub state: String,
    /// When hookd last heard from it (to the second).
    pub last_seen: String,
    /// When it entered its state.
    pub since: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DevicePage {
    /// By device id.
    pub data: Vec<Device>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl From<&store::Device> for Device {
    fn from(d: &store::Device) -> Self {
        Self {
            device_id: d.device_id.clone(),
            fleet_id: d.fleet_id.clone(),
            state: d.state.as_str().to_owned(),
            last_seen: rfc3339(d.last_seen),
            since: rfc3339(d.since),
        }
    }
}

/// A new API key. `key` is shown here once; only its hash is stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyCreated {
    pub id: String,
    pub workspace_id: String,
    #[schema(example = "hk_3J9x…")]
    pub key: String,
    /// The key's first characters, as `GET …/keys` lists them.
    pub prefix: String,
    pub note: String,
}

/// Records accepted: on disk, with their deliveries.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    #[schema(example = json!(["rec_01J9Z3K2M4N5P6Q7R8S9T0V1W2"]))]
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

// ---- Rendering domain objects -------------------------------------------------------------

impl From<&store::ApiKey> for ApiKey {
    fn from(key: &store::ApiKey) -> Self {
        Self {
            id: key.id.clone(),
            workspace_id: key.workspace_id.clone(),
            prefix: key.prefix.clone(),
            created_at: rfc3339(key.created_at),
            last_used_at: key.last_used_at.map(rfc3339),
        }
    }
}

impl From<&store::Workspace> for Workspace {
    fn from(ws: &store::Workspace) -> Self {
        Self {
            id: ws.id.clone(),
            name: ws.name.clone(),
            created_at: rfc3339(ws.created_at),
            presence: Presence {
                offline_after: ws
                    .offline_after
                    .map(|ms| hookd_core::duration::format(std::time::Duration::from_millis(ms.max(0) as u64))),
            },
        }
    }
}
