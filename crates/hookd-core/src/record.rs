//! Records: what producers send. Two kinds, data points and events (the README's Concepts).
//!
//! Parsing validates the documented fields and keeps every other field as it came, so the
//! record delivered is the record sent, plus the three fields hookd stamps.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Millis;
use crate::validation::{Fields, Problems, ValidationError, type_name};

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

    /// An event made by hookd about a device (presence): `device_id` and `fleet_id` are
    /// fields of the event, so webhooks filter on them as on the device's own events.
    pub fn device_event(event_type: &str, device_id: &str, fleet_id: Option<&str>, payload: Value) -> Self {
        let mut event = Self::event(event_type, payload);
        event.fields.insert("device_id".into(), Value::String(device_id.into()));
        if let Some(fleet) = fleet_id {
            event.fields.insert("fleet_id".into(), Value::String(fleet.into()));
        }
        event
    }

    /// A data point made by hookd itself (e.g. the test send to a data webhook).
    pub fn data_point(device_id: &str, tag: &str, payload: Value) -> Self {
        let mut fields = Map::new();
        fields.insert("device_id".into(), Value::String(device_id.into()));
        fields.insert("tag".into(), Value::String(tag.into()));
        fields.insert("payload".into(), payload);
        Self {
            kind: Kind::Data,
            fields,
        }
    }

    /// A top-level string field.
    /// The record's fields as sent (before hookd stamps its own).
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

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

    /// The device's own time of the record, in milliseconds: an event's `ts` (RFC 3339, or
    /// a number of Unix seconds, or of milliseconds when it is at least 10^11), a data
    /// point's `timestamp_device`. `None` when it has none.
    pub fn device_time(&self) -> Option<Millis> {
        let value = match self.kind {
            Kind::Event => self.fields.get("ts")?,
            Kind::Data => self.fields.get("timestamp_device")?,
        };
        match value {
            Value::String(s) => crate::timefmt::parse_rfc3339(s),
            Value::Number(n) => {
                let n = n.as_f64()?;
                Some(if n.abs() >= 1e11 {
                    n as Millis
                } else {
                    (n * 1000.0) as Millis
                })
            }
            _ => None,
        }
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.fields.get("labels")?.get(key)?.as_str()
    }

    /// The record as delivered: `id`, `workspace_id`, `timestamp_in` first, then the
    /// producer's fields in the order they were sent.
    pub fn stamp(&self, id: &str, workspace_id: &str, timestamp_in: &str) -> String {
        // Written field by field, as `Value::Object(..).to_string()` would write the stamped
        // copy, without making that copy.
        let mut out = Vec::with_capacity(STAMP_CAPACITY);
        out.push(b'{');
        for (key, value) in [
            ("id", id),
            ("workspace_id", workspace_id),
            ("timestamp_in", timestamp_in),
        ] {
            write_field(&mut out, key, value);
        }
        for (key, value) in &self.fields {
            write_field(&mut out, key, value);
        }
        // The last field's comma closes the object.
        if let Some(last) = out.last_mut() {
            *last = b'}';
        }
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }
}

/// Room reserved for a stamped record: a realistic data point fits without growing.
const STAMP_CAPACITY: usize = 512;

/// `"key":value,` in compact JSON.
fn write_field<T: Serialize + ?Sized>(out: &mut Vec<u8>, key: &str, value: &T) {
    serde_json::to_writer(&mut *out, key).expect("a JSON string written to memory");
    out.push(b':');
    serde_json::to_writer(&mut *out, value).expect("a JSON value written to memory");
    out.push(b',');
}

/// Parses an ingest body: one record object or a non-empty array of at most `max` records.
/// Errors name the record by index in an array (`[1].device_id`); every problem found is
/// reported (up to [`crate::validation::MAX_PROBLEMS`]), the first one first.
pub fn parse_body(body: Value, kind: Kind, max: usize) -> Result<Vec<RecordIn>, ValidationError> {
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
            let mut problems = Problems::default();
            let mut records = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                if problems.is_full() {
                    break;
                }
                if let Some(record) = problems.check(parse_record(item, kind, &format!("[{i}]"))) {
                    records.push(record);
                }
            }
            problems.finish()?;
            Ok(records)
        }
        object @ Value::Object(_) => Ok(vec![parse_record(object, kind, "")?]),
        other => Err(ValidationError::new(
            "invalid_type",
            "",
            format!(
                "expected a record object or an array of records, got {}",
                type_name(&other)
            ),
        )),
    }
}

/// Validates one record and keeps it (moved, not copied) when it is valid.
fn parse_record(value: Value, kind: Kind, prefix: &str) -> Result<RecordIn, ValidationError> {
    check_record(&value, kind, prefix)?;
    let Value::Object(mut fields) = value else {
        unreachable!("check_record accepts objects only")
    };
    for key in STAMPED {
        fields.shift_remove(key);
    }
    Ok(RecordIn { kind, fields })
}

