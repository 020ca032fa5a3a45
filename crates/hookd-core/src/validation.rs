//! Field-level validation errors and a small reader for JSON objects that names the field
//! of every problem (`"[1].device_id"`, `"filters.tags[0]"`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Bad input: a stable code, the offending field's path, and a sentence for a person; and,
/// when the input had more than one problem, the others found with it (`also`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub code: &'static str,
    pub field: String,
    pub message: String,
    /// Further problems of the same input, in the order found (at most [`MAX_PROBLEMS`] in all).
    pub also: Vec<ValidationError>,
}

/// The most problems one answer names.
pub const MAX_PROBLEMS: usize = 50;

impl ValidationError {
    pub fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
            also: Vec::new(),
        }
    }

    /// The same error, its field path placed under `prefix` (`[3]` + `tag` → `[3].tag`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = join(prefix, &self.field);
        self.also = self.also.into_iter().map(|e| e.under(prefix)).collect();
        self
    }

    /// This error and every one found with it, first to last.
    pub fn all(&self) -> impl Iterator<Item = &ValidationError> {
        std::iter::once(self).chain(self.also.iter())
    }
}

/// Collects the problems of one input, so the answer can name them all rather than stop at
/// the first.
#[derive(Debug, Default)]
pub struct Problems {
    found: Vec<ValidationError>,
}

impl Problems {
    /// The value of `result`, or `None` with its error kept.
    pub fn check<T>(&mut self, result: Result<T, ValidationError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.add(err);
                None
            }
        }
    }

    pub fn add(&mut self, err: ValidationError) {
        let ValidationError {
            code,
            field,
            message,
            also,
        } = err;
        for problem in std::iter::once(ValidationError::new(code, field, message)).chain(also) {
            if self.found.len() < MAX_PROBLEMS {
                self.found.push(problem);
            }
        }
    }

    pub fn is_full(&self) -> bool {
        self.found.len() >= MAX_PROBLEMS
    }

    /// `Ok` when nothing was found; else the first problem carrying the others.
    pub fn finish(self) -> Result<(), ValidationError> {
        let mut found = self.found.into_iter();
        match found.next() {
            None => Ok(()),
            Some(mut first) => {
                first.also = found.collect();
                Err(first)
            }
        }
    }

    /// `value` when nothing was found (it is then complete), else every problem.
    pub fn and<T>(self, value: Option<T>) -> Result<T, ValidationError> {
        self.finish()?;
        value.ok_or_else(|| ValidationError::new("invalid_value", "", "the input is invalid"))
    }
}

/// Joins a path prefix and a field name: `join("", "tag") == "tag"`, `join("[1]", "tag") == "[1].tag"`.
pub fn join(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) if field.starts_with('[') => format!("{prefix}{field}"),
        (false, false) => format!("{prefix}.{field}"),
    }
}

/// Where [`Fields`] finds a field's value by its name: a JSON object, or a record's fields
/// parsed on their own.
pub trait Lookup {
    fn lookup(&self, key: &str) -> Option<&Value>;
}

impl Lookup for Map<String, Value> {
    fn lookup(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
}

/// Reads typed fields out of a JSON object, producing errors that name the field.
pub struct Fields<'a, M: ?Sized = Map<String, Value>> {
    map: &'a M,
    prefix: String,
}

impl<'a> Fields<'a> {
    pub fn new(value: &'a Value, prefix: &str) -> Result<Self, ValidationError> {
        match value {
            Value::Object(map) => Ok(Self::of(map, prefix)),
            other => Err(ValidationError::new(
                "invalid_type",
                prefix,
                format!("expected a JSON object, got {}", type_name(other)),
            )),
        }
    }

