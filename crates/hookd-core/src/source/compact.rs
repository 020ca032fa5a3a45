//! JSON written as Python's `json.dumps(value, separators=(",", ":"))` writes it: no spaces,
//! keys in their order, non-ASCII characters as `\uXXXX` escapes, floats as Python's `repr`.
//! The robot site manager's validator signs that form of the body.

use serde_json::Value;

/// `body` parsed and written compactly the Python way; `None` when it is not JSON.
pub fn python_compact(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let mut out = String::with_capacity(body.len());
    write(&value, &mut out);
    Some(out)
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&python_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(key, out);
                out.push(':');
                write(item, out);
            }
            out.push('}');
        }
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float as Python's `repr`: the shortest digits that read back the same, fixed-point for
/// exponents from -4 to 15 (always with a fraction), else `d.ddde±XX`.
fn python_float(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{text}")
    } else {
        let fraction = if digits.len() > 1 {
            format!(".{}", &digits[1..])
        } else {
            String::new()
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{}{fraction}e{exp_sign}{:02}", &digits[..1], exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_as_python_json_dumps_with_compact_separators() {
        // Expected values are what CPython 3 prints for json.dumps(json.loads(x), separators=(",", ":")).
        let cases = [
            (r#"{"a": 1, "b": [true, null, "x"]}"#, r#"{"a":1,"b":[true,null,"x"]}"#),
            (r#"{"z": 1.0, "a": 0.5}"#, r#"{"z":1.0,"a":0.5}"#),
            (r#"{"t": "Zürich ✓ 😀"}"#, r#"{"t":"Z\u00fcrich \u2713 \ud83d\ude00"}"#),
            (
                r#"[1e16, 1e-5, 123.456, 1e-4, 2.5e+20, -0.0001]"#,
                r#"[1e+16,1e-05,123.456,0.0001,2.5e+20,-0.0001]"#,
            ),
            (r#""tab\tquote\"back\\""#, r#""tab\tquote\"back\\""#),
        ];
        for (input, expected) in cases {
            assert_eq!(python_compact(input.as_bytes()).as_deref(), Some(expected), "{input}");
        }
        assert_eq!(python_compact(b"not json"), None);
    }
}
