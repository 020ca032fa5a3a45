//! Webhook specs (with their filters, headers, durations and URL) as the API receives them:
//! whatever parses must render to JSON that parses back to the same spec, and a patch on it
//! never panics.
#![no_main]

use std::time::Duration;

use hookd_core::webhook::{Webhook, WebhookLimits, WebhookSpec, apply_patch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let limits = WebhookLimits {
        max_timeout: Duration::from_secs(60),
    };
    if let Ok(spec) = WebhookSpec::parse(&value, limits) {
        let again = WebhookSpec::parse(&spec.to_json(), limits).expect("a rendered spec parses");
        assert_eq!(again, spec);
        let _ = apply_patch(&spec, &value, limits);
        for template in spec.headers.values() {
            let _ = Webhook::render_header(template, Some(&value));
        }
    }
});
