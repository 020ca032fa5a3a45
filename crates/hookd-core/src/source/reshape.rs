//! From a verified request's body to records: `split` yields the items the body carries,
//! `transform` each item's payload, `fields` the record's other fields; without programs the
//! body is one item, an event of type `source.<name>` with the item as payload, or (for a
//! data source) the item read as a data point.
//!
//! What a reshape needs travels on its own ([`ReshapeSpec`], no secrets), so it can run in a
//! worker process (see `program` for why).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::SourceSpec;
use super::program::{Bindings, Program, ProgramError, compile};
use crate::record::Kind;
use crate::validation::ValidationError;

/// The part of a source that makes records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReshapeSpec {
    pub name: String,
    pub record_type: Kind,
    pub split: Option<String>,
    pub transform: Option<String>,
    pub fields: BTreeMap<String, String>,
}

/// How much one request may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_records: usize,
    /// The records' JSON together.
    pub max_bytes: usize,
}

/// A compiled [`ReshapeSpec`].
#[derive(Debug)]
pub struct Reshape {
    spec: ReshapeSpec,
    split: Option<Program>,
    transform: Option<Program>,
    fields: Vec<(String, Program)>,
}

/// Fields whose values are text: a number or a boolean a program yields is written as text.
const TEXT_FIELDS: [&str; 8] = [
    "type",
    "device_id",
    "fleet_id",
    "tag",
    "direction",
    "device_name",
    "asset_id",
    "asset_name",
];

impl ReshapeSpec {
    pub fn of(spec: &SourceSpec) -> Self {
        Self {
            name: spec.name.clone(),
            record_type: spec.record_type,
            split: spec.split.clone(),
            transform: spec.transform.clone(),
            fields: spec.fields.clone(),
        }
    }

    /// Whether any jq program runs (else the reshape is trivial and safe anywhere).
    pub fn has_programs(&self) -> bool {
        self.split.is_some() || self.transform.is_some() || !self.fields.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "record_type": self.record_type.as_str(),
            "split": self.split,
            "transform": self.transform,
            "fields": self.fields,
        })
    }

    pub fn from_json(value: &Value) -> Option<Self> {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            name: text("name")?,
            record_type: Kind::parse(value.get("record_type")?.as_str()?)?,
            split: text("split"),
            transform: text("transform"),
            fields: serde_json::from_value(value.get("fields")?.clone()).ok()?,
        })
    }
}

impl Reshape {
    /// Compiles every program; an error names the field (`split`, `transform`,
    /// `fields.device_id`) and the position in it.
    pub fn compile(spec: ReshapeSpec) -> Result<Self, ValidationError> {
        let program = |field: String, code: &str| {
            compile(code).map_err(|e: ProgramError| {
                ValidationError::new(
                    "invalid_program",
                    field.clone(),
                    format!("`{field}` does not compile {e}"),
                )
            })
        };
        let split = spec.split.as_deref().map(|c| program("split".into(), c)).transpose()?;
        let transform = spec
            .transform
            .as_deref()
            .map(|c| program("transform".into(), c))
            .transpose()?;
        let fields = spec
            .fields
            .iter()
            .map(|(key, code)| Ok((key.clone(), program(format!("fields.{key}"), code)?)))
            .collect::<Result<_, ValidationError>>()?;
        Ok(Self {
            spec,
            split,
            transform,
            fields,
        })
    }

    /// The records (as JSON, to validate as records) a body makes, or why it makes none.
    pub fn records(&self, body: &Value, bindings: &Bindings, limits: Limits) -> Result<Vec<Value>, String> {
        let items = match &self.split {
            Some(split) => split
                .run(body, bindings, limits.max_records)
                .map_err(|e| format!("`split` {e}"))?,
            None => vec![body.clone()],
        };
        let mut records = Vec::with_capacity(items.len());
        let mut bytes = 0;
        for (i, item) in items.iter().enumerate() {
            let at = if self.split.is_some() {
                format!(" on item {i}")
            } else {
                String::new()
            };
            let record = self.record(item, bindings).map_err(|e| format!("{e}{at}"))?;
            bytes += record.to_string().len();
            if bytes > limits.max_bytes {
                return Err(format!(
                    "the records are larger than {} bytes together",
                    limits.max_bytes
                ));
            }
            records.push(record);
        }
        Ok(records)
    }

