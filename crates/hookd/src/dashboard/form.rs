//! Forms of API bodies: their fields (every field of the API's webhook and source bodies),
//! how each is shown filled from what the API shows, and how a submitted form becomes the
//! API's JSON body, so creating and changing go through the same validation as the API.

use std::collections::BTreeMap;

use hookd_core::ValidationError;
use serde::Serialize;
use serde_json::{Map, Value};

use super::Fields;

/// How a field is entered.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Input {
    Text,
    Number,
    /// One of these values.
    Choice(&'static [&'static str]),
    /// A checkbox (the form sends it only when checked).
    Check,
    /// Comma-separated values: a JSON array.
    List,
    /// `name: value` lines: a JSON object of strings.
    Pairs,
    /// Free text over several lines (a jq program, a PEM certificate).
    Long,
    /// A credential: never shown; left empty, it keeps what is set.
    Secret,
}

/// One field of the form: its API path (`filters.fleets`), label and help.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Field {
    pub(super) name: &'static str,
    pub(super) label: &'static str,
    pub(super) input: Input,
    pub(super) help: &'static str,
    pub(super) group: &'static str,
    /// The API has no default for it.
    pub(super) required: bool,
}

const fn field(
    group: &'static str,
    name: &'static str,
    label: &'static str,
    input: Input,
    help: &'static str,
) -> Field {
    Field {
        name,
        label,
        input,
        help,
        group,
        required: false,
    }
}

/// A field the API requires.
const fn required(
    group: &'static str,
    name: &'static str,
    label: &'static str,
    input: Input,
    help: &'static str,
) -> Field {
    Field {
        required: true,
        ..field(group, name, label, input, help)
    }
}

/// Every field of the webhook body, in form order and by group.
pub(super) const WEBHOOK_FIELDS: [Field; 27] = [
    required("Receiver", "name", "Name", Input::Text, "What you call it."),
    required(
        "Receiver",
        "kind",
        "Kind",
        Input::Choice(&["data", "event"]),
        "Data points or events.",
    ),
    required(
        "Receiver",
        "url",
        "URL",
        Input::Text,
        "http:// or https://, where deliveries go.",
    ),
    field(
        "Receiver",
        "method",
        "Method",
        Input::Choice(&["POST", "GET"]),
        "GET sends no body.",
    ),
    field(
        "Receiver",
        "enabled",
        "Enabled",
        Input::Check,
        "Disabled webhooks hold their deliveries.",
    ),
    field(
        "Receiver",
        "token",
        "Token",
        Input::Secret,
        "Sent in the token header. Leave empty to keep the one set.",
    ),
    field(
        "Receiver",
        "token_header",
        "Token header",
        Input::Text,
        "Default X-AUTH-TOKEN.",
    ),
    field(
        "Receiver",
        "headers",
        "Extra headers",
        Input::Pairs,
        "One `Name: value` per line; values may use {{device_id}}, {{labels.site}}, {{payload.x}}.",
    ),
    field(
        "Receiver",
        "query",
        "Query parameters",
        Input::Pairs,
        "One `name: value` per line, templated like headers.",
    ),
    field(
        "Filters",
        "filters.fleets",
        "Fleets",
        Input::List,
        "Comma-separated; empty matches every fleet.",
    ),
    field(
        "Filters",
        "filters.tags",
        "Tags",
        Input::List,
        "Data webhooks: comma-separated tags.",
    ),
    field(
        "Filters",
        "filters.event_types",
        "Event types",
        Input::List,
        "Event webhooks: comma-separated types.",
    ),
    field(
        "Filters",
        "filters.devices",
        "Devices",
        Input::List,
        "Comma-separated device ids.",
    ),
    field(
        "Filters",
        "filters.labels",
        "Labels",
        Input::Pairs,
        "One `name: value` per line; every one must be equal.",
    ),
    field(
        "Filters",
        "filters.sources",
        "Sources",
        Input::List,
        "Only records from these sources (src_…).",
    ),
    field(
        "Filters",
        "condition",
        "Condition",
        Input::Long,
        "A jq program; a record matches when it yields true, e.g. .payload.temp > 80",
    ),
    field(
        "Batching and pacing",
        "format",
        "Format",
        Input::Choice(&["batch", "single"]),
        "batch: a JSON array per request; single: one record per request.",
    ),
    field(
        "Batching and pacing",
        "batch_max",
        "Batch size",
        Input::Number,
        "Records per batch, 1–1000; default 100.",
    ),
    field(
        "Batching and pacing",
        "batch_window",
        "Batch window",
        Input::Text,
        "Wait this long for more records (e.g. 2s); default 0s.",
    ),
    field(
        "Batching and pacing",
        "min_interval",
        "Debounce interval",
        Input::Text,
        "At most one delivery per device per interval (e.g. 1s); default 0s.",
    ),
    field(
        "Batching and pacing",
        "coalesce",
        "Coalesce",
        Input::Choice(&["latest", "all"]),
        "What a debounced delivery carries.",
    ),
    field(
        "Batching and pacing",
        "ordering",
        "Ordering",
        Input::Choice(&["none", "device"]),
        "device: one delivery at a time per device, in order.",
    ),
    field(
        "Delivery",
        "timeout",
        "Timeout",
        Input::Text,
        "Per attempt; default 30s.",
    ),
    field(
        "Delivery",
        "retry_schedule",
        "Retry schedule",
        Input::List,
        "Delays after the first attempt, e.g. 5s, 5m, 30m.",
    ),
    field(
        "TLS",
        "tls.ca",
        "Trusted CA (PEM)",
        Input::Long,
        "Certificates to trust as issuers, besides the public roots.",
    ),
    field(
        "TLS",
        "tls.client_cert",
        "Client certificate (PEM)",
        Input::Long,
        "For mutual TLS; needs the key.",
    ),
    field(
        "TLS",
        "tls.client_key",
        "Client key (PEM)",
        Input::Secret,
        "Stored sealed, never shown. Leave empty to keep the one set.",
    ),
];

