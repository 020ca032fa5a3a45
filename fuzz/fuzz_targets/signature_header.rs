//! Signature verification (`hookd verify`, `hookd listen`) with every input untrusted: the
//! secret, id, timestamp and signature header come from the fuzzer, split on newlines.
#![no_main]

use hookd_core::signature::verify;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(5, '\n');
    let secret = parts.next().unwrap_or_default();
    let id = parts.next().unwrap_or_default();
    let timestamp = parts.next().unwrap_or_default();
    let header = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let _ = verify(secret, id, timestamp, header, body.as_bytes(), 1_700_000_000, 300);
});
