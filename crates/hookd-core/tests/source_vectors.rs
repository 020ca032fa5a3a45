//! Every scheme against requests signed by the senders' own libraries
//! (`tests/vectors/make.py` made `senders.json`): each verifies as sent, and each way of
//! breaking it is refused with its reason code.

use hookd_core::source::{Inbound, Reason, SourceSpec, verify};
use serde_json::{Value, json};

struct Vector {
    scheme: String,
    secret: String,
    body: String,
    headers: Vec<(String, String)>,
    now: i64,
}

fn vectors() -> Vec<Vector> {
    let all: Vec<Value> = serde_json::from_str(include_str!("vectors/senders.json")).unwrap();
    all.into_iter()
        .map(|v| Vector {
            scheme: v["scheme"].as_str().unwrap().to_owned(),
            secret: v["secret"].as_str().unwrap().to_owned(),
            body: v["body"].as_str().unwrap().to_owned(),
            headers: v["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_owned()))
                .collect(),
            now: v["now_ms"].as_i64().unwrap(),
        })
        .collect()
}

fn spec(scheme: &str, secret: &str) -> SourceSpec {
    SourceSpec::parse(&json!({"name": "sender", "scheme": scheme, "secret": secret})).unwrap()
}

fn check(spec: &SourceSpec, body: &str, headers: &[(String, String)], now: i64) -> Result<(), Reason> {
    let request = Inbound {
        method: "POST",
        headers,
        query: &[],
        body: body.as_bytes(),
    };
    verify(spec, &request, now).map(|_| ()).map_err(|r| r.reason)
}

#[test]
fn every_senders_own_signature_verifies() {
    let vectors = vectors();
    for scheme in ["stripe", "slack", "standard_webhooks", "orbit", "github", "shopify"] {
        assert!(vectors.iter().any(|v| v.scheme == scheme), "a vector for {scheme}");
    }
    assert!(
        vectors.iter().any(|v| v.secret.starts_with("whpk_")),
        "a Standard Webhooks v1a (ed25519) vector"
    );
    for v in &vectors {
        assert_eq!(
            check(&spec(&v.scheme, &v.secret), &v.body, &v.headers, v.now),
            Ok(()),
            "{}: {}",
            v.scheme,
            v.body
        );
    }
}

#[test]
fn a_tampered_body_a_wrong_secret_and_a_missing_header_are_refused() {
    for v in vectors() {
        let right = spec(&v.scheme, &v.secret);
        let tampered = v.body.replacen('e', "f", 1);
        assert_eq!(
            check(&right, &tampered, &v.headers, v.now),
            Err(Reason::BadSignature),
            "{} tampered",
            v.scheme
        );
        let other_secret = match v.scheme.as_str() {
            "standard_webhooks" => "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY".to_owned(),
            "orbit" => "00".repeat(32),
            _ => format!("{}x", v.secret),
        };
        let wrong = spec(&v.scheme, &other_secret);
        assert_eq!(
            check(&wrong, &v.body, &v.headers, v.now),
            Err(Reason::BadSignature),
            "{} wrong secret",
            v.scheme
        );
        let signature_header = right.hmac_scheme().unwrap().header.to_ascii_lowercase();
        let without: Vec<(String, String)> = v
            .headers
            .iter()
            .filter(|(k, _)| *k != signature_header)
            .cloned()
            .collect();
        assert_eq!(
            check(&right, &v.body, &without, v.now),
            Err(Reason::MissingHeader),
            "{} no header",
            v.scheme
        );
    }
}

#[test]
fn timestamped_schemes_refuse_stale_and_future_timestamps() {
    for v in vectors()
        .into_iter()
        .filter(|v| ["stripe", "slack", "standard_webhooks", "orbit"].contains(&v.scheme.as_str()))
    {
        let spec = spec(&v.scheme, &v.secret);
        let five_minutes = 300_000;
        assert_eq!(
            check(&spec, &v.body, &v.headers, v.now + five_minutes),
            Ok(()),
            "{} at the edge",
            v.scheme
        );
        assert_eq!(
            check(&spec, &v.body, &v.headers, v.now + five_minutes + 1_000),
            Err(Reason::StaleTimestamp),
            "{} stale",
            v.scheme
        );
        assert_eq!(
            check(&spec, &v.body, &v.headers, v.now - five_minutes - 1_000),
            Err(Reason::StaleTimestamp),
            "{} from the future",
            v.scheme
        );
    }
}

#[test]
fn a_rotated_secret_verifies_until_it_expires() {
    let v = vectors().into_iter().find(|v| v.scheme == "github").unwrap();
    let spec = SourceSpec::parse(&json!({
        "name": "gh", "scheme": "github",
        "secrets": ["new-secret", {"value": v.secret, "expires_at": "2030-01-01T00:00:00Z"}],
    }))
    .unwrap();
    let before = 1_893_456_000_000 - 1; // 2029-12-31T23:59:59.999Z
    assert_eq!(check(&spec, &v.body, &v.headers, before), Ok(()));
    assert_eq!(check(&spec, &v.body, &v.headers, before + 1), Err(Reason::BadSignature));
}
