//! Records: what producers send. Two kinds, data points and events (DESIGN.md §2).
//!
//! Parsing validates the documented fields and keeps every other field as it came, so the
//! record delivered is the record sent, plus the three fields hookd stamps.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::validation::{Fields, ValidationError, type_name};

/// Longest accepted identifier-like string (`device_id`, `tag`, `type`, …).
const MAX_ID_LEN: usize = 256;

/// Fields hookd sets itself; a producer's values for them are replaced.
const STAMPED: [&str; 3] = ["id", "workspace_id", "timestamp_in"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Data,
    Event,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Data => "data",
            Kind::Event => "event",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "data" => Some(Kind::Data),
            "event" => Some(Kind::Event),
            _ => None,
        }
    }
}

/// A validated record, not yet stamped.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordIn {
    pub kind: Kind,
    fields: Map<String, Value>,
}

impl RecordIn {
    /// An event made by hookd itself (e.g. the `TEST` event).
    pub fn event(event_type: &str, payload: Value) -> Self {
        let mut fields = Map::new();
        fields.insert("type".into(), Value::String(event_type.into()));
        fields.insert("payload".into(), payload);
        Self {
            kind: Kind::Event,
            fields,
        }
    }

    /// A top-level string field.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    pub fn device_id(&self) -> Option<&str> {
        self.str_field("device_id")
    }

    pub fn fleet_id(&self) -> Option<&str> {
        self.str_field("fleet_id")
    }

    /// The data point's tag; events have none.
    pub fn tag(&self) -> Option<&str> {
        (self.kind == Kind::Data).then(|| self.str_field("tag")).flatten()
    }

    /// The event's type; data points have none.
    pub fn event_type(&self) -> Option<&str> {
        (self.kind == Kind::Event).then(|| self.str_field("type")).flatten()
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.fields.get("labels")?.get(key)?.as_str()
    }

    /// The record as delivered: `id`, `workspace_id`, `timestamp_in` first, then the
    /// producer's fields in the order they were sent.
    pub fn stamp(&self, id: &str, workspace_id: &str, timestamp_in: &str) -> String {
        let mut out = Map::with_capacity(self.fields.len() + 3);
        out.insert("id".into(), Value::String(id.into()));
        out.insert("workspace_id".into(), Value::String(workspace_id.into()));
        out.insert("timestamp_in".into(), Value::String(timestamp_in.into()));
        out.extend(self.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        Value::Object(out).to_string()
    }
}

/// Parses an ingest body: one record object or a non-empty array of at most `max` records.
/// Errors name the record by index in an array (`[1].device_id`).
pub fn parse_body(body: &Value, kind: Kind, max: usize) -> Result<Vec<RecordIn>, ValidationError> {
    match body {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ValidationError::new("invalid_value", "", "the array holds no records"));
            }
            if items.len() > max {
                return Err(ValidationError::new(
                    "too_many_records",
                    "",
                    format!("{} records in one request; the limit is {max}", items.len()),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_record(item, kind, &format!("[{i}]")))
                .collect()
        }
        Value::Object(_) => Ok(vec![parse_record(body, kind, "")?]),
        other => Err(ValidationError::new(
            "invalid_type",
            "",
            format!(
                "expected a record object or an array of records, got {}",
                type_name(other)
            ),
        )),
    }
}

fn parse_record(value: &Value, kind: Kind, prefix: &str) -> Result<RecordIn, ValidationError> {
    let f = Fields::new(value, prefix)?;
    f.required("payload")?;
    match kind {
        Kind::Data => {
            f.req_str("device_id", MAX_ID_LEN)?;
            f.req_str("tag", MAX_ID_LEN)?;
            for key in ["fleet_id", "device_name", "asset_id", "asset_name", "timestamp_device"] {
                opt_short_str(&f, key)?;
            }
        }
        Kind::Event => {
            f.req_str("type", MAX_ID_LEN)?;
            for key in ["device_id", "fleet_id"] {
                opt_short_str(&f, key)?;
            }
            if let Some(direction) = f.opt_str("direction")? {
                if direction != "d2c" && direction != "c2d" {
                    return Err(f.invalid("direction", "`direction` must be \"d2c\" or \"c2d\""));
                }
            }
            if let Some(ts) = f.value("ts") {
                if !ts.is_string() && !ts.is_number() {
                    return Err(f.invalid(
                        "ts",
                        format!("`ts` must be a time string or a number, got {}", type_name(ts)),
                    ));
                }
            }
        }
    }
    f.str_map("labels")?;
    let mut fields = f.map().clone();
    for key in STAMPED {
        fields.shift_remove(key);
    }
    Ok(RecordIn { kind, fields })
}

fn opt_short_str(f: &Fields<'_>, key: &str) -> Result<(), ValidationError> {
    if let Some(s) = f.opt_str(key)? {
        f.check_len(key, s, MAX_ID_LEN)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_array_error_names_the_record_and_field() {
        let body = json!([
            {"device_id": "d", "tag": "t", "payload": 1},
            {"tag": "t", "payload": 1}
        ]);
        let err = parse_body(&body, Kind::Data, 10).unwrap_err();
        assert_eq!(err.field, "[1].device_id");
        assert_eq!(err.code, "missing_field");
    }

    #[test]
    fn stamped_fields_are_replaced_and_unknown_fields_kept_in_order() {
        let body = json!({"zeta": 1, "type": "x", "id": "mine", "payload": null, "alpha": 2});
        let rec = parse_body(&body, Kind::Event, 10).unwrap().remove(0);
        let stamped = rec.stamp("rec_1", "ws_1", "2024-01-01T00:00:00Z");
        assert_eq!(
            stamped,
            r#"{"id":"rec_1","workspace_id":"ws_1","timestamp_in":"2024-01-01T00:00:00Z","zeta":1,"type":"x","payload":null,"alpha":2}"#
        );
    }

    #[test]
    fn wrong_types_and_values_are_named() {
        let err = parse_body(&json!({"type": "x", "payload": {}, "direction": "up"}), Kind::Event, 1).unwrap_err();
        assert_eq!(err.field, "direction");
        let err = parse_body(&json!({"type": "x", "payload": {}, "labels": {"a": 1}}), Kind::Event, 1).unwrap_err();
        assert_eq!(err.field, "labels.a");
        let err = parse_body(
            &json!([{"type": "x", "payload": 1}, {"type": "x", "payload": 1}]),
            Kind::Event,
            1,
        )
        .unwrap_err();
        assert_eq!(err.code, "too_many_records");
    }
}
