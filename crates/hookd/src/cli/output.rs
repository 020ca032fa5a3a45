//! Output: tables for people, JSON for machines, errors on stderr with an exit code.

use std::process::ExitCode;

use comfy_table::presets::NOTHING;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

use crate::client::ClientError;

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

/// Prints `value` as JSON, or as the table `rows` builds.
pub(crate) fn print<T: Serialize>(json: bool, value: &T, header: &[&str], rows: impl FnOnce(&T) -> Vec<Vec<String>>) {
    if json {
        println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
        return;
    }
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    for row in rows(value) {
        table.add_row(row);
    }
    println!("{table}");
}

/// Prints `value` as JSON, or as `label: value` lines.
pub(crate) fn print_fields<T: Serialize>(
    json: bool,
    value: &T,
    fields: impl FnOnce(&T) -> Vec<(&'static str, String)>,
) {
    if json {
        println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
        return;
    }
    let fields = fields(value);
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in fields {
        println!("{key:>width$}: {value}");
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