/// The workspace form.
pub(super) const WORKSPACE_FIELDS: [Field; 1] =
    [required("Workspace", "name", "Name", Input::Text, "What you call it.")];

/// Every field of the source body, in form order.
pub(super) const SOURCE_FIELDS: [Field; 12] = [
    required("Source", "name", "Name", Input::Text, "What you call it."),
    required(
        "Source",
        "scheme",
        "Verification",
        Input::Choice(&[
            "token",
            "basic",
            "hmac",
            "standard_webhooks",
            "github",
            "stripe",
            "slack",
            "shopify",
            "orbit",
            "none",
        ]),
        "How each request is verified.",
    ),
    field(
        "Source",
        "secret",
        "Secret",
        Input::Secret,
        "The shared secret (basic: user:password).",
    ),
    field(
        "Source",
        "header",
        "Header",
        Input::Text,
        "token: the token's header (default X-AUTH-TOKEN); hmac: the signature header.",
    ),
    field(
        "Source",
        "query",
        "Query parameter",
        Input::Text,
        "token: read the token from this query parameter instead.",
    ),
    field(
        "Source",
        "tolerance",
        "Timestamp tolerance",
        Input::Text,
        "How far a signed timestamp may be from now; default 5m.",
    ),
    field(
        "Records",
        "record_type",
        "Record type",
        Input::Choice(&["event", "data"]),
        "What each item becomes.",
    ),
    field(
        "Records",
        "split",
        "Split (jq)",
        Input::Long,
        "The items a request carries; default: the body, once.",
    ),
    field(
        "Records",
        "transform",
        "Transform (jq)",
        Input::Long,
        "Each item's payload; default: the item.",
    ),
    field(
        "Records",
        "fields",
        "Fields (jq)",
        Input::Pairs,
        "One `field: program` per line, e.g. `type: .event`, `device_id: .device.id`.",
    ),
    field(
        "Requests",
        "methods",
        "Methods",
        Input::List,
        "Default POST; PUT and GET allowed.",
    ),
    field(
        "Requests",
        "response_status",
        "Answer status",
        Input::Number,
        "200, 202 (default) or 204.",
    ),
];

