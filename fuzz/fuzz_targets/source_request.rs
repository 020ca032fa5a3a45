//! A source's door with every input untrusted: each scheme's signature-header parser and
//! verification, and the body reader (JSON, form, text), on headers and a body from the
//! fuzzer, and compiling the whole input as a jq program. The first byte picks the scheme and
//! the content type.
#![no_main]

use hookd_core::source::{Inbound, Scheme, SourceSpec, compile, python_compact, read_body, verify};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let scheme = Scheme::ALL[pick as usize % Scheme::ALL.len()];
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(3, '\n');
    let header_value = parts.next().unwrap_or_default().to_owned();
    let second = parts.next().unwrap_or_default().to_owned();
    let body = parts.next().unwrap_or_default().as_bytes().to_vec();
    let secret = match scheme {
        Scheme::Basic => "user:pass",
        Scheme::Orbit => "00ff",
        Scheme::StandardWebhooks => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        _ => "secret",
    };
    let mut spec = json!({"name": "fuzz", "scheme": scheme.as_str()});
    if scheme == Scheme::Hmac {
        spec["header"] = json!("x-sig");
        spec["hmac"] = json!({"header_format": "t={timestamp},v1={signature}", "signed_content": "{timestamp}.{body}"});
    }
    if scheme != Scheme::None {
        spec["secret"] = json!(secret);
    }
    let spec = SourceSpec::parse(&spec).expect("a valid spec");
    let header_name = spec
        .hmac_scheme()
        .map(|h| h.header.to_ascii_lowercase())
        .unwrap_or_else(|| {
            if scheme == Scheme::Basic {
                "authorization".into()
            } else {
                "x-auth-token".into()
            }
        });
    let headers = vec![
        (header_name, header_value),
        ("webhook-id".to_owned(), second.clone()),
        ("webhook-timestamp".to_owned(), second.clone()),
        ("x-slack-request-timestamp".to_owned(), second.clone()),
        ("x-github-delivery".to_owned(), second),
    ];
    let request = Inbound {
        method: "POST",
        headers: &headers,
        query: &[],
        body: &body,
    };
    let _ = verify(&spec, &request, 1_700_000_000_000);
    let content_type = [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
    ][pick as usize % 4];
    let _ = read_body(Some(content_type).filter(|t| !t.is_empty()), &body);
    let _ = python_compact(&body);
    // Programs are compiled in the server at create and update (they only run in workers).
    let _ = compile(&text);
});
