//! Output: tables for people, JSON for machines (an object for one thing, an array for a
//! list), errors and warnings on stderr with an exit code. Everything printed goes through
//! [`write_all`], so a closed pipe (`hookd deliveries list | head -1`) ends the command
//! quietly, as Unix tools do, instead of panicking.

use std::io::Write;
use std::process::ExitCode;

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

use crate::client::ClientError;

/// `println!` to stdout through [`write_all`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_all(format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}

/// Writes `bytes` to stdout. When the reader has gone away (a closed pipe), the process exits
/// at once with success: nobody is left to read what follows.
pub(crate) fn write_all(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// Why a command failed, and its exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 2,
        }
    }

    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }

    /// The same failure, with more said after its message.
    pub(crate) fn with_note(mut self, note: String) -> Self {
        self.message.push_str(&note);
        self
    }

    pub(crate) fn report(self) -> ExitCode {
        eprintln!("error: {}", self.message);
        ExitCode::from(self.code)
    }
}

impl From<ClientError> for Failure {
    fn from(err: ClientError) -> Self {
        let code = match err {
            ClientError::Unreachable { .. } => 3,
            _ => 1,
        };
        Self {
            message: err.to_string(),
            code,
        }
    }
}

/// Prints what the API says is worth knowing (`warnings` of a webhook) on stderr.
pub(crate) fn warn(warnings: &[String]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}

/// Prints `value` as pretty JSON.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T) {
    out!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// Prints a list: a JSON array, or the table `rows` builds.
pub(crate) fn list<T: Serialize>(as_json: bool, items: &[T], header: &[&str], row: impl Fn(&T) -> Vec<String>) {
    if as_json {
        return json(items);
    }
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    for item in items {
        table.add_row(row(item));
    }
    out!("{table}");
}

/// Prints one thing: a JSON object, or `label: value` lines.
pub(crate) fn fields<T: Serialize + ?Sized>(
    as_json: bool,
    value: &T,
    fields: impl FnOnce(&T) -> Vec<(&'static str, String)>,
) {
    if as_json {
        return json(value);
    }
    print_lines(&fields(value));
}

/// `label: value` lines, labels right-aligned.
pub(crate) fn print_lines(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in fields {
        out!("{key:>width$}: {value}");
    }
}

pub(crate) fn or_dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// `key=value` pairs from flags.
pub(crate) fn pairs(items: &[String], flag: &str) -> Result<std::collections::BTreeMap<String, String>, Failure> {
    items
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .ok_or_else(|| Failure::usage(format!("--{flag} takes KEY=VALUE, got `{item}`")))
        })
        .collect()
}
