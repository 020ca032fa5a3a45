//! Records read from a body's JSON text without building a tree of each one: the fields
//! hookd reads ([`READ`]) are parsed and validated as [`parse_body`](super::parse_body) does, every other field
//! (the payload above all) is checked as JSON and kept as its text, with the whitespace
//! outside strings dropped. A record whose text has one of hookd's stamped fields, or one
//! of the fields it reads twice, is parsed as a value instead, so what is kept of it is
//! what [`parse_body`](super::parse_body) keeps.
//!
//! What reaches a receiver is the producer's own text: numbers and string escapes as they
//! were written (`1.50`, `"\u00e9"`), not as a value would write them again (`1.5`, `"é"`).

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, de};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Kind, READ, ReadFields, RecordIn, STAMPED, check_record, parse_record, records_of};
use crate::validation::{Fields, Lookup, ValidationError};

/// Parses an ingest body given as JSON text, as [`parse_body`](super::parse_body) parses its value. `None`
/// when the text is not JSON, is neither an object nor an array of `1..=max` items, or
/// nests deeper than `max_depth` (the outermost array or object is level 1): the caller
/// then parses it as a value, whose errors say what is wrong, in the order they always did.
pub fn parse_body_text(
    text: &str,
    kind: Kind,
    max: usize,
    max_depth: usize,
) -> Option<Result<Vec<RecordIn>, ValidationError>> {
    match text.trim_start_matches([' ', '\t', '\n', '\r']).as_bytes().first()? {
        b'[' => {
            let items: Vec<&RawValue> = serde_json::from_str(text).ok()?;
            if items.is_empty() || items.len() > max {
                return None;
            }
            let read: Vec<Item> = items
                .iter()
                .map(|item| Item::read(compact(item.get(), max_depth.checked_sub(1)?)?))
                .collect::<Option<_>>()?;
            Some(records_of(read, max, |item, prefix| item.check(kind, prefix)))
        }
        b'{' => {
            let item: &RawValue = serde_json::from_str(text).ok()?;
            let item = Item::read(compact(item.get(), max_depth)?)?;
            Some(item.check(kind, "").map(|record| vec![record]))
        }
        _ => None,
    }
}

/// One record of the body, read.
enum Item {
    /// An object's fields hookd reads, and its compact text.
    Read(Checked, String),
    /// Anything else: parsed as a value, as [`parse_body`](super::parse_body) takes it.
    Value(Value),
}

impl Item {
    /// `None` when the value parse refuses the text (what [`compact`] checks for is all
    /// that a value refuses and the splitting parse accepts; this is the net behind it).
    fn read(json: String) -> Option<Self> {
        if json.starts_with('{')
            && let Read(Some(checked)) = serde_json::from_str(&json).ok()?
        {
            return Some(Self::Read(checked, json));
        }
        serde_json::from_str(&json).ok().map(Self::Value)
    }

    fn check(self, kind: Kind, prefix: &str) -> Result<RecordIn, ValidationError> {
        match self {
            Self::Read(checked, json) => {
                check_record(&Fields::of(&checked, prefix), kind)?;
                Ok(RecordIn {
                    kind,
                    read: checked.fields,
                    json,
                })
            }
            Self::Value(value) => parse_record(value, kind, prefix),
        }
    }
}

/// A record object's fields named in [`READ`], and whether it has a `payload` (required,
/// and kept as sent).
struct Checked {
    fields: ReadFields,
    payload: bool,
}

impl Lookup for Checked {
    fn lookup(&self, key: &str) -> Option<&Value> {
        const PRESENT: Value = Value::Null;
        match key {
            PAYLOAD => self.payload.then_some(&PRESENT),
            _ => self.fields.lookup(key),
        }
    }
}

const PAYLOAD: &str = "payload";

/// A record object's [`Checked`] fields, or `None` when it has a stamped field or a field
/// of [`READ`] or `payload` twice.
struct Read(Option<Checked>);

impl<'de> Deserialize<'de> for Read {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ReadVisitor)
    }
}

struct ReadVisitor;

impl<'de> Visitor<'de> for ReadVisitor {
    type Value = Read;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Read, A::Error> {
        let mut read = Checked {
            fields: ReadFields(Vec::with_capacity(READ.len())),
            payload: false,
        };
        let mut plain = true;
        while let Some(key) = map.next_key::<Key>()? {
            let first = match key {
                Key::Read(place) => read.fields.set(place, map.next_value()?),
                Key::Payload => {
                    map.next_value::<IgnoredAny>()?;
                    !std::mem::replace(&mut read.payload, true)
                }
                Key::Stamped => {
                    map.next_value::<IgnoredAny>()?;
                    false
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    true
                }
            };
            plain &= first;
        }
        Ok(Read(plain.then_some(read)))
    }
}

/// What a record's key is to hookd.
enum Key {
    /// Its place in [`READ`].
    Read(usize),
    Payload,
    Stamped,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(if let Some(place) = READ.iter().position(|name| *name == key) {
            Key::Read(place)
        } else if key == PAYLOAD {
            Key::Payload
        } else if STAMPED.contains(&key) {
            Key::Stamped
        } else {
            Key::Other
        })
    }
}

/// `json` (one value, valid JSON) without the whitespace outside its strings; `None` when
/// its arrays and objects nest deeper than `max_depth`, or it holds what the value parse
/// refuses though the grammar allows it (so refused here too): a number beyond a double's
/// range (`1e400`), or a `\u` escape of half a surrogate pair (`"\ud800"`).
fn compact(json: &str, max_depth: usize) -> Option<String> {
    let bytes = json.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let (mut depth, mut i) = (0, 0);
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            b'"' => {
                // Through the closing quote, escaped quotes and all.
                let start = i - 1;
                let mut unicode = false;
                while let Some(at) = memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                    i += at + 1;
                    if bytes[i - 1] == b'"' {
                        break;
                    }
                    unicode |= bytes.get(i) == Some(&b'u');
                    i += 1;
                }
                let string = &bytes[start..i];
                // A `\u` escape may be half a surrogate pair, which the value parse refuses.
                if unicode && serde_json::from_slice::<String>(string).is_err() {
                    return None;
                }
                out.extend_from_slice(string);
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return None;
                }
                out.push(b);
            }
            b'}' | b']' => {
                depth -= 1;
                out.push(b);
            }
            b'-' | b'0'..=b'9' => {
                let start = i - 1;
                while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') = bytes.get(i) {
                    i += 1;
                }
                let number = &bytes[start..i];
                // Only an exponent or over 308 characters can leave a double's range.
                let may_overflow = number.len() > 308 || number.iter().any(|b| matches!(b, b'e' | b'E'));
                if may_overflow && serde_json::from_slice::<serde_json::Number>(number).is_err() {
                    return None;
                }
                out.extend_from_slice(number);
            }
            _ => out.push(b),
        }
    }
    // Only ASCII whitespace was left out of valid UTF-8.
    Some(String::from_utf8(out).expect("JSON text is UTF-8"))
}

#[cfg(test)]
mod tests;
