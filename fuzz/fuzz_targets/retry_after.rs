//! `Retry-After` values from receivers (seconds or an HTTP date): never a panic, and the
//! retry they push is never later than the 24 h cap (or the schedule's own step).
#![no_main]

use std::time::Duration;

use hookd_core::outcome::parse_retry_after;
use hookd_core::retry::{RETRY_AFTER_MAX, default_schedule, next_delay};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let asked = parse_retry_after(text, 1_700_000_000_000);
    let schedule = default_schedule();
    let delay = next_delay(&schedule, 1, 0.5, asked).expect("the schedule has a first step");
    assert!(delay <= RETRY_AFTER_MAX.max(schedule[0]), "{text:?} gave {delay:?}");
    assert!(delay >= Duration::from_secs(5));
});
