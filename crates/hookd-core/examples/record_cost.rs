//! What reading and stamping a record costs, read from its text (as the API reads a JSON
//! body) and parsed as a value (forms, MQTT messages, a source's reshaped items), in one
//! process on the benchmark's realistic data point:
//!
//! ```sh
//! cargo run --release -p hookd-core --example record_cost
//! ```

use std::hint::black_box;
use std::time::Instant;

use hookd_core::record::{Kind, RecordIn, parse_body, parse_body_text};
use hookd_core::validation::too_deep;

const RECORD: &str = r#"{"timestamp_device":"2023-12-01T09:51:00Z","tag":"d1","device_id":"dev-17","asset_id":"ast-1234","asset_name":"Machine 1","device_name":"Machine 1","fleet_id":"flt-1234","payload":{"ts":1701424260,"ex":[0,0],"C":{"celsius":21.5},"sent_at_us":1764870000000000,"seq":12345,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#;
const RECORDS: usize = 200_000;
const MAX_DEPTH: usize = 32;

fn main() {
    let batch = format!("[{}]", vec![RECORD; 100].join(","));
    println!(
        "{} bytes a record; µs per record read, validated and stamped",
        RECORD.len()
    );
    println!("| body | as text | as a value | value / text |\n|---|---|---|---|");
    for (name, body, per_body) in [("one record", RECORD.to_owned(), 1), ("arrays of 100", batch, 100)] {
        let bodies = RECORDS / per_body;
        // Alternating, best of three each: the machine's drift falls on both alike.
        let (mut text, mut value) = (f64::MAX, f64::MAX);
        for _ in 0..3 {
            text = text.min(time(bodies, per_body, || {
                parse_body_text(&body, Kind::Data, 1000, MAX_DEPTH)
                    .expect("read as text")
                    .expect("valid")
            }));
            value = value.min(time(bodies, per_body, || {
                let parsed: serde_json::Value = serde_json::from_str(&body).expect("JSON");
                assert!(too_deep(&parsed, MAX_DEPTH).is_none());
                parse_body(parsed, Kind::Data, 1000).expect("valid")
            }));
        }
        println!("| {name} | {text:.2} | {value:.2} | {:.2} |", value / text);
    }
}

/// µs per record of reading `bodies` bodies of `per_body` records with `read` and stamping each.
fn time(bodies: usize, per_body: usize, read: impl Fn() -> Vec<RecordIn>) -> f64 {
    let started = Instant::now();
    for _ in 0..bodies {
        for record in read() {
            black_box(record.stamp(
                "rec_01M916MM48NGA19JB7Y9X9Z16X",
                "ws_01M916MM43CMVEV3Q8CC2T4CM5",
                "2026-12-04T18:56:33.390Z",
            ));
        }
    }
    started.elapsed().as_secs_f64() * 1e6 / (bodies * per_body) as f64
}
