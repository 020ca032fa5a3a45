//! Presence: the devices a workspace hears from, and the changes of their state a sweep finds.

use crate::clock::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    Online,
    Offline,
}

impl DeviceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "online" => Some(Self::Online),
            "offline" => Some(Self::Offline),
            _ => None,
        }
    }
}

/// What a device sent last: its own `connection` / `disconnection` events decide its state at
/// once; any other record says it is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    Record,
    Connection,
    Disconnection,
}

impl Heard {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Record => "record",
            Self::Connection => "connection",
            Self::Disconnection => "disconnection",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "record" => Some(Self::Record),
            "connection" => Some(Self::Connection),
            "disconnection" => Some(Self::Disconnection),
            _ => None,
        }
    }
}

/// A device heard from, written with the records that say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSeen {
    pub device_id: String,
    pub fleet_id: Option<String>,
    pub at: Millis,
    pub heard: Heard,
}

/// A device as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub workspace_id: String,
    pub device_id: String,
    pub fleet_id: Option<String>,
    pub state: DeviceState,
    pub last_seen: Millis,
    /// When it entered its state.
    pub since: Millis,
    pub heard: Heard,
}

/// Which devices to list: by state and fleet, after a device id (the cursor), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct DeviceQuery {
    pub state: Option<DeviceState>,
    pub fleet_id: Option<String>,
    pub after: Option<String>,
    pub limit: usize,
}

/// Why a device changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceReason {
    /// Silent for longer than the workspace's `presence.offline_after`.
    Silence,
    /// Its own `disconnection` event.
    Disconnection,
    /// Its own `connection` event.
    Connection,
    /// Any other record after it went offline.
    Record,
}

impl PresenceReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Silence => "silence",
            Self::Disconnection => "disconnection",
            Self::Connection => "connection",
            Self::Record => "record",
        }
    }
}

/// A device whose state is due to change, as a sweep finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    pub device: Device,
    pub to: DeviceState,
    pub reason: PresenceReason,
}

impl PresenceChange {
    /// The change `device` is due for at `now` in a workspace whose devices go offline after
    /// `offline_after` of silence, if any. The one rule; backends read candidates, this decides.
    pub fn due(device: Device, offline_after: Millis, now: Millis) -> Option<Self> {
        let silent = device.last_seen < now.saturating_sub(offline_after);
        let (to, reason) = match (device.state, device.heard) {
            (DeviceState::Online, Heard::Disconnection) => (DeviceState::Offline, PresenceReason::Disconnection),
            (DeviceState::Online, _) if silent => (DeviceState::Offline, PresenceReason::Silence),
            (DeviceState::Offline, Heard::Disconnection) => return None,
            (DeviceState::Offline, heard) if !silent && device.last_seen >= device.since => {
                let reason = if heard == Heard::Connection {
                    PresenceReason::Connection
                } else {
                    PresenceReason::Record
                };
                (DeviceState::Online, reason)
            }
            _ => return None,
        };
        Some(Self { device, to, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(state: DeviceState, heard: Heard, last_seen: Millis, since: Millis) -> Device {
        Device {
            workspace_id: "ws".into(),
            device_id: "d".into(),
            fleet_id: None,
            state,
            last_seen,
            since,
            heard,
        }
    }

    #[test]
    fn silence_disconnection_and_a_new_record_change_a_devices_state() {
        let due = |d| PresenceChange::due(d, 300, 1_000).map(|c| (c.to, c.reason));
        use DeviceState::*;
        assert_eq!(
            due(device(Online, Heard::Record, 800, 0)),
            None,
            "heard within the window"
        );
        assert_eq!(
            due(device(Online, Heard::Record, 600, 0)),
            Some((Offline, PresenceReason::Silence))
        );
        assert_eq!(
            due(device(Online, Heard::Disconnection, 990, 0)),
            Some((Offline, PresenceReason::Disconnection))
        );
        assert_eq!(due(device(Offline, Heard::Record, 600, 700)), None, "nothing new");
        assert_eq!(
            due(device(Offline, Heard::Record, 700, 700)),
            Some((Online, PresenceReason::Record)),
            "heard as it went"
        );
        assert_eq!(
            due(device(Offline, Heard::Record, 900, 700)),
            Some((Online, PresenceReason::Record))
        );
        assert_eq!(
            due(device(Offline, Heard::Connection, 900, 700)),
            Some((Online, PresenceReason::Connection))
        );
        assert_eq!(due(device(Offline, Heard::Disconnection, 900, 700)), None);
    }
}
