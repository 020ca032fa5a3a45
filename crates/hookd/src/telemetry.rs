//! Logging: human-readable text or JSON lines, filtered by `log.level` (or `RUST_LOG`).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Logs to stderr; colours only when stderr is a terminal.
pub fn init(format: LogFormat, level: &str) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