/// The fields by group, in form order: what the templates lay out as fieldsets.
pub(super) fn grouped(fields: &[Field]) -> Vec<(&'static str, Vec<Field>)> {
    let mut groups: Vec<(&'static str, Vec<Field>)> = Vec::new();
    for f in fields {
        match groups.last_mut() {
            Some((group, items)) if *group == f.group => items.push(*f),
            _ => groups.push((f.group, vec![*f])),
        }
    }
    groups
}

/// Whether the form creates (empty fields are left out) or changes (empty fields go back to
/// their defaults, except credentials, which are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    Create,
    Change,
}

/// The API body a submitted form of `fields` stands for.
pub(super) fn body(fields: &[Field], form: &Fields, purpose: Purpose) -> Value {
    let mut body = Map::new();
    for f in fields {
        let raw = form.get(f.name).map(|v| v.trim()).unwrap_or("");
        let value = match f.input {
            Input::Check => Some(Value::Bool(!raw.is_empty())),
            // Within a group (`filters.…`, `tls.…`) an empty field is left out: the group is
            // sent whole, replacing what is set.
            _ if raw.is_empty() => match (purpose, f.input) {
                (Purpose::Change, Input::Secret) | (Purpose::Create, _) => None,
                (Purpose::Change, _) if f.name.contains('.') => None,
                (Purpose::Change, _) => Some(Value::Null),
            },
            Input::Number => Some(
                raw.parse::<u64>()
                    .map_or_else(|_| Value::String(raw.to_owned()), Value::from),
            ),
            Input::List => Some(Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| Value::String(v.to_owned()))
                    .collect(),
            )),
            Input::Pairs => Some(Value::Object(pairs(raw))),
            Input::Choice(_) if f.name == "method" => Some(Value::String(raw.to_ascii_uppercase())),
            _ => Some(Value::String(raw.to_owned())),
        };
        if let Some(value) = value {
            set(&mut body, f.name, value);
        }
    }
    // A group left wholly empty on a change goes back to its default.
    if purpose == Purpose::Change {
        let groups = fields
            .iter()
            .filter_map(|f| f.name.split_once('.').map(|(group, _)| group));
        for group in groups {
            if !body.contains_key(group) {
                body.insert(group.to_owned(), Value::Null);
            }
        }
    }
    Value::Object(body)
}

/// `name: value` lines (or `name=value`) as an object.
fn pairs(raw: &str) -> Map<String, Value> {
    raw.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (name, value) = line.split_once(':').or_else(|| line.split_once('='))?;
            Some((name.trim().to_owned(), Value::String(value.trim().to_owned())))
        })
        .filter(|(name, _)| !name.is_empty())
        .collect()
}

/// Sets `value` at a dotted `path`, making the objects on the way.
fn set(body: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            body.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let inner = body.entry(head.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = inner {
                set(inner, rest, value);
            }
        }
    }
}

/// The form's values for a thing as the API shows it (credentials left empty).
pub(super) fn values(fields: &[Field], shown: &Value) -> BTreeMap<&'static str, String> {
    let mut values = BTreeMap::new();
    for f in fields {
        let found = f.name.split('.').try_fold(shown, |v, key| v.get(key));
        let text = match (f.input, found) {
            (Input::Secret, _) | (_, None | Some(Value::Null)) => String::new(),
            (Input::Check, Some(v)) => {
                if v.as_bool() == Some(true) {
                    "on".into()
                } else {
                    String::new()
                }
            }
            (Input::List, Some(Value::Array(items))) => {
                items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
            }
            (Input::Pairs, Some(Value::Object(map))) => map
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("\n"),
            (_, Some(Value::String(s))) if f.name == "method" => s.to_ascii_uppercase(),
            (_, Some(Value::String(s))) => s.clone(),
            (_, Some(other)) => other.to_string(),
        };
        values.insert(f.name, text);
    }
    values
}

