use serde_json::{Map, json};

use super::*;
use crate::record::parse_body;

/// Both readings of `body`: from its text, and from its value.
fn both(
    body: &str,
    kind: Kind,
    max: usize,
) -> (
    Result<Vec<RecordIn>, ValidationError>,
    Result<Vec<RecordIn>, ValidationError>,
) {
    let text = parse_body_text(body, kind, max, 32).unwrap_or_else(|| panic!("read as text: {body}"));
    let value = parse_body(serde_json::from_str(body).unwrap(), kind, max);
    (text, value)
}

fn stamped(records: &[RecordIn]) -> Vec<String> {
    records
        .iter()
        .map(|r| r.stamp("rec_1", "ws_1", "2024-01-01T00:00:00Z"))
        .collect()
}

#[test]
fn a_compact_body_read_as_text_is_the_body_read_as_a_value() {
    let bodies = [
        (
            Kind::Data,
            r#"{"timestamp_device":"2023-12-01T09:51:00Z","tag":"d1","device_id":"dev-1","asset_id":"ast-1","fleet_id":"flt-1","payload":{"ts":1701424260,"ex":[0,0],"C":{"celsius":21.5}}}"#,
        ),
        (
            Kind::Data,
            r#"[{"device_id":"a","tag":"t","payload":null,"labels":{"site":"x"}},{"device_id":"b","tag":"t","payload":[],"extra":{"deep":[{"x":true}]}}]"#,
        ),
        (
            Kind::Event,
            r#"{"type":"relay","ts":1701424260,"direction":"c2d","device_id":"1_03","payload":{}}"#,
        ),
        (
            Kind::Event,
            r#"{"zeta":1,"type":"x","id":"mine","payload":null,"alpha":2,"timestamp_in":"t"}"#,
        ),
        (Kind::Event, r#"{"type":"a","payload":1,"type":"b"}"#),
        (Kind::Event, r#"{"type":"a","payload":1,"payload":2}"#),
        (
            Kind::Event,
            r#"{"type":"quote\"and\\back","payload":{"é":"ünïcode ☃","\"k":"\\"}}"#,
        ),
        (
            Kind::Data,
            r#"[{"device_id":"","tag":"t","payload":1,"timestamp_device":"yesterday"},{"device_id":"d","tag":"t","payload":1},{"tag":"t","payload":1,"labels":{"":"x"}}]"#,
        ),
        (
            Kind::Data,
            r#"[{"device_id":"d","tag":"t","payload":1},7,"x",null,[1]]"#,
        ),
        (
            Kind::Event,
            r#"{"payload":1,"type":7,"labels":{"a":1},"direction":"up","ts":[]}"#,
        ),
        (Kind::Event, r#"{"type":"x"}"#),
    ];
    for (kind, body) in bodies {
        let (text, value) = both(body, kind, 10);
        assert_eq!(text, value, "{body}");
        if let (Ok(text), Ok(value)) = (&text, &value) {
            assert_eq!(stamped(text), stamped(value), "{body}");
        }
    }
}

#[test]
fn what_reaches_the_receiver_is_the_producers_text_without_its_whitespace() {
    let body =
        "[ {\n  \"type\" : \"x y\",\t\"payload\": { \"n\": 1.50, \"s\": \"\\u00e9 \\\" }\" , \"e\": [ ] }\r\n} ]";
    let records = parse_body_text(body, Kind::Event, 10, 32).unwrap().unwrap();
    assert_eq!(
        stamped(&records),
        [
            r#"{"id":"rec_1","workspace_id":"ws_1","timestamp_in":"2024-01-01T00:00:00Z","type":"x y","payload":{"n":1.50,"s":"\u00e9 \" }","e":[]}}"#
        ]
    );
    assert_eq!(records[0].event_type(), Some("x y"));
    assert_eq!(
        records[0].to_value(),
        json!({"type": "x y", "payload": {"n": 1.5, "s": "é \" }", "e": []}})
    );
}

#[test]
fn a_record_of_no_fields_but_stamped_ones_is_stamped_alone() {
    let record = RecordIn::of_fields(Kind::Event, Map::new());
    assert_eq!(
        record.stamp("r", "w", "t"),
        r#"{"id":"r","workspace_id":"w","timestamp_in":"t"}"#
    );
}

#[test]
fn bodies_it_does_not_read_are_left_to_the_value() {
    let read = |body: &str, max_depth: usize| parse_body_text(body, Kind::Event, 2, max_depth).is_some();
    for body in [
        "",
        "  ",
        "{",
        r#"{"type":"x","payload":1}x"#,
        "7",
        r#""x""#,
        "null",
        "[]",
        "[1,2,3]",
        "[1,]",
        // A number beyond a double's range, which the value parse refuses wherever it is:
        // in a field hookd reads, in a payload it skips, in a record parsed whole.
        r#"{"type":1e400,"payload":1}"#,
        r#"{"type":"x","payload":{"v":[-1.5E+400]}}"#,
        r#"[{"type":"x","payload":1},1e400]"#,
        r#"{"type":"x","id":"mine","payload":1e400}"#,
        // Half a surrogate pair, in a skipped string, a read one, or a key.
        r#"{"type":"x","payload":"\ud800"}"#,
        r#"{"type":"x","payload":["\udc00x"]}"#,
        r#"{"type":"\ud800","payload":1}"#,
        r#"{"type":"x","payload":{"\ud800":1}}"#,
    ] {
        assert!(!read(body, 32), "{body:?}");
    }
    let digits = |n: usize| format!(r#"{{"type":"x","payload":{}}}"#, "9".repeat(n));
    assert!(read(&digits(308), 32), "308 nines are a double");
    assert!(!read(&digits(309), 32), "309 nines are beyond one");
    assert!(
        read(r#"{"type":"x","payload":[1e308,1e-400,-0,2E5]}"#, 32),
        "within range, or rounded to 0"
    );
    assert!(
        read(r#"{"type":"x","payload":"\ud83d\ude00 caf\u00e9"}"#, 32),
        "a whole pair"
    );
    let nested = r#"{"type":"x","payload":{"a":[1]}}"#;
    assert!(read(nested, 3), "three levels, the limit");
    assert!(!read(nested, 2));
    let in_array = format!("[{nested}]");
    assert!(read(&in_array, 4), "the array is a level");
    assert!(!read(&in_array, 3));
    assert!(read("  \n[1]", 1), "a scalar record nests nothing");
}

#[test]
fn what_it_reads_it_reads_as_the_value_does() {
    let body = json!({
        "type": "relay", "payload": {"v": 0}, "device_id": "1_03", "fleet_id": "f",
        "ts": "2022-03-18T09:34:23.777Z", "labels": {"site": "s"}
    });
    let (text, value) = both(&body.to_string(), Kind::Event, 1);
    let (text, value) = (&text.unwrap()[0], &value.unwrap()[0]);
    let reads = |r: &RecordIn| {
        (
            r.device_id().map(str::to_owned),
            r.fleet_id().map(str::to_owned),
            r.event_type().map(str::to_owned),
            r.device_time(),
            r.label("site").map(str::to_owned),
            r.to_value(),
        )
    };
    assert_eq!(reads(text), reads(value));
    assert_eq!(reads(text).5, body);
    assert_eq!(reads(text).3, Some(1_647_596_063_777));
}