fn check_record(value: &Value, kind: Kind, prefix: &str) -> Result<(), ValidationError> {
    let f = Fields::new(value, prefix)?;
    let mut problems = Problems::default();
    problems.check(f.required("payload"));
    match kind {
        Kind::Data => {
            problems.check(f.req_str("device_id", MAX_ID_LEN));
            problems.check(f.req_str("tag", MAX_ID_LEN));
            for key in ["fleet_id", "device_name", "asset_id", "asset_name"] {
                problems.check(opt_short_str(&f, key));
            }
            problems.check(opt_time(&f, "timestamp_device"));
        }
        Kind::Event => {
            problems.check(f.req_str("type", MAX_ID_LEN));
            for key in ["device_id", "fleet_id"] {
                problems.check(opt_short_str(&f, key));
            }
            if let Some(Some(direction)) = problems.check(f.opt_str("direction")) {
                if direction != "d2c" && direction != "c2d" {
                    problems.add(f.invalid("direction", "`direction` must be \"d2c\" or \"c2d\""));
                }
            }
            match f.value("ts") {
                None | Some(Value::Number(_)) => {}
                Some(Value::String(_)) => {
                    problems.check(opt_time(&f, "ts"));
                }
                Some(ts) => problems.add(f.invalid(
                    "ts",
                    format!("`ts` must be an RFC 3339 time or a number, got {}", type_name(ts)),
                )),
            }
        }
    }
    if let Some(labels) = problems.check(f.str_map("labels")) {
        if labels.len() > MAX_LABELS {
            problems.add(f.invalid("labels", format!("at most {MAX_LABELS} labels")));
        }
        problems.check(check_labels(&f, "labels", &labels));
    }
    problems.finish()
}

/// The most labels a record may carry.
const MAX_LABELS: usize = 64;
/// The longest label key, and the longest label value.
const MAX_LABEL_KEY_LEN: usize = 128;
const MAX_LABEL_VALUE_LEN: usize = 256;

