//! Durations (`timeout`, `retry_schedule`, config): whatever parses formats to text that
//! parses back to the same duration.
#![no_main]

use hookd_core::duration;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = duration::parse(text) {
        assert_eq!(duration::parse(&duration::format(d)), Ok(d));
    }
});
