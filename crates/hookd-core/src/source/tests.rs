use serde_json::json;

use super::*;

fn parse(body: serde_json::Value) -> Result<SourceSpec, ValidationError> {
    SourceSpec::parse(&body)
}

fn request<'a>(
    method: &'a str,
    headers: &'a [(String, String)],
    query: &'a [(String, String)],
    body: &'a [u8],
) -> Inbound<'a> {
    Inbound {
        method,
        headers,
        query,
        body,
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn a_source_without_a_scheme_is_refused_and_none_must_be_said_and_warns() {
    let err = parse(json!({"name": "plc"})).unwrap_err();
    assert_eq!((err.code, err.field.as_str()), ("missing_field", "scheme"));
    let err = parse(json!({"name": "plc", "scheme": "nope"})).unwrap_err();
    assert_eq!(err.field, "scheme");
    assert!(err.message.contains("standard_webhooks"), "{}", err.message);
    let open = parse(json!({"name": "plc", "scheme": "none"})).unwrap();
    assert!(open.warning().unwrap().contains("anyone"));
    assert!(parse(json!({"name": "gh", "scheme": "github"})).unwrap_err().field == "secret");
    assert!(parse(json!({"name": "x", "scheme": "none", "secret": "s"})).is_err());
}

#[test]
fn options_must_fit_the_scheme() {
    let field = |body| parse(body).unwrap_err().field;
    assert_eq!(
        field(json!({"name": "a", "scheme": "github", "secret": "s", "header": "X-Sig"})),
        "header"
    );
    assert_eq!(
        field(json!({"name": "a", "scheme": "github", "secret": "s", "query": "t"})),
        "query"
    );
    assert_eq!(
        field(json!({"name": "a", "scheme": "basic", "secret": "no-colon"})),
        "secret"
    );
    assert_eq!(
        field(json!({"name": "a", "scheme": "hmac", "secret": "s", "header": "X-Sig"})),
        "hmac"
    );
    assert_eq!(
        field(json!({"name": "a", "scheme": "hmac", "secret": "s", "header": "X-Sig", "hmac": {"algorithm": "md5"}})),
        "hmac.algorithm"
    );
    assert_eq!(
        field(json!({"name": "a", "scheme": "none", "methods": ["DELETE"]})),
        "methods[0]"
    );
    assert_eq!(
        field(json!({"name": "a", "scheme": "none", "fields": {"colour": "."}})),
        "fields.colour"
    );
    assert_eq!(
        field(json!({"name": "a", "scheme": "none", "response_status": 201})),
        "response_status"
    );
    assert_eq!(
        field(json!({"name": "a", "scheme": "none", "tolerance": "0s"})),
        "tolerance"
    );
    assert_eq!(
        field(
            json!({"name": "a", "scheme": "standard_webhooks", "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whpk_c2hvcnQ="]})
        ),
        "secrets[1]",
        "a v1a public key is 32 bytes"
    );
}

#[test]
fn the_spec_reads_back_what_it_writes_and_a_patch_replaces_fields() {
    let spec = parse(json!({
        "name": "sensor", "scheme": "hmac", "header": "X-Signature", "secrets": ["a", {"value": "b", "expires_at": "2030-01-01T00:00:00Z"}],
        "hmac": {"algorithm": "sha1", "encoding": "base64", "header_format": "{signature}"},
        "record_type": "data", "split": ".[]", "fields": {"device_id": ".id", "tag": "\"t\"", "labels.site": ".site"},
        "methods": ["post", "PUT"], "response_status": 200, "tolerance": "10m",
    }))
    .unwrap();
    assert_eq!(spec.methods, ["POST", "PUT"]);
    assert_eq!(SourceSpec::parse(&spec.to_json()).unwrap(), spec);
    let patched = apply_patch(&spec, &json!({"secret": "c", "name": "renamed"})).unwrap();
    assert_eq!(patched.name, "renamed");
    assert_eq!(
        patched.secrets.iter().map(|s| s.value.as_str()).collect::<Vec<_>>(),
        ["c"]
    );
    assert_eq!(patched.hmac, spec.hmac);
    let to_token = apply_patch(&spec, &json!({"scheme": "token"})).unwrap();
    assert_eq!((to_token.scheme, to_token.hmac.as_ref()), (Scheme::Token, None));
}

