//! Topics as record fields: `fleets/{fleet_id}/devices/{device_id}/{tag}` takes the second,
//! fourth and fifth segment of a topic as those fields, and a message becomes a record.

use serde_json::{Map, Value};

/// A topic pattern: literal segments and `{field}` segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TopicPattern {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Field(String),
}

/// Fields a topic may set: those of a record that are text, not hookd's own.
const FIELDS: [&str; 8] = [
    "device_id",
    "fleet_id",
    "tag",
    "type",
    "device_name",
    "asset_id",
    "asset_name",
    "direction",
];

impl TopicPattern {
    pub(super) fn parse(pattern: &str) -> Result<Self, String> {
        let segments = pattern
            .split('/')
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(field) if FIELDS.contains(&field) => Ok(Segment::Field(field.to_owned())),
                    Some(field) => Err(format!(
                        "`{{{field}}}` is not a field a topic can set; use one of {}",
                        FIELDS.join(", ")
                    )),
                    None if segment.contains(['{', '}', '+', '#']) => {
                        Err(format!("`{segment}`: a segment is a literal or one `{{field}}`"))
                    }
                    None => Ok(Segment::Literal(segment.to_owned())),
                },
            )
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { segments })
    }

    /// The fields `topic` sets, or `None` when it does not fit the pattern.
    pub(super) fn fields(&self, topic: &str) -> Option<Map<String, Value>> {
        let parts: Vec<&str> = topic.split('/').collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut fields = Map::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Literal(_) => return None,
                Segment::Field(field) => {
                    fields.insert(field.clone(), Value::String(part.to_owned()));
                }
            }
        }
        Some(fields)
    }
}

/// The record a message makes: the topic's fields, `payload` the message (JSON, or a string
/// when it is not JSON). A data point without a `tag` from its topic takes the topic's last
/// segment; an event without a `type`, the whole topic.
pub(super) fn record(
    pattern: Option<&TopicPattern>,
    kind: hookd_core::record::Kind,
    topic: &str,
    payload: &[u8],
) -> Value {
    let mut fields = pattern.and_then(|p| p.fields(topic)).unwrap_or_default();
    let missing = |key: &str, fields: &Map<String, Value>| !fields.contains_key(key);
    match kind {
        hookd_core::record::Kind::Data if missing("tag", &fields) => {
            let last = topic.rsplit('/').next().unwrap_or(topic);
            fields.insert("tag".into(), Value::String(last.to_owned()));
        }
        hookd_core::record::Kind::Event if missing("type", &fields) => {
            fields.insert("type".into(), Value::String(topic.to_owned()));
        }
        _ => {}
    }
    let payload = serde_json::from_slice(payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()));
    fields.insert("payload".into(), payload);
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use hookd_core::record::Kind;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_topic_s_segments_become_fields_and_the_message_the_payload() {
        let pattern = TopicPattern::parse("fleets/{fleet_id}/devices/{device_id}/{tag}").unwrap();
        let made = record(
            Some(&pattern),
            Kind::Data,
            "fleets/f1/devices/d7/temp",
            br#"{"c": 21.5}"#,
        );
        assert_eq!(
            made,
            json!({"fleet_id": "f1", "device_id": "d7", "tag": "temp", "payload": {"c": 21.5}})
        );
        let text = record(Some(&pattern), Kind::Data, "fleets/f1/devices/d7/relay", b"ON");
        assert_eq!(text["payload"], "ON", "not JSON: a string");
        let unfit = record(Some(&pattern), Kind::Data, "other/topic", b"1");
        assert_eq!(
            unfit,
            json!({"tag": "topic", "payload": 1}),
            "no device: refused when validated"
        );
        let event = record(None, Kind::Event, "plant/alarms", b"{}");
        assert_eq!(event["type"], "plant/alarms");
    }

    #[test]
    fn a_pattern_names_only_fields_a_topic_can_set() {
        assert!(
            TopicPattern::parse("a/{device_id}/{payload}")
                .unwrap_err()
                .contains("payload")
        );
        assert!(TopicPattern::parse("a/+/{tag}").is_err());
        assert!(TopicPattern::parse("a/x{tag}").is_err());
    }
}
