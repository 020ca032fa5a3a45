//! Templates in a webhook's `headers` and `query` values: `{{device_id}}`, `{{labels.site}}`,
//! `{{payload.x}}`, `{{type}}` take the value from the delivery's first record.
//!
//! A placeholder is `{{` a dotted path `}}`, each part letters, digits, `_` or `-`, spaces
//! allowed inside the braces. Its syntax is checked when the webhook is made; at delivery, a
//! path the record does not have renders empty, never an error.

use serde_json::Value;

/// Why a template is refused: the first malformed placeholder.
pub fn check(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(len) = after.find("}}") else {
            return Err(format!("`{{{{` at `{}` is not closed by `}}}}`", &rest[start..]));
        };
        let path = after[..len].trim();
        let part_ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !path.split('.').all(part_ok) {
            return Err(format!(
                "`{{{{{}}}}}` is not a placeholder: write a record field or a dotted path, like {{{{device_id}}}}, {{{{labels.site}}}} or {{{{payload.x}}}}",
                &after[..len]
            ));
        }
        rest = &after[len + 2..];
    }
    Ok(())
}

/// `template` with each placeholder replaced by the value at its path in `record` (a string as
/// it is, `null` or a missing path as nothing, anything else as JSON).
pub fn render(template: &str, record: Option<&Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else { break };
        out.push_str(&rest[..start]);
        let path = rest[start + 2..start + 2 + len].trim();
        if let Some(value) = record.and_then(|r| lookup(r, path)) {
            match value {
                Value::String(s) => out.push_str(s),
                Value::Null => {}
                other => out.push_str(&other.to_string()),
            }
        }
        rest = &rest[start + 2 + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The value at a dotted path (`labels.org_name`) in a JSON object.
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |current, part| current.get(part))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn placeholders_render_from_the_record_and_missing_ones_render_empty() {
        let record = json!({"device_id": "arm-1", "labels": {"site": "plant 3"}, "payload": {"n": 7, "gone": null}});
        assert_eq!(
            render(
                "{{device_id}}/{{ labels.site }}/{{payload.n}}/{{payload.gone}}/{{nope.x}}",
                Some(&record)
            ),
            "arm-1/plant 3/7//"
        );
        assert_eq!(render("fixed {{device_id}}", None), "fixed ");
    }

    #[test]
    fn malformed_placeholders_are_refused_and_plain_text_is_not() {
        assert_eq!(check("Bearer abc"), Ok(()));
        assert_eq!(check("{{device_id}}-{{ labels.site-name }}"), Ok(()));
        for bad in [
            "{{device_id",
            "{{}}",
            "{{ payload..x }}",
            "{{$device}}",
            "{{ a b }}",
            "{{labels.}}",
        ] {
            assert!(check(bad).is_err(), "{bad} should be refused");
        }
        assert!(check("{{device_id").unwrap_err().contains("not closed"));
    }
}
