use serde_json::json;

use super::*;

const LIMITS: WebhookLimits = WebhookLimits {
    max_timeout: Duration::from_secs(60),
};

#[test]
fn defaults_follow_the_design() {
    let spec = WebhookSpec::parse(
        &json!({"name": "n", "kind": "data", "url": "https://example.com/h"}),
        LIMITS,
    )
    .unwrap();
    assert_eq!(spec.method, Method::Post);
    assert_eq!(spec.format, Format::Batch);
    assert_eq!(spec.batch_max, 100);
    assert_eq!(spec.timeout, Duration::from_secs(30));
    assert_eq!(spec.token_header, "X-AUTH-TOKEN");
    assert_eq!(spec.retry_schedule, retry::default_schedule());
    assert!(spec.enabled);
    assert_eq!(WebhookSpec::parse(&spec.to_json(), LIMITS).unwrap(), spec);
}

#[test]
fn each_bad_field_is_named() {
    let base = json!({"name": "n", "kind": "data", "url": "https://example.com"});
    let cases = [
        (json!({"url": "ftp://x"}), "url", "invalid_url"),
        (json!({"kind": "log"}), "kind", "invalid_value"),
        (json!({"name": " "}), "name", "invalid_value"),
        (
            json!({"retry_schedule": ["5s", "soon"]}),
            "retry_schedule[1]",
            "invalid_duration",
        ),
        (json!({"batch_max": 0}), "batch_max", "invalid_value"),
        (json!({"timeout": "2m"}), "timeout", "invalid_value"),
        (
            json!({"headers": {"Webhook-Id": "x"}}),
            "headers.Webhook-Id",
            "invalid_header",
        ),
        (json!({"colour": "red"}), "colour", "unknown_field"),
    ];
    for (patch, field, code) in cases {
        let mut body = base.clone();
        body.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        let err = WebhookSpec::parse(&body, LIMITS).unwrap_err();
        assert_eq!((err.field.as_str(), err.code), (field, code), "{body}");
    }
}

#[test]
fn a_get_webhook_sends_one_record_per_request_and_refuses_to_batch() {
    let get = json!({"name": "n", "kind": "data", "url": "https://example.com", "method": "GET"});
    assert_eq!(
        WebhookSpec::parse(&get, LIMITS).unwrap().format,
        Format::Single,
        "single by default"
    );
    let mut batch = get.clone();
    batch["format"] = json!("batch");
    let err = WebhookSpec::parse(&batch, LIMITS).unwrap_err();
    assert_eq!((err.field.as_str(), err.code), ("format", "invalid_value"));
    assert!(err.message.contains("GET"), "{}", err.message);

    let post = WebhookSpec::parse(
        &json!({"name": "n", "kind": "data", "url": "https://example.com"}),
        LIMITS,
    )
    .unwrap();
    let to_get = apply_patch(&post, &json!({"method": "GET"}), LIMITS).unwrap();
    assert_eq!(to_get.format, Format::Single, "the format follows the method");
    let back = apply_patch(&to_get, &json!({"method": "POST"}), LIMITS).unwrap();
    assert_eq!(back.format, Format::Batch);
    let kept = apply_patch(&to_get, &json!({"name": "m"}), LIMITS).unwrap();
    assert_eq!(kept.format, Format::Single);
    assert!(apply_patch(&post, &json!({"method": "GET", "format": "batch"}), LIMITS).is_err());
}

