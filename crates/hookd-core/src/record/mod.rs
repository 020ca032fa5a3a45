//! Records: what producers send. Two kinds, data points and events (the README's Concepts).
//!
//! Parsing validates the documented fields and keeps every other field as it came, so the
//! record delivered is the record sent, plus the three fields hookd stamps. A body that
//! arrives as JSON text is read by [`text`] without building a tree of each record.

mod text;

pub use text::parse_body_text;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Millis;
use crate::validation::{Fields, Lookup, Problems, ValidationError, type_name};

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

/// The top-level fields hookd reads of a record (filters, presence, ordering) or validates:
/// every field [`check_record`] looks at but `payload`, whose value it only requires.
const READ: [&str; 11] = [
    "device_id",
    "tag",
    "type",
    "fleet_id",
    "device_name",
    "asset_id",
    "asset_name",
    "timestamp_device",
    "ts",
    "direction",
    "labels",
];

/// Places in [`READ`] of the fields read after validation.
const DEVICE_ID: usize = 0;
const TAG: usize = 1;
const TYPE: usize = 2;
const FLEET_ID: usize = 3;
const TIMESTAMP_DEVICE: usize = 7;
const TS: usize = 8;
const LABELS: usize = 10;

/// A record's values of the fields in [`READ`], each with its place there, in that order: a
/// handful, found by a scan, without hashing or owning their names.
#[derive(Debug, Clone, PartialEq, Default)]
struct ReadFields(Vec<(usize, Value)>);

impl ReadFields {
    fn at(&self, place: usize) -> Option<&Value> {
        self.0.iter().find(|(p, _)| *p == place).map(|(_, value)| value)
    }

    /// Sets the field at `place`, in order; `false`, leaving it, when it is set already (a
    /// repeated key, for which the record is parsed as a value instead).
    fn set(&mut self, place: usize, value: Value) -> bool {
        match self.0.iter().position(|(p, _)| *p >= place) {
            Some(i) if self.0[i].0 == place => false,
            Some(i) => {
                self.0.insert(i, (place, value));
                true
            }
            None => {
                self.0.push((place, value));
                true
            }
        }
    }
}

impl Lookup for ReadFields {
    fn lookup(&self, key: &str) -> Option<&Value> {
        self.at(READ.iter().position(|name| *name == key)?)
    }
}

/// A validated record, not yet stamped.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordIn {
    pub kind: Kind,
    /// The producer's fields named in [`READ`], as sent.
    read: ReadFields,
    /// The producer's fields, hookd's stamped ones left out, as one compact JSON object.
    json: String,
}

impl RecordIn {
    /// An event made by hookd itself (e.g. the `TEST` event).
    pub fn event(event_type: &str, payload: Value) -> Self {
        Self::of_fields(Kind::Event, event_fields(event_type, payload))
    }

    /// An event made by hookd about a device (presence): `device_id` and `fleet_id` are
    /// fields of the event, so webhooks filter on them as on the device's own events.
    pub fn device_event(event_type: &str, device_id: &str, fleet_id: Option<&str>, payload: Value) -> Self {
        let mut fields = event_fields(event_type, payload);
        fields.insert("device_id".into(), Value::String(device_id.into()));
        if let Some(fleet) = fleet_id {
            fields.insert("fleet_id".into(), Value::String(fleet.into()));
        }
        Self::of_fields(Kind::Event, fields)
    }

    /// A data point made by hookd itself (e.g. the test send to a data webhook).
    pub fn data_point(device_id: &str, tag: &str, payload: Value) -> Self {
        let mut fields = Map::new();
        fields.insert("device_id".into(), Value::String(device_id.into()));
        fields.insert("tag".into(), Value::String(tag.into()));
        fields.insert("payload".into(), payload);
        Self::of_fields(Kind::Data, fields)
    }

    /// A record of these fields; stamped ones are left out.
    fn of_fields(kind: Kind, mut fields: Map<String, Value>) -> Self {
        for key in STAMPED {
            fields.shift_remove(key);
        }
        let json = serde_json::to_string(&fields).expect("a JSON map written to memory");
        let read = READ
            .iter()
            .enumerate()
            .filter_map(|(place, name)| Some((place, fields.swap_remove(*name)?)))
            .collect();
        Self {
            kind,
            read: ReadFields(read),
            json,
        }
    }

    /// The record's fields as sent (before hookd stamps its own), parsed.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.json).expect("a record's JSON was written or checked by hookd")
    }

    /// A string field hookd reads, by its place in [`READ`].
    fn str_field(&self, place: usize) -> Option<&str> {
        self.read.at(place).and_then(Value::as_str)
    }

    pub fn device_id(&self) -> Option<&str> {
        self.str_field(DEVICE_ID)
    }

    pub fn fleet_id(&self) -> Option<&str> {
        self.str_field(FLEET_ID)
    }

    /// The data point's tag; events have none.
    pub fn tag(&self) -> Option<&str> {
        (self.kind == Kind::Data).then(|| self.str_field(TAG)).flatten()
    }

    /// The event's type; data points have none.
    pub fn event_type(&self) -> Option<&str> {
        (self.kind == Kind::Event).then(|| self.str_field(TYPE)).flatten()
    }

    /// The device's own time of the record, in milliseconds: an event's `ts` (RFC 3339, or
    /// a number of Unix seconds, or of milliseconds when it is at least 10^11), a data
    /// point's `timestamp_device`. `None` when it has none.
    pub fn device_time(&self) -> Option<Millis> {
        let value = match self.kind {
            Kind::Event => self.read.at(TS)?,
            Kind::Data => self.read.at(TIMESTAMP_DEVICE)?,
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
        self.read.at(LABELS)?.get(key)?.as_str()
    }

    /// The record as delivered: `id`, `workspace_id`, `timestamp_in` first, then the
    /// producer's fields in the order they were sent.
    pub fn stamp(&self, id: &str, workspace_id: &str, timestamp_in: &str) -> String {
        let mut out = Vec::with_capacity(STAMP_ROOM + self.json.len());
        out.push(b'{');
        for (key, value) in [
            ("id", id),
            ("workspace_id", workspace_id),
            ("timestamp_in", timestamp_in),
        ] {
            write_field(&mut out, key, value);
        }
        let mut out = String::from_utf8(out).expect("serde_json writes UTF-8");
        match self.json.strip_prefix('{') {
            // No fields of the producer's: the last stamped field's comma closes the object.
            Some("}") => {
                out.pop();
                out.push('}');
            }
            Some(fields) => out.push_str(fields),
            None => unreachable!("a record's JSON is an object"),
        }
        out
    }
}

