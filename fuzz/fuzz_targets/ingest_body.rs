//! Ingest bodies: any bytes a producer sends, parsed as hookd's API does (JSON, the depth
//! check, then records of either kind), and every accepted record stamped and matched. A
//! body read from its text reads as the same body parsed as a value: the same records (their
//! stamped JSON the same value but for a float's last digit, their fields read the same) or
//! the same errors.
#![no_main]

use hookd_core::filter::Filters;
use hookd_core::record::{Kind, RecordIn, parse_body, parse_body_text};
use hookd_core::validation::too_deep;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const MAX_RECORDS: usize = 1000;
const MAX_DEPTH: usize = 32;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        for kind in [Kind::Data, Kind::Event] {
            let read = parse_body_text(text, kind, MAX_RECORDS, MAX_DEPTH);
            assert!(
                read.is_none(),
                "what the value parse refuses is left to it, for its error"
            );
        }
        return;
    };
    let within_depth = too_deep(&body, MAX_DEPTH).is_none();
    let readable = match &body {
        Value::Object(_) => true,
        Value::Array(items) => (1..=MAX_RECORDS).contains(&items.len()),
        _ => false,
    };
    for kind in [Kind::Data, Kind::Event] {
        let from_value = parse_body(body.clone(), kind, MAX_RECORDS);
        let from_text = parse_body_text(text, kind, MAX_RECORDS, MAX_DEPTH);
        assert_eq!(from_text.is_some(), readable && within_depth, "read as text");
        if let Some(from_text) = from_text {
            match (&from_text, &from_value) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.len(), b.len());
                    for (a, b) in a.iter().zip(b) {
                        let ((a_json, a_reads), (b_json, b_reads)) = (reads(a), reads(b));
                        assert_eq!(a_reads, b_reads);
                        assert!(same(&a_json, &b_json), "{a_json} / {b_json}");
                    }
                }
                (a, b) => assert_eq!(a.as_ref().err(), b.as_ref().err()),
            }
        }
        if let Ok(records) = from_value {
            let filters = Filters::parse(None, kind).expect("no filters is a valid filter");
            for record in &records {
                assert!(filters.matches(record));
            }
        }
    }
});

/// A record's stamped JSON as a value, and what hookd reads of it.
fn reads(record: &RecordIn) -> (Value, impl PartialEq + std::fmt::Debug) {
    let stamped = record.stamp("rec_1", "ws_1", "2026-01-01T00:00:00.000Z");
    let stamped: Value = serde_json::from_str(&stamped).expect("a stamped record is JSON");
    let read = (
        record.kind,
        record.device_id().map(str::to_owned),
        record.fleet_id().map(str::to_owned),
        record.tag().map(str::to_owned),
        record.event_type().map(str::to_owned),
        record.device_time(),
        record.label("site").map(str::to_owned),
    );
    (stamped, read)
}

/// The same JSON, but for the last digit of a float: the producer's digits parsed once can
/// differ there from the same digits parsed, written shortest and parsed again.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