#[test]
fn stored_specs_carry_their_version_and_older_ones_are_read_as_they_behaved() {
    let spec = WebhookSpec::parse(
        &json!({"name": "n", "kind": "data", "url": "https://example.com"}),
        LIMITS,
    )
    .unwrap();
    let stored = spec.to_stored();
    assert_eq!(stored["version"], SPEC_VERSION);
    assert_eq!(WebhookSpec::from_stored(&stored).unwrap(), spec);

    let v1_get_batch =
        json!({"name": "n", "kind": "data", "url": "https://example.com", "method": "GET", "format": "batch"});
    assert_eq!(
        WebhookSpec::from_stored(&v1_get_batch).unwrap().format,
        Format::Single,
        "a version 1 GET batch sent one record's worth: read as single"
    );
    let mut newer = stored.clone();
    newer["version"] = json!(SPEC_VERSION + 1);
    let err = WebhookSpec::from_stored(&newer).unwrap_err();
    assert_eq!((err.field.as_str(), err.code), ("version", "unsupported_version"));
    newer["version"] = json!("two");
    assert_eq!(WebhookSpec::from_stored(&newer).unwrap_err().field, "version");
    assert!(WebhookSpec::from_stored(&json!([])).is_err());
}

#[test]
fn every_bad_field_of_a_body_is_named_the_first_one_first() {
    let err = WebhookSpec::parse(
        &json!({"name": "", "kind": "data", "url": "ftp://x", "batch_max": 0, "timeout": "soon"}),
        LIMITS,
    )
    .unwrap_err();
    let fields: Vec<&str> = err.all().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "url", "batch_max", "timeout"]);
}

#[test]
fn tls_settings_are_pem_and_come_in_pairs() {
    let with = |tls: Value| {
        WebhookSpec::parse(
            &json!({"name": "n", "kind": "data", "url": "https://a.example", "tls": tls}),
            LIMITS,
        )
    };
    let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
    let spec = with(json!({"ca": cert, "client_cert": cert, "client_key": key})).unwrap();
    assert_eq!(spec.tls.ca.as_deref(), Some(cert));
    assert!(!spec.tls.skip_verify, "verification is on unless turned off");
    assert_eq!(WebhookSpec::from_stored(&spec.to_json()).unwrap(), spec);
    assert!(with(json!({"verify": false})).unwrap().tls.skip_verify);
    assert_eq!(with(json!({"ca": "not pem"})).unwrap_err().field, "tls.ca");
    assert_eq!(with(json!({"client_cert": cert})).unwrap_err().field, "tls.client_key");
    assert_eq!(with(json!({"colour": 1})).unwrap_err().code, "unknown_field");
    assert!(with(Value::Null).unwrap().tls.is_default());
}

#[test]
fn a_patch_replaces_only_what_it_names() {
    let spec = WebhookSpec::parse(
        &json!({"name": "n", "kind": "event", "url": "https://a.example", "token": "t"}),
        LIMITS,
    )
    .unwrap();
    let patched = apply_patch(&spec, &json!({"name": "m", "token": null}), LIMITS).unwrap();
    assert_eq!(patched.name, "m");
    assert_eq!(patched.token, None);
    assert_eq!(patched.url, spec.url);
}

#[test]
fn credentials_in_a_url_are_not_shown() {
    let shown = |url: &str| redacted_url(&Url::parse(url).unwrap());
    assert_eq!(shown("https://u:p@host.example/x"), "https://u:***@host.example/x");
    assert_eq!(
        shown("https://host.example/x?site=3&token=abc&API_KEY=k&sig=s"),
        "https://host.example/x?site=3&token=***&API_KEY=***&sig=***"
    );
    assert_eq!(shown("https://host.example/x?site=3"), "https://host.example/x?site=3");
    assert_eq!(shown("https://user@host.example/"), "https://user@host.example/");
}

#[test]
fn a_patch_sending_the_shown_url_back_keeps_the_real_one() {
    let spec = WebhookSpec::parse(
        &json!({"name": "n", "kind": "data", "url": "https://u:p@a.example/?token=t"}),
        LIMITS,
    )
    .unwrap();
    let shown = redacted_url(&spec.url);
    let patched = apply_patch(&spec, &json!({"url": shown, "name": "m"}), LIMITS).unwrap();
    assert_eq!(patched.url, spec.url);
    let moved = apply_patch(&spec, &json!({"url": "https://b.example/"}), LIMITS).unwrap();
    assert_eq!(moved.url.as_str(), "https://b.example/");
}

