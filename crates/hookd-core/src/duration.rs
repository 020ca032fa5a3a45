//! Durations as people write them: `"250ms"`, `"5s"`, `"2h"`.

use std::time::Duration;

/// Parses a human duration. Rejects zero-length and sub-millisecond values' garbage alike.
pub fn parse(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration ({e}); write e.g. \"250ms\", \"5s\", \"2h\""))
}

/// Renders a duration the way [`parse`] reads it back (`"5m"`, `"1h 30m"`).
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms_and_round_trips() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse("soon").is_err());
        for d in [
            Duration::from_millis(250),
            Duration::from_secs(300),
            Duration::from_secs(36000),
        ] {
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
