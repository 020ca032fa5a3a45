//! Ingest bodies: any bytes a producer sends, parsed as hookd's API does (JSON, the depth
//! check, then records of either kind), and every accepted record stamped and matched.
#![no_main]

use hookd_core::filter::Filters;
use hookd_core::record::{Kind, parse_body};
use hookd_core::validation::too_deep;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = too_deep(&body, 32);
    for kind in [Kind::Data, Kind::Event] {
        if let Ok(records) = parse_body(body.clone(), kind, 1000) {
            let filters = Filters::parse(None, kind).expect("no filters is a valid filter");
            for record in &records {
                assert!(filters.matches(record));
                let stamped = record.stamp("rec_1", "ws_1", "2026-01-01T00:00:00.000Z");
                serde_json::from_str::<serde_json::Value>(&stamped).expect("a stamped record is JSON");
            }
        }
    }
});