    pub fn map(&self) -> &'a Map<String, Value> {
        self.map
    }

    /// Rejects keys outside `allowed` (used where a typo would silently change behaviour).
    pub fn deny_unknown(&self, allowed: &[&str]) -> Result<(), ValidationError> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(key) => Err(ValidationError::new(
                "unknown_field",
                self.path(key),
                format!("unknown field `{key}`; expected one of: {}", allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }
}

impl<'a, M: Lookup + ?Sized> Fields<'a, M> {
    /// The fields of `map`, their paths under `prefix`.
    pub fn of(map: &'a M, prefix: &str) -> Self {
        Self {
            map,
            prefix: prefix.to_owned(),
        }
    }

    pub fn path(&self, key: &str) -> String {
        join(&self.prefix, key)
    }

    fn present(&self, key: &str) -> Option<&'a Value> {
        self.map.lookup(key).filter(|v| !v.is_null())
    }

    pub fn missing(&self, key: &str) -> ValidationError {
        ValidationError::new("missing_field", self.path(key), format!("`{key}` is required"))
    }

    pub fn invalid(&self, key: &str, message: impl Into<String>) -> ValidationError {
        ValidationError::new("invalid_value", self.path(key), message)
    }

    fn wrong_type(&self, key: &str, expected: &str, got: &Value) -> ValidationError {
        ValidationError::new(
            "invalid_type",
            self.path(key),
            format!("`{key}` must be {expected}, got {}", type_name(got)),
        )
    }

    pub fn value(&self, key: &str) -> Option<&'a Value> {
        self.present(key)
    }

    pub fn required(&self, key: &str) -> Result<&'a Value, ValidationError> {
        // `payload: null` counts as present: null is valid JSON a producer may send.
        self.map.lookup(key).ok_or_else(|| self.missing(key))
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, ValidationError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(key, "a string", other)),
        }
    }

    /// A required, non-empty string of at most `max` characters.
    pub fn req_str(&self, key: &str, max: usize) -> Result<&'a str, ValidationError> {
        let s = self.opt_str(key)?.ok_or_else(|| self.missing(key))?;
        if s.trim().is_empty() {
            return Err(self.invalid(key, format!("`{key}` must not be empty")));
        }
        self.check_len(key, s, max)?;
        Ok(s)
    }

    pub fn check_len(&self, key: &str, s: &str, max: usize) -> Result<(), ValidationError> {
        if s.chars().count() > max {
            return Err(self.invalid(key, format!("`{key}` is longer than {max} characters")));
        }
        Ok(())
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ValidationError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.wrong_type(key, "true or false", other)),
        }
    }

    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, ValidationError> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.invalid(key, format!("`{key}` must be a whole number ≥ 0"))),
            Some(other) => Err(self.wrong_type(key, "a whole number", other)),
        }
    }

    /// An optional array of strings.
    pub fn str_list(&self, key: &str) -> Result<Vec<String>, ValidationError> {
        match self.present(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(ValidationError::new(
                        "invalid_type",
                        format!("{}[{i}]", self.path(key)),
                        format!("expected a string, got {}", type_name(other)),
                    )),
                })
                .collect(),
            Some(other) => Err(self.wrong_type(key, "an array of strings", other)),
        }
    }

    /// An optional object of string → string.
    pub fn str_map(&self, key: &str) -> Result<BTreeMap<String, String>, ValidationError> {
        match self.present(key) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(ValidationError::new(
                        "invalid_type",
                        format!("{}.{k}", self.path(key)),
                        format!("expected a string, got {}", type_name(other)),
                    )),
                })
                .collect(),
            Some(other) => Err(self.wrong_type(key, "an object of strings", other)),
        }
    }
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The path of the first array or object nested deeper than `max` levels (the outermost is
/// level 1), if any: `{"a": {"b": [1]}}` is 3 levels deep; over 2 the answer is `a.b`.
pub fn too_deep(value: &Value, max: usize) -> Option<String> {
    fn walk(value: &Value, level: usize, max: usize, path: &str) -> Option<String> {
        if !(value.is_array() || value.is_object()) {
            return None;
        }
        if level > max {
            return Some(path.to_owned());
        }
        match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(v, level + 1, max, &join(path, &format!("[{i}]")))),
            Value::Object(map) => map.iter().find_map(|(k, v)| walk(v, level + 1, max, &join(path, k))),
            _ => None,
        }
    }
    walk(value, 1, max, "")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_join_fields_and_indexes() {
        assert_eq!(join("", "tag"), "tag");
        assert_eq!(join("[1]", "tag"), "[1].tag");
        assert_eq!(join("filters", "[0]"), "filters[0]");
        assert_eq!(join("filters", ""), "filters");
        let err = ValidationError::new("c", "tag", "m").under("[3]");
        assert_eq!(err.field, "[3].tag");
    }

    #[test]
    fn a_body_names_at_most_fifty_problems() {
        let mut problems = Problems::default();
        for i in 0..60 {
            problems.add(ValidationError::new("c", format!("f{i}"), "m"));
            assert_eq!(problems.is_full(), i + 1 >= MAX_PROBLEMS, "after {} problems", i + 1);
        }
        let err = problems.finish().unwrap_err();
        assert_eq!(err.all().count(), MAX_PROBLEMS);
        assert_eq!(err.field, "f0");
        assert_eq!(err.also.last().unwrap().field, "f49");
        assert_eq!(Problems::default().finish(), Ok(()));
    }

    #[test]
    fn fields_are_read_with_their_type_and_length_named() {
        let body = json!({"s": "abc", "n": 3, "b": true, "a": [1], "o": {}, "z": null});
        let f = Fields::new(&body, "").unwrap();
        assert_eq!(f.required("z").unwrap(), &Value::Null, "null is present");
        let missing = f.required("nope").unwrap_err();
        assert_eq!((missing.code, missing.field.as_str()), ("missing_field", "nope"));
        assert!(f.check_len("s", "abc", 3).is_ok());
        assert_eq!(f.check_len("s", "abcd", 3).unwrap_err().field, "s");
        assert_eq!(f.check_len("s", "ééé", 3), Ok(()), "characters, not bytes");
        for (key, got) in [
            ("n", "a number"),
            ("b", "a boolean"),
            ("a", "an array"),
            ("o", "an object"),
        ] {
            let err = f.opt_str(key).unwrap_err();
            assert_eq!(err.message, format!("`{key}` must be a string, got {got}"));
        }
        assert_eq!(
            f.opt_u64("s").unwrap_err().message,
            "`s` must be a whole number, got a string"
        );
        assert_eq!(
            Fields::new(&json!(null), "x").err().unwrap().message,
            "expected a JSON object, got null"
        );
    }

    #[test]
    fn too_deep_names_the_first_value_past_the_limit() {
        let value = json!([{ "device_id": "d", "payload": { "a": { "b": [1] } } }]);
        assert_eq!(too_deep(&value, 5), None);
        assert_eq!(too_deep(&value, 4).as_deref(), Some("[0].payload.a.b"));
        assert_eq!(too_deep(&value, 1).as_deref(), Some("[0]"));
        assert_eq!(too_deep(&json!(7), 0), None);
    }
}
