//! Reading a request body as a JSON value: JSON, a form, or text.

use serde_json::{Map, Value};

/// A body that is not what its content type says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub String);

/// The body as JSON, by its content type:
/// - JSON (`application/json`, `…+json`, or no content type): parsed;
/// - `application/x-www-form-urlencoded`: a form whose one key is JSON with no value (a
///   controller posting its JSON array as the form's key) is that JSON; else an object of its
///   fields (a field given more than once: an array of its values);
/// - `text/plain`: the text, as a JSON string.
///
/// An empty body is `null` (a GET carries its data in the query and headers).
pub fn read_body(content_type: Option<&str>, body: &[u8]) -> Result<Value, BodyError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    let media = media_type(content_type);
    let text = || std::str::from_utf8(body).map_err(|_| BodyError("the body is not UTF-8 text".into()));
    match media.as_str() {
        "application/x-www-form-urlencoded" => Ok(form(text()?)),
        "text/plain" => Ok(Value::String(text()?.to_owned())),
        _ => serde_json::from_slice(body).map_err(|e| {
            let kind = if media.is_empty() {
                "no content type".to_owned()
            } else {
                format!("content type {media}")
            };
            BodyError(format!("the body is not JSON ({kind}): {e}"))
        }),
    }
}

/// A `Content-Type`'s media type, lower-case, without parameters (`""` when there is none).
pub fn media_type(content_type: Option<&str>) -> String {
    content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn form(text: &str) -> Value {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes()).into_owned().collect();
    if let [(key, value)] = pairs.as_slice()
        && value.is_empty()
        && let Ok(json) = serde_json::from_str::<Value>(key)
        && (json.is_array() || json.is_object())
    {
        return json;
    }
    let mut map = Map::new();
    for (key, value) in pairs {
        match map.get_mut(&key) {
            None => {
                map.insert(key, Value::String(value));
            }
            Some(Value::Array(values)) => values.push(Value::String(value)),
            Some(first) => {
                let first = first.take();
                map.insert(key, Value::Array(vec![first, Value::String(value)]));
            }
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_json_forms_and_text() {
        assert_eq!(read_body(Some("application/json"), br#"{"a":1}"#), Ok(json!({"a": 1})));
        assert_eq!(read_body(None, b"[1,2]"), Ok(json!([1, 2])));
        assert_eq!(read_body(Some("application/json"), b""), Ok(Value::Null));
        let plc = "%5B%7B%22dev%22%3A%22relay%22%2C%22circuit%22%3A%221_03%22%7D%5D";
        assert_eq!(
            read_body(Some("application/x-www-form-urlencoded"), plc.as_bytes()),
            Ok(json!([{"dev": "relay", "circuit": "1_03"}])),
            "a form whose one key is JSON"
        );
        assert_eq!(
            read_body(
                Some("application/x-www-form-urlencoded; charset=utf-8"),
                b"a=1&b=x+y&a=2"
            ),
            Ok(json!({"a": ["1", "2"], "b": "x y"}))
        );
        assert_eq!(read_body(Some("text/plain"), b"on"), Ok(json!("on")));
        assert!(
            read_body(Some("application/json"), b"{")
                .unwrap_err()
                .0
                .contains("not JSON")
        );
        assert!(read_body(Some("text/plain"), &[0xff]).is_err());
    }
}
