//! The devices a commit hears from, for presence: each record's `device_id`, what it says
//! (its own `connection` / `disconnection` event, or any other record), and when.

use std::collections::HashMap;

use hookd_core::clock::Millis;
use hookd_core::record::{Kind, RecordIn};
use hookd_core::store::{DeviceSeen, Heard};

use crate::planner::Origin;

/// A device's ordinary records are written at most this often: its last-seen time is kept to
/// the second, not a write per record.
const REFRESH: Millis = 1000;
/// Devices remembered; past it the memory starts afresh.
const REMEMBERED: usize = 100_000;

/// What the committer wrote of each device lately, by workspace and device (looked up
/// without allocating: this runs for every record).
#[derive(Default)]
pub(super) struct Written {
    recent: HashMap<String, HashMap<String, (Millis, Heard)>>,
    remembered: usize,
}

impl Written {
    /// The devices `records` of `workspace` were heard from at `now`, leaving out a device
    /// whose ordinary record was written less than [`REFRESH`] ago. Records hookd made itself
    /// say nothing of a device.
    pub(super) fn heard(
        &mut self,
        workspace: &str,
        origin: &Origin,
        records: &[RecordIn],
        now: Millis,
    ) -> Vec<DeviceSeen> {
        if matches!(origin, Origin::System { .. } | Origin::Presence) {
            return Vec::new();
        }
        if self.remembered > REMEMBERED {
            self.recent.clear();
            self.remembered = 0;
        }
        let mut seen = Vec::new();
        for record in records {
            let Some(device) = record.device_id() else { continue };
            let heard = match (record.kind, record.event_type()) {
                (Kind::Event, Some("connection")) => Heard::Connection,
                (Kind::Event, Some("disconnection")) => Heard::Disconnection,
                _ => Heard::Record,
            };
            let devices = match self.recent.get_mut(workspace) {
                Some(devices) => devices,
                None => self.recent.entry(workspace.to_owned()).or_default(),
            };
            match devices.get_mut(device) {
                Some((at, Heard::Record)) if heard == Heard::Record && now - *at < REFRESH => continue,
                Some(written) => *written = (now, heard),
                None => {
                    devices.insert(device.to_owned(), (now, heard));
                    self.remembered += 1;
                }
            }
            seen.push(DeviceSeen {
                device_id: device.to_owned(),
                fleet_id: record.fleet_id().map(str::to_owned),
                at: now,
                heard,
            });
        }
        seen
    }
}

/// Whether any of `seen` decides a device's state at once (a connection or disconnection).
pub(super) fn decisive(seen: &[DeviceSeen]) -> bool {
    seen.iter().any(|d| d.heard != Heard::Record)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_chatty_device_is_written_once_a_second_and_its_connection_events_always() {
        let mut written = Written::default();
        let point = RecordIn::data_point("dev-1", "t", json!(1));
        let gone = RecordIn::device_event("disconnection", "dev-1", None, json!({}));
        assert_eq!(
            written
                .heard("ws", &Origin::Api, &[point.clone(), point.clone()], 0)
                .len(),
            1
        );
        assert!(
            written
                .heard("ws", &Origin::Api, std::slice::from_ref(&point), 500)
                .is_empty()
        );
        let seen = written.heard("ws", &Origin::Api, &[gone], 600);
        assert_eq!(seen[0].heard, Heard::Disconnection);
        assert!(decisive(&seen));
        assert_eq!(
            written
                .heard("ws", &Origin::Api, std::slice::from_ref(&point), 700)
                .len(),
            1,
            "back after a disconnection"
        );
        assert_eq!(
            written
                .heard("ws", &Origin::Api, std::slice::from_ref(&point), 1800)
                .len(),
            1,
            "a second later"
        );
        assert!(written.heard("ws", &Origin::Presence, &[point], 9000).is_empty());
    }
}