/// An event's own fields: its `type` and `payload`.
fn event_fields(event_type: &str, payload: Value) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("type".into(), Value::String(event_type.into()));
    fields.insert("payload".into(), payload);
    fields
}

/// Room for the stamped fields: ids and a time fit without growing.
const STAMP_ROOM: usize = 128;

/// `"key":"value",` in compact JSON.
fn write_field(out: &mut Vec<u8>, key: &str, value: &str) {
    serde_json::to_writer(&mut *out, key).expect("a JSON string written to memory");
    out.push(b':');
    serde_json::to_writer(&mut *out, value).expect("a JSON string written to memory");
    out.push(b',');
}

/// Parses an ingest body: one record object or a non-empty array of at most `max` records.
/// Errors name the record by index in an array (`[1].device_id`); every problem found is
/// reported (up to [`crate::validation::MAX_PROBLEMS`]), the first one first.
pub fn parse_body(body: Value, kind: Kind, max: usize) -> Result<Vec<RecordIn>, ValidationError> {
    match body {
        Value::Array(items) => records_of(items, max, |item, prefix| parse_record(item, kind, prefix)),
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

/// The records of an array body's `items`, each parsed by `parse` with its index as the
/// prefix of its errors' paths: all of them, or every problem found.
fn records_of<T>(
    items: Vec<T>,
    max: usize,
    mut parse: impl FnMut(T, &str) -> Result<RecordIn, ValidationError>,
) -> Result<Vec<RecordIn>, ValidationError> {
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
        if let Some(record) = problems.check(parse(item, &format!("[{i}]"))) {
            records.push(record);
        }
    }
    problems.finish()?;
    Ok(records)
}

/// Validates one record and keeps it when it is valid.
fn parse_record(value: Value, kind: Kind, prefix: &str) -> Result<RecordIn, ValidationError> {
    check_record(&Fields::new(&value, prefix)?, kind)?;
    let Value::Object(fields) = value else {
        unreachable!("check_record accepts objects only")
    };
    Ok(RecordIn::of_fields(kind, fields))
}

fn check_record<M: Lookup + ?Sized>(f: &Fields<'_, M>, kind: Kind) -> Result<(), ValidationError> {
    let mut problems = Problems::default();
    problems.check(f.required("payload"));
    match kind {
        Kind::Data => {
            problems.check(f.req_str("device_id", MAX_ID_LEN));
            problems.check(f.req_str("tag", MAX_ID_LEN));
            for key in ["fleet_id", "device_name", "asset_id", "asset_name"] {
                problems.check(opt_short_str(f, key));
            }
            problems.check(opt_time(f, "timestamp_device"));
        }
        Kind::Event => {
            problems.check(f.req_str("type", MAX_ID_LEN));
            for key in ["device_id", "fleet_id"] {
                problems.check(opt_short_str(f, key));
            }
            if let Some(Some(direction)) = problems.check(f.opt_str("direction")) {
                if direction != "d2c" && direction != "c2d" {
                    problems.add(f.invalid("direction", "`direction` must be \"d2c\" or \"c2d\""));
                }
            }
            match f.value("ts") {
                None | Some(Value::Number(_)) => {}
                Some(Value::String(_)) => {
                    problems.check(opt_time(f, "ts"));
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
        problems.check(check_labels(f, "labels", &labels));
    }
    problems.finish()
}

/// The most labels a record may carry.
const MAX_LABELS: usize = 64;
/// The longest label key, and the longest label value.
const MAX_LABEL_KEY_LEN: usize = 128;
const MAX_LABEL_VALUE_LEN: usize = 256;

/// Label keys are non-empty and short, values short (a record's `labels`, a filter's).
pub(crate) fn check_labels<M: Lookup + ?Sized>(
    f: &Fields<'_, M>,
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

fn opt_short_str<M: Lookup + ?Sized>(f: &Fields<'_, M>, key: &str) -> Result<(), ValidationError> {
    if let Some(s) = f.opt_str(key)? {
        f.check_len(key, s, MAX_ID_LEN)?;
    }
    Ok(())
}

/// An optional RFC 3339 time (`2023-12-01T09:51:00Z`, any fraction of a second, any offset).
fn opt_time<M: Lookup + ?Sized>(f: &Fields<'_, M>, key: &str) -> Result<(), ValidationError> {
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
mod tests;
