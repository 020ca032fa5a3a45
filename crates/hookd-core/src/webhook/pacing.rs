//! When a webhook's matches go out, and in what order: batch windows, debounce and
//! per-device ordering. Four flat fields of the spec (`batch_window`, `min_interval`,
//! `coalesce`, `ordering`), checked together because they constrain one another.

use std::time::Duration;

use serde_json::{Map, Value};

use super::Format;
use crate::duration;
use crate::validation::{Fields, ValidationError};

/// The longest a batch waits for company.
pub const MAX_BATCH_WINDOW: Duration = Duration::from_secs(3600);
/// The longest debounce interval.
pub const MAX_MIN_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// How records that arrive inside a debounce interval become its one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coalesce {
    /// Only the device's newest record (by its own time, then arrival) is sent.
    Latest,
    /// Every record is sent, as one batch, when the interval ends.
    All,
}

/// Whose records keep their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// None promised: deliveries go in parallel.
    None,
    /// One device's records arrive in its own time order, one delivery in flight at a time.
    Device,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// How long a batch webhook waits after its first pending record for more (0: not at all).
    pub batch_window: Duration,
    /// At most one delivery per device per this interval (0: no debounce).
    pub min_interval: Duration,
    pub coalesce: Coalesce,
    pub ordering: Ordering,
}

impl Pacing {
    pub const FIELDS: [&'static str; 4] = ["batch_window", "min_interval", "coalesce", "ordering"];

    pub fn parse(f: &Fields<'_>, format: Option<Format>) -> Result<Self, ValidationError> {
        let batch_window = parse_duration(f, "batch_window", MAX_BATCH_WINDOW)?;
        let min_interval = parse_duration(f, "min_interval", MAX_MIN_INTERVAL)?;
        let coalesce = match f.opt_str("coalesce")? {
            None | Some("latest") => Coalesce::Latest,
            Some("all") => Coalesce::All,
            Some(other) => {
                return Err(f.invalid(
                    "coalesce",
                    format!("unknown coalesce `{other}`; expected \"latest\" or \"all\""),
                ));
            }
        };
        let ordering = match f.opt_str("ordering")? {
            None | Some("none") => Ordering::None,
            Some("device") => Ordering::Device,
            Some(other) => {
                return Err(f.invalid(
                    "ordering",
                    format!("unknown ordering `{other}`; expected \"none\" or \"device\""),
                ));
            }
        };
        let batch = format == Some(Format::Batch);
        if !batch_window.is_zero() && !batch {
            return Err(f.invalid(
                "batch_window",
                "only a batch webhook waits for more records: set \"format\": \"batch\" or leave `batch_window` out",
            ));
        }
        if !batch_window.is_zero() && !min_interval.is_zero() {
            return Err(f.invalid(
                "batch_window",
                "`batch_window` and `min_interval` cannot both be set: a debounce with \"coalesce\": \"all\" already sends a device's records as one batch per interval",
            ));
        }
        if coalesce == Coalesce::All && !batch && !min_interval.is_zero() {
            return Err(f.invalid(
                "coalesce",
                "\"all\" sends an interval's records as one batch: set \"format\": \"batch\", or use \"latest\"",
            ));
        }
        Ok(Self {
            batch_window,
            min_interval,
            coalesce,
            ordering,
        })
    }

    /// The four fields, for the spec's JSON.
    pub fn write(&self, json: &mut Map<String, Value>) {
        json.insert("batch_window".into(), duration::format(self.batch_window).into());
        json.insert("min_interval".into(), duration::format(self.min_interval).into());
        let coalesce = match self.coalesce {
            Coalesce::Latest => "latest",
            Coalesce::All => "all",
        };
        json.insert("coalesce".into(), coalesce.into());
        let ordering = match self.ordering {
            Ordering::None => "none",
            Ordering::Device => "device",
        };
        json.insert("ordering".into(), ordering.into());
    }

    /// Whether a debounce spaces this webhook's deliveries per device.
    pub fn debounced(&self) -> bool {
        !self.min_interval.is_zero()
    }
}

fn parse_duration(f: &Fields<'_>, key: &str, max: Duration) -> Result<Duration, ValidationError> {
    let Some(s) = f.opt_str(key)? else {
        return Ok(Duration::ZERO);
    };
    let d = duration::parse(s).map_err(|m| ValidationError::new("invalid_duration", key, m))?;
    if d > max {
        return Err(f.invalid(key, format!("`{key}` is at most {}", duration::format(max))));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: Value, format: Format) -> Result<Pacing, ValidationError> {
        Pacing::parse(&Fields::new(&body, "").unwrap(), Some(format))
    }

    #[test]
    fn defaults_are_send_at_once_in_any_order() {
        let pacing = parse(json!({}), Format::Batch).unwrap();
        assert_eq!(pacing.batch_window, Duration::ZERO);
        assert!(!pacing.debounced());
        assert_eq!((pacing.coalesce, pacing.ordering), (Coalesce::Latest, Ordering::None));
        let mut out = Map::new();
        pacing.write(&mut out);
        assert_eq!(
            Value::Object(out),
            json!({"batch_window": "0s", "min_interval": "0s", "coalesce": "latest", "ordering": "none"})
        );
    }

    #[test]
    fn contradictions_are_refused_naming_the_field() {
        let field = |body: Value, format| parse(body, format).unwrap_err().field;
        assert_eq!(field(json!({"batch_window": "2s"}), Format::Single), "batch_window");
        assert_eq!(
            field(json!({"batch_window": "2s", "min_interval": "1s"}), Format::Batch),
            "batch_window"
        );
        assert_eq!(
            field(json!({"min_interval": "1s", "coalesce": "all"}), Format::Single),
            "coalesce"
        );
        assert_eq!(field(json!({"coalesce": "first"}), Format::Batch), "coalesce");
        assert_eq!(field(json!({"ordering": "fleet"}), Format::Batch), "ordering");
        assert_eq!(field(json!({"min_interval": "soon"}), Format::Batch), "min_interval");
        assert_eq!(field(json!({"batch_window": "2h"}), Format::Batch), "batch_window");
        let ok = parse(
            json!({"min_interval": "1s", "coalesce": "all", "ordering": "device"}),
            Format::Batch,
        )
        .unwrap();
        assert_eq!((ok.min_interval, ok.coalesce), (Duration::from_secs(1), Coalesce::All));
    }
}