/// A spec from the three required fields and `extra`.
fn spec(extra: Value) -> Result<WebhookSpec, ValidationError> {
    let mut body = json!({"name": "n", "kind": "data", "url": "https://example.com/h"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    WebhookSpec::parse(&body, LIMITS)
}

fn field_of(extra: Value) -> String {
    spec(extra).unwrap_err().field
}

#[test]
fn every_bound_holds_to_the_last_value_allowed() {
    let day = 24 * 3600;
    assert!(
        spec(json!({"retry_schedule": [format!("{}s", 7 * day)]})).is_ok(),
        "a week"
    );
    assert_eq!(
        field_of(json!({"retry_schedule": [format!("{}s", 7 * day + 1)]})),
        "retry_schedule[0]"
    );
    assert_eq!(field_of(json!({"retry_schedule": ["0s"]})), "retry_schedule[0]");
    assert!(spec(json!({"retry_schedule": vec!["1s"; 30]})).is_ok());
    assert_eq!(field_of(json!({"retry_schedule": vec!["1s"; 31]})), "retry_schedule");
    assert!(spec(json!({"timeout": "100ms"})).is_ok());
    assert_eq!(field_of(json!({"timeout": "99ms"})), "timeout");
    assert!(spec(json!({"timeout": "60s"})).is_ok(), "the configured maximum");
    assert_eq!(field_of(json!({"timeout": "61s"})), "timeout");
    let headers = |n: usize| (0..n).map(|i| (format!("X-H{i}"), json!("v"))).collect::<Map<_, _>>();
    assert!(spec(json!({"headers": headers(50)})).is_ok());
    assert_eq!(field_of(json!({"headers": headers(51)})), "headers");
    assert!(spec(json!({"batch_max": 1000})).is_ok());
    assert_eq!(field_of(json!({"batch_max": 1001})), "batch_max");
}

#[test]
fn a_url_is_at_most_2048_characters_once_percent_encoded() {
    let url = |path: &str| json!({"url": format!("https://example.com/{path}")});
    let room = 2048 - "https://example.com/".len();
    assert!(spec(url(&"p".repeat(room))).is_ok(), "exactly 2048");
    assert_eq!(field_of(url(&"p".repeat(room + 1))), "url");
    // 2048 characters as sent, longer once `é` is written %C3%A9.
    assert_eq!(field_of(url(&format!("{}é", "p".repeat(room - 1)))), "url");
}

#[test]
fn header_names_and_values_are_checked() {
    assert!(
        spec(json!({"headers": {"X-Tab": "a\tb"}})).is_ok(),
        "a tab may be in a value"
    );
    for bad in ["a\nb", "é"] {
        assert_eq!(field_of(json!({"headers": {"X-A": bad}})), "headers.X-A", "{bad:?}");
    }
    assert!(spec(json!({"headers": {"X-A": "v".repeat(8192)}})).is_ok());
    assert_eq!(field_of(json!({"headers": {"X-A": "v".repeat(8193)}})), "headers.X-A");
    assert!(spec(json!({"token_header": "h".repeat(128)})).is_ok());
    for bad in ["", "h h", "é"] {
        assert_eq!(field_of(json!({"token_header": bad})), "token_header", "{bad:?}");
    }
    assert_eq!(field_of(json!({"token_header": "h".repeat(129)})), "token_header");
    assert_eq!(spec(json!({"token": "t0k3n"})).unwrap().token.as_deref(), Some("t0k3n"));
    assert_eq!(field_of(json!({"token": "bad\ntoken"})), "token");
}

#[test]
fn tls_pem_is_bounded_and_of_the_kind_asked() {
    let cert = |len: usize| {
        let head = "-----BEGIN CERTIFICATE-----\n";
        format!("{head}{}", "A".repeat(len - head.len()))
    };
    assert!(spec(json!({"tls": {"ca": cert(64 * 1024)}})).is_ok());
    assert_eq!(field_of(json!({"tls": {"ca": cert(64 * 1024 + 1)}})), "tls.ca");
    let key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
    assert_eq!(
        field_of(json!({"tls": {"ca": key}})),
        "tls.ca",
        "a key is not a CA certificate"
    );
    assert!(TlsSpec::default().is_default());
    assert!(!spec(json!({"tls": {"ca": cert(100)}})).unwrap().tls.is_default());
    assert!(!spec(json!({"tls": {"verify": false}})).unwrap().tls.is_default());
}

#[test]
fn a_webhook_takes_the_records_of_its_kind_its_filters_let_through_while_enabled() {
    let data = |v: Value| crate::record::parse_body(v, Kind::Data, 1).unwrap().remove(0);
    let event = crate::record::parse_body(json!({"type": "x", "payload": 1}), Kind::Event, 1)
        .unwrap()
        .remove(0);
    let mut spec = spec(json!({"filters": {"tags": ["t"]}})).unwrap();
    let tagged = data(json!({"device_id": "d", "tag": "t", "payload": 1}));
    let other = data(json!({"device_id": "d", "tag": "u", "payload": 1}));
    assert!(spec.accepts(&tagged));
    assert!(!spec.accepts(&other), "the filter");
    assert!(!spec.accepts(&event), "the kind");
    spec.enabled = false;
    assert!(!spec.accepts(&tagged), "disabled");
    assert_eq!(spec.records_per_delivery(), 100);
    spec.batch_max = 7;
    assert_eq!(spec.records_per_delivery(), 7);
    spec.format = Format::Single;
    assert_eq!(spec.records_per_delivery(), 1);
}

#[test]
fn the_breaker_is_closed_below_its_threshold_open_while_paused_then_half_open() {
    let health = |failures: u32, until: Millis| WebhookHealth {
        consecutive_failures: failures,
        breaker_until: until,
        ..Default::default()
    };
    assert_eq!(
        health(4, 2000).breaker(5, 1000),
        Breaker::Closed,
        "one below the threshold"
    );
    assert_eq!(
        health(5, 2000).breaker(5, 1000),
        Breaker::Open,
        "at the threshold, paused"
    );
    assert_eq!(health(6, 2000).breaker(5, 1999), Breaker::Open);
    assert_eq!(health(5, 2000).breaker(5, 2000), Breaker::HalfOpen, "the pause is over");
    assert_eq!(health(5, 2000).breaker(5, 2001), Breaker::HalfOpen);
}

#[test]
fn a_webhook_signs_with_its_secret_and_the_previous_ones_until_they_expire() {
    let webhook = Webhook {
        id: "wh_1".into(),
        workspace_id: "ws_1".into(),
        spec: spec(json!({})).unwrap(),
        secret: "new".into(),
        previous_secrets: vec![
            PreviousSecret {
                secret: "old".into(),
                expires_at: 1000,
            },
            PreviousSecret {
                secret: "older".into(),
                expires_at: 500,
            },
        ],
        disabled_reason: None,
        created_at: 0,
        updated_at: 0,
        health: WebhookHealth::default(),
    };
    let at = |now: Millis| webhook.signing_secrets(now).collect::<Vec<_>>();
    assert_eq!(at(499), ["new", "old", "older"]);
    assert_eq!(at(500), ["new", "old"], "expired at its expiry");
    assert_eq!(at(999), ["new", "old"]);
    assert_eq!(at(1000), ["new"]);
}

#[test]
fn header_templates_take_record_fields() {
    let rec = json!({"device_id": "d1", "tag": "t", "payload": {"n": 3}, "labels": {"site": "s"}});
    assert_eq!(
        Webhook::render_header("{{device_id}}/{{labels.site}}/{{payload.n}}/{{nope}}", Some(&rec)),
        "d1/s/3/"
    );
}
