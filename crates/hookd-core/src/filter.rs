//! Webhook filters: which records reach a webhook.
//!
//! Each non-empty list must contain the record's value (OR within a list, AND across lists);
//! every label in `labels` must be present on the record with the same value. Empty filters
//! match every record of the webhook's kind.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::record::{Kind, RecordIn};
use crate::validation::{Fields, ValidationError};

const MAX_VALUES: usize = 1000;
/// The longest value a filter list may hold: the longest id a record may carry.
const MAX_VALUE_LEN: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub fleets: Vec<String>,
    pub tags: Vec<String>,
    pub event_types: Vec<String>,
    pub devices: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Sources (`src_…`) whose records reach the webhook; empty: records from every door.
    pub sources: Vec<String>,
}

impl Filters {
    /// Parses `filters` (absent or null means none) for a webhook of `kind`.
    pub fn parse(value: Option<&Value>, kind: Kind) -> Result<Self, ValidationError> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(Self::default());
        };
        let f = Fields::new(value, "filters")?;
        f.deny_unknown(&["fleets", "tags", "event_types", "devices", "labels", "sources"])?;
        let filters = Self {
            fleets: f.str_list("fleets")?,
            tags: f.str_list("tags")?,
            event_types: f.str_list("event_types")?,
            devices: f.str_list("devices")?,
            labels: f.str_map("labels")?,
            sources: f.str_list("sources")?,
        };
        if let Some(i) = filters.sources.iter().position(|s| !s.starts_with("src_")) {
            return Err(f.invalid(&format!("sources[{i}]"), "a source id starts with `src_`"));
        }
        if kind == Kind::Event && !filters.tags.is_empty() {
            return Err(f.invalid(
                "tags",
                "`tags` filter data points; an event webhook filters with `event_types`",
            ));
        }
        if kind == Kind::Data && !filters.event_types.is_empty() {
            return Err(f.invalid(
                "event_types",
                "`event_types` filter events; a data webhook filters with `tags`",
            ));
        }
        for (key, values) in [
            ("fleets", &filters.fleets),
            ("tags", &filters.tags),
            ("event_types", &filters.event_types),
            ("devices", &filters.devices),
            ("sources", &filters.sources),
        ] {
            if values.len() > MAX_VALUES {
                return Err(f.invalid(key, format!("at most {MAX_VALUES} values")));
            }
            for (i, value) in values.iter().enumerate() {
                let field = format!("{key}[{i}]");
                if value.trim().is_empty() {
                    return Err(f.invalid(
                        &field,
                        format!("an empty value matches nothing; to match every record, leave `{key}` empty"),
                    ));
                }
                f.check_len(&field, value, MAX_VALUE_LEN)?;
            }
        }
        if filters.labels.len() > MAX_VALUES {
            return Err(f.invalid("labels", format!("at most {MAX_VALUES} values")));
        }
        crate::record::check_labels(&f, "labels", &filters.labels)?;
        Ok(filters)
    }

    /// The filters as JSON; `sources` only when set (filters written before sources existed
    /// read the same).
    pub fn to_json(&self) -> Value {
        let mut json = json!({
            "fleets": self.fleets,
            "tags": self.tags,
            "event_types": self.event_types,
            "devices": self.devices,
            "labels": self.labels,
        });
        if !self.sources.is_empty() {
            json["sources"] = json!(self.sources);
        }
        json
    }

    /// Whether records from source `source` (`None`: from the API or hookd itself) may reach
    /// the webhook.
    pub fn admits_source(&self, source: Option<&str>) -> bool {
        self.sources.is_empty() || source.is_some_and(|s| self.sources.iter().any(|x| x == s))
    }

    pub fn matches(&self, record: &RecordIn) -> bool {
        fn allows(list: &[String], value: Option<&str>) -> bool {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v))
        }
        allows(&self.fleets, record.fleet_id())
            && allows(&self.tags, record.tag())
            && allows(&self.event_types, record.event_type())
            && allows(&self.devices, record.device_id())
            && self.labels.iter().all(|(k, v)| record.label(k) == Some(v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::record::parse_body;

    fn record(body: Value, kind: Kind) -> RecordIn {
        parse_body(body, kind, 1).unwrap().remove(0)
    }

    #[test]
    fn every_list_must_allow_the_record() {
        let filters = Filters::parse(Some(&json!({"fleets": ["f1", "f2"], "tags": ["t1"]})), Kind::Data).unwrap();
        let hit = record(
            json!({"device_id": "d", "tag": "t1", "fleet_id": "f2", "payload": 1}),
            Kind::Data,
        );
        let wrong_tag = record(
            json!({"device_id": "d", "tag": "t2", "fleet_id": "f2", "payload": 1}),
            Kind::Data,
        );
        let no_fleet = record(json!({"device_id": "d", "tag": "t1", "payload": 1}), Kind::Data);
        assert!(filters.matches(&hit));
        assert!(!filters.matches(&wrong_tag));
        assert!(!filters.matches(&no_fleet));
    }

    #[test]
    fn labels_must_all_be_equal() {
        let filters = Filters::parse(Some(&json!({"labels": {"site": "a", "line": "2"}})), Kind::Event).unwrap();
        let hit = record(
            json!({"type": "x", "payload": 1, "labels": {"site": "a", "line": "2", "x": "y"}}),
            Kind::Event,
        );
        let miss = record(json!({"type": "x", "payload": 1, "labels": {"site": "a"}}), Kind::Event);
        assert!(filters.matches(&hit));
        assert!(!filters.matches(&miss));
    }

    #[test]
    fn a_filter_for_the_other_kind_is_refused_with_its_field() {
        let err = Filters::parse(Some(&json!({"tags": ["t"]})), Kind::Event).unwrap_err();
        assert_eq!(err.field, "filters.tags");
        let err = Filters::parse(Some(&json!({"fleet": ["t"]})), Kind::Data).unwrap_err();
        assert_eq!(err.code, "unknown_field");
        let err = Filters::parse(Some(&json!({"event_types": ["x"]})), Kind::Data).unwrap_err();
        assert_eq!(err.field, "filters.event_types");
        assert!(Filters::parse(Some(&json!({"event_types": ["x"]})), Kind::Event).is_ok());
        assert!(Filters::parse(Some(&json!({"tags": ["t"]})), Kind::Data).is_ok());
    }

    #[test]
    fn lists_hold_at_most_a_thousand_values_of_256_characters() {
        let many = |n: usize| (0..n).map(|i| format!("v{i}")).collect::<Vec<_>>();
        for key in ["fleets", "devices"] {
            assert!(
                Filters::parse(Some(&json!({ key: many(1000) })), Kind::Data).is_ok(),
                "{key}"
            );
            let err = Filters::parse(Some(&json!({ key: many(1001) })), Kind::Data).unwrap_err();
            assert_eq!(err.field, format!("filters.{key}"));
        }
        let labels = |n: usize| {
            (0..n)
                .map(|i| (format!("k{i}"), json!("v")))
                .collect::<serde_json::Map<_, _>>()
        };
        assert!(Filters::parse(Some(&json!({ "labels": labels(1000) })), Kind::Data).is_ok());
        let err = Filters::parse(Some(&json!({ "labels": labels(1001) })), Kind::Data).unwrap_err();
        assert_eq!(err.field, "filters.labels");
        assert!(Filters::parse(Some(&json!({ "tags": ["t".repeat(256)] })), Kind::Data).is_ok());
        let err = Filters::parse(Some(&json!({ "tags": ["t".repeat(257)] })), Kind::Data).unwrap_err();
        assert_eq!(err.field, "filters.tags[0]");
        let err = Filters::parse(Some(&json!({ "devices": ["d", " "] })), Kind::Data).unwrap_err();
        assert_eq!(err.field, "filters.devices[1]");
    }

    #[test]
    fn filters_render_as_they_parse() {
        let given =
            json!({"fleets": ["f"], "tags": ["t"], "event_types": [], "devices": ["d"], "labels": {"site": "a"}});
        let filters = Filters::parse(Some(&given), Kind::Data).unwrap();
        assert_eq!(filters.to_json(), given);
        assert_eq!(Filters::parse(Some(&filters.to_json()), Kind::Data).unwrap(), filters);
        let from = json!({"sources": ["src_1"]});
        let filters = Filters::parse(Some(&from), Kind::Event).unwrap();
        assert_eq!(filters.to_json()["sources"], from["sources"]);
        assert!(filters.admits_source(Some("src_1")));
        assert!(
            !filters.admits_source(Some("src_2")) && !filters.admits_source(None),
            "not other doors"
        );
        assert!(Filters::default().admits_source(None) && Filters::default().admits_source(Some("src_2")));
        let err = Filters::parse(Some(&json!({"sources": ["wh_1"]})), Kind::Event).unwrap_err();
        assert_eq!(err.field, "filters.sources[0]");
    }
}
