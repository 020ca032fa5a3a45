use serde_json::json;

use super::*;

#[test]
fn the_places_of_the_read_fields_name_them() {
    let places = [DEVICE_ID, TAG, TYPE, FLEET_ID, TIMESTAMP_DEVICE, TS, LABELS].map(|p| READ[p]);
    assert_eq!(
        places,
        [
            "device_id",
            "tag",
            "type",
            "fleet_id",
            "timestamp_device",
            "ts",
            "labels"
        ]
    );
}

#[test]
fn an_array_error_names_the_record_and_field() {
    let body = json!([
        {"device_id": "d", "tag": "t", "payload": 1},
        {"tag": "t", "payload": 1}
    ]);
    let err = parse_body(body, Kind::Data, 10).unwrap_err();
    assert_eq!(err.field, "[1].device_id");
    assert_eq!(err.code, "missing_field");
}

#[test]
fn stamped_fields_are_replaced_and_unknown_fields_kept_in_order() {
    let body = json!({"zeta": 1, "type": "x", "id": "mine", "payload": null, "alpha": 2});
    let rec = parse_body(body, Kind::Event, 10).unwrap().remove(0);
    let stamped = rec.stamp("rec_1", "ws_1", "2024-01-01T00:00:00Z");
    assert_eq!(
        stamped,
        r#"{"id":"rec_1","workspace_id":"ws_1","timestamp_in":"2024-01-01T00:00:00Z","zeta":1,"type":"x","payload":null,"alpha":2}"#
    );
}

#[test]
fn a_stamped_record_is_the_json_of_its_fields_escapes_and_all() {
    let body = json!({
        "type": "quote\"and\\back\nslash",
        "payload": {"nested": [1, 2.5, -3, {"é": "ünïcode ☃"}], "empty": {}, "none": []},
        "labels": {"a b": "c\u{1}"}
    });
    let rec = parse_body(body.clone(), Kind::Event, 1).unwrap().remove(0);
    let stamped: Value = serde_json::from_str(&rec.stamp("rec_\"1", "ws_1", "t")).unwrap();
    let mut expected = json!({"id": "rec_\"1", "workspace_id": "ws_1", "timestamp_in": "t"});
    expected
        .as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    assert_eq!(stamped, expected);
}

#[test]
fn every_problem_of_a_body_is_named_the_first_one_first() {
    let body = json!([
        {"device_id": "", "tag": "t", "payload": 1, "timestamp_device": "yesterday"},
        {"device_id": "d", "tag": "t", "payload": 1},
        {"tag": "t", "payload": 1, "labels": {"": "x"}}
    ]);
    let err = parse_body(body, Kind::Data, 10).unwrap_err();
    let fields: Vec<&str> = err.all().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["[0].device_id", "[0].timestamp_device", "[2].device_id", "[2].labels."]
    );
    assert_eq!(err.also[0].code, "invalid_time");
}

#[test]
fn times_are_rfc_3339_and_labels_are_bounded() {
    let event = |extra: Value| {
        let mut body = json!({"type": "x", "payload": {}});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        parse_body(body, Kind::Event, 1)
    };
    assert!(event(json!({"ts": "2022-03-18T09:34:23.777118453Z"})).is_ok());
    assert!(
        event(json!({"ts": 1701424260})).is_ok(),
        "a number is a producer's own time"
    );
    assert_eq!(event(json!({"ts": "yesterday"})).unwrap_err().code, "invalid_time");
    let long = "x".repeat(257);
    assert_eq!(
        event(json!({"labels": {"site": long}})).unwrap_err().field,
        "labels.site"
    );
    assert!(event(json!({"labels": {"site": "x".repeat(256)}})).is_ok());
}

#[test]
fn a_records_fields_are_read_by_kind() {
    let data = parse_body(
        json!({"device_id": "d1", "tag": "t", "type": "not-an-event", "payload": 1}),
        Kind::Data,
        1,
    )
    .unwrap()
    .remove(0);
    assert_eq!(
        (data.device_id(), data.tag(), data.event_type()),
        (Some("d1"), Some("t"), None)
    );
    let event = parse_body(
        json!({"type": "relay", "tag": "not-a-tag", "payload": 1}),
        Kind::Event,
        1,
    )
    .unwrap()
    .remove(0);
    assert_eq!(
        (event.device_id(), event.tag(), event.event_type()),
        (None, None, Some("relay"))
    );
}

#[test]
fn limits_hold_to_the_last_one_allowed() {
    let point = json!({"device_id": "d", "tag": "t", "payload": 1});
    assert_eq!(
        parse_body(json!([point, point]), Kind::Data, 2).unwrap().len(),
        2,
        "exactly the limit"
    );
    assert_eq!(
        parse_body(json!([point, point, point]), Kind::Data, 2)
            .unwrap_err()
            .code,
        "too_many_records"
    );
    for direction in ["d2c", "c2d"] {
        assert!(
            parse_body(
                json!({"type": "x", "payload": 1, "direction": direction}),
                Kind::Event,
                1
            )
            .is_ok()
        );
    }
    let labels = |n: usize| (0..n).map(|i| (format!("k{i}"), json!("v"))).collect::<Map<_, _>>();
    let with = |labels: Map<String, Value>| json!({"type": "x", "payload": 1, "labels": labels});
    assert!(parse_body(with(labels(64)), Kind::Event, 1).is_ok());
    assert_eq!(
        parse_body(with(labels(65)), Kind::Event, 1).unwrap_err().field,
        "labels"
    );
    let key = |n: usize| {
        let mut m = Map::new();
        m.insert("k".repeat(n), json!("v"));
        m
    };
    assert!(parse_body(with(key(128)), Kind::Event, 1).is_ok());
    assert_eq!(
        parse_body(with(key(129)), Kind::Event, 1).unwrap_err().field,
        format!("labels.{}", "k".repeat(129))
    );
    for field in ["fleet_id", "device_name", "asset_id", "asset_name"] {
        let mut body = json!({"device_id": "d", "tag": "t", "payload": 1});
        body[field] = json!("x".repeat(256));
        assert!(parse_body(body.clone(), Kind::Data, 1).is_ok(), "{field}");
        body[field] = json!("x".repeat(257));
        assert_eq!(parse_body(body, Kind::Data, 1).unwrap_err().field, field);
    }
}

#[test]
fn wrong_types_and_values_are_named() {
    let err = parse_body(json!({"type": "x", "payload": {}, "direction": "up"}), Kind::Event, 1).unwrap_err();
    assert_eq!(err.field, "direction");
    let err = parse_body(json!({"type": "x", "payload": {}, "labels": {"a": 1}}), Kind::Event, 1).unwrap_err();
    assert_eq!(err.field, "labels.a");
    let err = parse_body(
        json!([{"type": "x", "payload": 1}, {"type": "x", "payload": 1}]),
        Kind::Event,
        1,
    )
    .unwrap_err();
    assert_eq!(err.code, "too_many_records");
}