#[test]
fn a_token_is_read_from_its_header_or_query_and_compared_whole() {
    let by_header =
        parse(json!({"name": "a", "scheme": "token", "header": "Verifier-Token", "secret": "t0k3n"})).unwrap();
    let ok = pairs(&[("verifier-token", "t0k3n")]);
    assert!(verify(&by_header, &request("POST", &ok, &[], b"{}"), 0).is_ok());
    let prefix = pairs(&[("verifier-token", "t0k3")]);
    let err = verify(&by_header, &request("POST", &prefix, &[], b"{}"), 0).unwrap_err();
    assert_eq!(err.reason, Reason::BadToken);
    assert!(
        !err.explanation.contains("t0k3n"),
        "never the expected token: {}",
        err.explanation
    );
    assert_eq!(
        verify(&by_header, &request("POST", &[], &[], b"{}"), 0)
            .unwrap_err()
            .reason,
        Reason::MissingHeader
    );
    let by_default = parse(json!({"name": "a", "scheme": "token", "secret": "t"})).unwrap();
    assert!(
        verify(
            &by_default,
            &request("POST", &pairs(&[("x-auth-token", "t")]), &[], b""),
            0
        )
        .is_ok()
    );
    let by_query = parse(json!({"name": "a", "scheme": "token", "query": "key", "secret": "t"})).unwrap();
    assert!(verify(&by_query, &request("POST", &[], &pairs(&[("key", "t")]), b""), 0).is_ok());
    assert_eq!(
        verify(&by_query, &request("PUT", &[], &pairs(&[("key", "t")]), b""), 0)
            .unwrap_err()
            .reason,
        Reason::MethodNotAllowed
    );
}

#[test]
fn basic_checks_user_and_password() {
    let spec = parse(json!({"name": "a", "scheme": "basic", "secret": "plc:pa55"})).unwrap();
    let header = |v: &str| pairs(&[("authorization", v)]);
    assert!(verify(&spec, &request("POST", &header("Basic cGxjOnBhNTU="), &[], b""), 0).is_ok());
    let wrong = verify(&spec, &request("POST", &header("Basic cGxjOnBhNTY="), &[], b""), 0).unwrap_err();
    assert_eq!(wrong.reason, Reason::BadCredentials);
    assert!(wrong.explanation.contains("user `plc`"), "{}", wrong.explanation);
    assert_eq!(
        verify(&spec, &request("POST", &header("Bearer x"), &[], b""), 0)
            .unwrap_err()
            .reason,
        Reason::MalformedHeader
    );
}

#[test]
fn a_custom_hmac_scheme_is_verified_as_configured_and_explains_a_mismatch() {
    let spec = parse(json!({
        "name": "a", "scheme": "hmac", "header": "X-Sig", "secrets": ["k1", "k2"],
        "hmac": {"algorithm": "sha512", "encoding": "base64", "header_format": "t={timestamp},s={signature}",
                 "signed_content": "{timestamp}:{body}", "timestamp_unit": "ms"},
    }))
    .unwrap();
    let scheme = spec.hmac_scheme().unwrap();
    let mac = Encoding::Base64.encode(&Algorithm::Sha512.mac(b"k2", &[b"5000:", b"{\"a\":1}"]));
    let headers = pairs(&[("x-sig", &format!("t=5000,s=bm9wZQ==,s={mac}"))]);
    let verified = verify(&spec, &request("POST", &headers, &[], b"{\"a\":1}"), 5_000).unwrap();
    assert_eq!(
        verified.message_id.as_deref(),
        Some(mac.as_str()),
        "the signature itself, against replays"
    );
    let err = verify(&spec, &request("POST", &headers, &[], b"{\"a\":2}"), 5_000).unwrap_err();
    assert_eq!(err.reason, Reason::BadSignature);
    assert_eq!(
        err.explanation,
        "no signature matched: HMAC-SHA512 over `{timestamp}:{body}`, base64; 2 secrets tried, 2 signatures in header X-Sig"
    );
    assert_eq!(scheme.read_header("garbage"), (vec![], None));
    let err = verify(&spec, &request("POST", &pairs(&[("x-sig", "garbage")]), &[], b""), 0).unwrap_err();
    assert_eq!(err.reason, Reason::MalformedHeader);
}

#[test]
fn every_preset_is_an_hmac_configuration() {
    for scheme in Scheme::ALL {
        let preset = HmacSpec::preset(scheme);
        assert_eq!(
            preset.is_some(),
            !matches!(scheme, Scheme::Token | Scheme::Basic | Scheme::Hmac | Scheme::None),
            "{scheme:?}"
        );
        if let Some(preset) = preset {
            let again = HmacSpec::parse(&preset.to_json(), &preset.header, "").unwrap();
            assert_eq!(&again, preset, "{scheme:?} reads back as a custom scheme");
        }
    }
}
