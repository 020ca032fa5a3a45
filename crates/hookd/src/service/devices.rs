//! Presence as the doors see it: a workspace's `presence` setting and the devices it heard from.

use std::time::Duration;

use hookd_core::clock::Millis;
use hookd_core::store::{Device, DeviceQuery};
use hookd_core::validation::{Fields, ValidationError};
use serde_json::Value;

use super::{Service, ServiceResult};

/// The shortest and longest silence a workspace may set.
const OFFLINE_AFTER: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30 * 24 * 3600));

/// A workspace's `presence` body: `{"offline_after": "5m"}`; `null` (or `offline_after:
/// null`) turns presence events off.
pub(super) fn offline_after(value: &Value) -> Result<Option<Millis>, ValidationError> {
    if value.is_null() {
        return Ok(None);
    }
    let fields = Fields::new(value, "presence")?;
    fields.deny_unknown(&["offline_after"])?;
    let Some(text) = fields.opt_str("offline_after")? else {
        return Ok(None);
    };
    let after = hookd_core::duration::parse(text)
        .map_err(|m| ValidationError::new("invalid_duration", "presence.offline_after", m))?;
    let (min, max) = OFFLINE_AFTER;
    if after < min || after > max {
        return Err(fields.invalid(
            "offline_after",
            format!(
                "`presence.offline_after` must be between {} and {}",
                hookd_core::duration::format(min),
                hookd_core::duration::format(max)
            ),
        ));
    }
    Ok(Some(after.as_millis() as Millis))
}

impl Service {
    /// The workspace's devices by id, as `query` asks.
    pub async fn list_devices(&self, workspace_id: &str, query: &DeviceQuery) -> ServiceResult<Vec<Device>> {
        Ok(self.store().list_devices(workspace_id, query).await?)
    }
}