/// Label keys are non-empty and short, values short (a record's `labels`, a filter's).
pub(crate) fn check_labels(
    f: &Fields<'_>,
    key: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<(), ValidationError> {
    for (name, value) in labels {
        let field = format!("{key}.{name}");
        if name.trim().is_empty() {
            return Err(f.invalid(&field, "label keys must not be empty"));
        }
        if name.chars().count() > MAX_LABEL_KEY_LEN {
            return Err(f.invalid(&field, format!("label keys are at most {MAX_LABEL_KEY_LEN} characters")));
        }
        if value.chars().count() > MAX_LABEL_VALUE_LEN {
            return Err(f.invalid(
                &field,
                format!("label values are at most {MAX_LABEL_VALUE_LEN} characters"),
            ));
        }
    }
    Ok(())
}

fn opt_short_str(f: &Fields<'_>, key: &str) -> Result<(), ValidationError> {
    if let Some(s) = f.opt_str(key)? {
        f.check_len(key, s, MAX_ID_LEN)?;
    }
    Ok(())
}

/// An optional RFC 3339 time (`2023-12-01T09:51:00Z`, any fraction of a second, any offset).
fn opt_time(f: &Fields<'_>, key: &str) -> Result<(), ValidationError> {
    if let Some(s) = f.opt_str(key)? {
        if crate::timefmt::parse_rfc3339(s).is_none() {
            return Err(ValidationError::new(
                "invalid_time",
                f.path(key),
                format!("`{key}` must be an RFC 3339 time such as 2023-12-01T09:51:00Z, not `{s}`"),
            ));
        }
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
        let err = parse_body(body, Kind::Data, 10).unwrap_err();
        assert_eq!(err.field, "[1].device_id");
        assert_eq!(err.code, "missing_field");
    }

    #[test]
    fn stamped_fields_are_replaced_and_unknown_fields_kept_in_order() {
        let body = json!({"zeta": 1, "type": "x", "id": "mine", "payload": null, "alpha": 2});
        let rec = parse_body(body, Kind::Event, 10).unwrap().remove(0);
        let stamped = rec.stamp("rec_1", "ws_1", "2024-01-01T00:00:00Z");
        assert_eq!(
            stamped,
            r#"{"id":"rec_1","workspace_id":"ws_1","timestamp_in":"2024-01-01T00:00:00Z","zeta":1,"type":"x","payload":null,"alpha":2}"#
        );
    }

    #[test]
    fn a_stamped_record_is_the_json_of_its_fields_escapes_and_all() {
        let body = json!({
            "type": "quote\"and\\back\nslash",
            "payload": {"nested": [1, 2.5, -3, {"é": "ünïcode ☃"}], "empty": {}, "none": []},
            "labels": {"a b": "c\u{1}"}
        });
        let rec = parse_body(body.clone(), Kind::Event, 1).unwrap().remove(0);
        let stamped: Value = serde_json::from_str(&rec.stamp("rec_\"1", "ws_1", "t")).unwrap();
        let mut expected = json!({"id": "rec_\"1", "workspace_id": "ws_1", "timestamp_in": "t"});
        expected
            .as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        assert_eq!(stamped, expected);
    }

    #[test]
    fn every_problem_of_a_body_is_named_the_first_one_first() {
        let body = json!([
            {"device_id": "", "tag": "t", "payload": 1, "timestamp_device": "yesterday"},
            {"device_id": "d", "tag": "t", "payload": 1},
            {"tag": "t", "payload": 1, "labels": {"": "x"}}
        ]);
        let err = parse_body(body, Kind::Data, 10).unwrap_err();
        let fields: Vec<&str> = err.all().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["[0].device_id", "[0].timestamp_device", "[2].device_id", "[2].labels."]
        );
        assert_eq!(err.also[0].code, "invalid_time");
    }

    #[test]
    fn times_are_rfc_3339_and_labels_are_bounded() {
        let event = |extra: Value| {
            let mut body = json!({"type": "x", "payload": {}});
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            parse_body(body, Kind::Event, 1)
        };
        assert!(event(json!({"ts": "2022-03-18T09:34:23.777118453Z"})).is_ok());
        assert!(
            event(json!({"ts": 1701424260})).is_ok(),
            "a number is a producer's own time"
        );
        assert_eq!(event(json!({"ts": "yesterday"})).unwrap_err().code, "invalid_time");
        let long = "x".repeat(257);
        assert_eq!(
            event(json!({"labels": {"site": long}})).unwrap_err().field,
            "labels.site"
        );
        assert!(event(json!({"labels": {"site": "x".repeat(256)}})).is_ok());
    }

    #[test]
    fn a_records_fields_are_read_by_kind() {
        let data = parse_body(
            json!({"device_id": "d1", "tag": "t", "type": "not-an-event", "payload": 1}),
            Kind::Data,
            1,
        )
        .unwrap()
        .remove(0);
        assert_eq!(
            (data.device_id(), data.tag(), data.event_type()),
            (Some("d1"), Some("t"), None)
        );
        let event = parse_body(
            json!({"type": "relay", "tag": "not-a-tag", "payload": 1}),
            Kind::Event,
            1,
        )
        .unwrap()
        .remove(0);
        assert_eq!(
            (event.device_id(), event.tag(), event.event_type()),
            (None, None, Some("relay"))
        );
    }

    #[test]
    fn limits_hold_to_the_last_one_allowed() {
        let point = json!({"device_id": "d", "tag": "t", "payload": 1});
        assert_eq!(
            parse_body(json!([point, point]), Kind::Data, 2).unwrap().len(),
            2,
            "exactly the limit"
        );
        assert_eq!(
            parse_body(json!([point, point, point]), Kind::Data, 2)
                .unwrap_err()
                .code,
            "too_many_records"
        );
        for direction in ["d2c", "c2d"] {
            assert!(
                parse_body(
                    json!({"type": "x", "payload": 1, "direction": direction}),
                    Kind::Event,
                    1
                )
                .is_ok()
            );
        }
        let labels = |n: usize| (0..n).map(|i| (format!("k{i}"), json!("v"))).collect::<Map<_, _>>();
        let with = |labels: Map<String, Value>| json!({"type": "x", "payload": 1, "labels": labels});
        assert!(parse_body(with(labels(64)), Kind::Event, 1).is_ok());
        assert_eq!(
            parse_body(with(labels(65)), Kind::Event, 1).unwrap_err().field,
            "labels"
        );
        let key = |n: usize| {
            let mut m = Map::new();
            m.insert("k".repeat(n), json!("v"));
            m
        };
        assert!(parse_body(with(key(128)), Kind::Event, 1).is_ok());
        assert_eq!(
            parse_body(with(key(129)), Kind::Event, 1).unwrap_err().field,
            format!("labels.{}", "k".repeat(129))
        );
        for field in ["fleet_id", "device_name", "asset_id", "asset_name"] {
            let mut body = json!({"device_id": "d", "tag": "t", "payload": 1});
            body[field] = json!("x".repeat(256));
            assert!(parse_body(body.clone(), Kind::Data, 1).is_ok(), "{field}");
            body[field] = json!("x".repeat(257));
            assert_eq!(parse_body(body, Kind::Data, 1).unwrap_err().field, field);
        }
    }

    #[test]
    fn wrong_types_and_values_are_named() {
        let err = parse_body(json!({"type": "x", "payload": {}, "direction": "up"}), Kind::Event, 1).unwrap_err();
        assert_eq!(err.field, "direction");
        let err = parse_body(json!({"type": "x", "payload": {}, "labels": {"a": 1}}), Kind::Event, 1).unwrap_err();
        assert_eq!(err.field, "labels.a");
        let err = parse_body(
            json!([{"type": "x", "payload": 1}, {"type": "x", "payload": 1}]),
            Kind::Event,
            1,
        )
        .unwrap_err();
        assert_eq!(err.code, "too_many_records");
    }
}