    fn record(&self, item: &Value, bindings: &Bindings) -> Result<Value, String> {
        let payload = match &self.transform {
            Some(transform) => {
                let mut out = transform
                    .run(item, bindings, 1)
                    .map_err(|e| format!("`transform` {e}"))?;
                out.pop().ok_or("`transform` yields no value")?
            }
            None => item.clone(),
        };
        if self.spec.record_type == Kind::Data && self.transform.is_none() && self.fields.is_empty() {
            return Ok(payload);
        }
        let mut record = Map::new();
        if self.spec.record_type == Kind::Event {
            record.insert("type".into(), Value::String(format!("source.{}", self.spec.name)));
        }
        let mut labels = Map::new();
        for (key, program) in &self.fields {
            let value = program
                .run(item, bindings, 1)
                .map_err(|e| format!("`fields.{key}` {e}"))?
                .pop()
                .filter(|v| !v.is_null());
            let Some(value) = value else { continue };
            match key.strip_prefix("labels.") {
                Some(label) => {
                    labels.insert(label.to_owned(), as_text(value));
                }
                None if TEXT_FIELDS.contains(&key.as_str()) => {
                    record.insert(key.clone(), as_text(value));
                }
                None => {
                    record.insert(key.clone(), value);
                }
            }
        }
        if !labels.is_empty() {
            record.insert("labels".into(), Value::Object(labels));
        }
        record.insert("payload".into(), payload);
        Ok(Value::Object(record))
    }
}

fn as_text(value: Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reshape(record_type: Kind, split: Option<&str>, transform: Option<&str>, fields: &[(&str, &str)]) -> Reshape {
        Reshape::compile(ReshapeSpec {
            name: "iot".into(),
            record_type,
            split: split.map(str::to_owned),
            transform: transform.map(str::to_owned),
            fields: fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        })
        .unwrap()
    }

    const LIMITS: Limits = Limits {
        max_records: 100,
        max_bytes: 100_000,
    };

    #[test]
    fn an_iot_batch_is_split_into_data_points_with_their_ids() {
        let batch = json!({"batch_id": "b-1", "result": [
            {"device_id": "dev-124", "fleet_id": "flt-1", "tag": "d1", "payload": {"ts": 1701424260}},
            {"device_id": 125, "fleet_id": "flt-1", "tag": "d1", "payload": {"ts": 1701424261}, "site": "p3"},
        ]});
        let r = reshape(
            Kind::Data,
            Some(".result[]"),
            Some(".payload"),
            &[
                ("device_id", ".device_id"),
                ("fleet_id", ".fleet_id"),
                ("tag", ".tag"),
                ("labels.site", ".site"),
            ],
        );
        let records = r.records(&batch, &Bindings::default(), LIMITS).unwrap();
        assert_eq!(
            records,
            [
                json!({"device_id": "dev-124", "fleet_id": "flt-1", "tag": "d1", "payload": {"ts": 1701424260}}),
                json!({"device_id": "125", "fleet_id": "flt-1", "tag": "d1", "labels": {"site": "p3"}, "payload": {"ts": 1701424261}}),
            ]
        );
    }

    #[test]
    fn without_programs_the_body_is_one_event_and_failures_say_where() {
        let plain = reshape(Kind::Event, None, None, &[]);
        assert_eq!(
            plain.records(&json!({"a": 1}), &Bindings::default(), LIMITS).unwrap(),
            [json!({"type": "source.iot", "payload": {"a": 1}})]
        );
        let r = reshape(Kind::Event, Some(".[]"), Some(".x.y"), &[]);
        let err = r
            .records(&json!([{"x": {"y": 1}}, {"x": 5}]), &Bindings::default(), LIMITS)
            .unwrap_err();
        assert!(
            err.starts_with("`transform` cannot index 5") && err.ends_with("on item 1"),
            "{err}"
        );
        let many = r
            .records(
                &json!([1, 2, 3]),
                &Bindings::default(),
                Limits {
                    max_records: 2,
                    ..LIMITS
                },
            )
            .unwrap_err();
        assert_eq!(many, "`split` yields more than 2 values");
        let big = reshape(Kind::Event, None, None, &[]);
        let err = big
            .records(
                &json!("x".repeat(200)),
                &Bindings::default(),
                Limits {
                    max_bytes: 100,
                    ..LIMITS
                },
            )
            .unwrap_err();
        assert_eq!(err, "the records are larger than 100 bytes together");
        let err = Reshape::compile(ReshapeSpec {
            fields: [("tag".into(), ".a |".into())].into(),
            ..r.spec.clone()
        })
        .unwrap_err();
        assert_eq!((err.code, err.field.as_str()), ("invalid_program", "fields.tag"));
        assert!(err.message.contains("at character"), "{}", err.message);
    }

    #[test]
    fn the_spec_travels_as_json() {
        let spec = reshape(Kind::Data, Some(".[]"), None, &[("tag", ".dev")]).spec;
        assert_eq!(ReshapeSpec::from_json(&spec.to_json()), Some(spec.clone()));
        assert!(spec.has_programs());
    }
}