/// The values a submitted form had, to show it again with its errors.
pub(super) fn submitted(fields: &[Field], form: &Fields) -> BTreeMap<&'static str, String> {
    fields
        .iter()
        .map(|f| match f.input {
            Input::Secret => (f.name, String::new()),
            _ => (f.name, form.get(f.name).cloned().unwrap_or_default()),
        })
        .collect()
}

/// A validation error's messages by the form field they belong to: the field whose name
/// its path starts with (`filters.fleets[0]` → `filters.fleets`), or `""` for the form.
pub(super) fn errors_by_field(fields: &[Field], err: &ValidationError) -> BTreeMap<String, Vec<String>> {
    let mut by_field: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for problem in err.all() {
        let field = problem
            .field
            .split(['[', '.'])
            .scan(String::new(), |path, part| {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(part);
                Some(path.clone())
            })
            .filter(|path| fields.iter().any(|f| f.name == path))
            .last()
            .unwrap_or_default();
        by_field.entry(field).or_default().push(problem.message.clone());
    }
    by_field
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_create_form_leaves_empty_fields_out_and_shapes_lists_pairs_and_groups() {
        let body = body(
            &WEBHOOK_FIELDS,
            &form(&[
                ("name", "plant 3"),
                ("kind", "data"),
                ("url", "http://127.0.0.1:9/"),
                ("method", "post"),
                ("enabled", "on"),
                ("headers", "X-Site: {{labels.site}}\nbad line\n"),
                ("filters.fleets", "flt-1, flt-2,"),
                ("batch_max", "10"),
                ("condition", ""),
            ]),
            Purpose::Create,
        );
        assert_eq!(
            body,
            json!({
                "name": "plant 3", "kind": "data", "url": "http://127.0.0.1:9/", "method": "POST",
                "enabled": true, "headers": {"X-Site": "{{labels.site}}"},
                "filters": {"fleets": ["flt-1", "flt-2"]}, "batch_max": 10
            })
        );
    }

    #[test]
    fn a_change_resets_emptied_fields_and_keeps_credentials() {
        let body = body(
            &WEBHOOK_FIELDS,
            &form(&[("name", "n"), ("condition", " ")]),
            Purpose::Change,
        );
        assert_eq!(body["condition"], Value::Null, "emptied: back to the default");
        assert_eq!(body["enabled"], json!(false), "an unchecked box is sent as false");
        assert!(body.get("token").is_none(), "an empty token keeps the one set");
        assert_eq!(body["filters"], Value::Null, "a group left empty: back to the default");
        assert_eq!(body["tls"], Value::Null);
        let body = super::body(&WEBHOOK_FIELDS, &form(&[("filters.tags", "t")]), Purpose::Change);
        assert_eq!(
            body["filters"],
            json!({"tags": ["t"]}),
            "a group is sent whole, its empty fields left out"
        );
    }

    #[test]
    fn a_webhook_fills_the_form_it_came_from() {
        let shown = json!({
            "name": "n", "kind": "event", "method": "get", "enabled": true, "token_header": "X",
            "headers": {"A": "1"}, "filters": {"devices": ["d1", "d2"]}, "batch_max": 100, "tls": {"ca": null}
        });
        let values = values(&WEBHOOK_FIELDS, &shown);
        assert_eq!(values["method"], "GET");
        assert_eq!(values["enabled"], "on");
        assert_eq!(values["headers"], "A: 1");
        assert_eq!(values["filters.devices"], "d1, d2");
        assert_eq!(values["batch_max"], "100");
        assert_eq!(values["tls.ca"], "");
        assert_eq!(values["token"], "", "never shown");
    }

    #[test]
    fn errors_land_on_the_field_they_name() {
        let mut err = ValidationError::new("invalid", "filters.fleets[0]", "bad fleet");
        err.also.push(ValidationError::new("invalid", "url", "bad url"));
        err.also.push(ValidationError::new("invalid", "", "bad body"));
        let by_field = errors_by_field(&WEBHOOK_FIELDS, &err);
        assert_eq!(by_field["filters.fleets"], ["bad fleet"]);
        assert_eq!(by_field["url"], ["bad url"]);
        assert_eq!(by_field[""], ["bad body"]);
    }
}
