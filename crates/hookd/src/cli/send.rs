//! `hookd send data|event`: one record from flags, or many from a file (a JSON array, or one
//! JSON object per line), sent in batches with a progress bar.

use std::io::Read;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};

use super::Remote;
use super::output::{self, Failure};
use crate::client::{Client, ClientError};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SendCommand {
    /// Send data points.
    Data {
        #[command(flatten)]
        common: SendArgs,
        /// The device the data point comes from (`device_id`).
        #[arg(long, required_unless_present = "file")]
        device: Option<String>,
        /// The data point's tag.
        #[arg(long, required_unless_present = "file")]
        tag: Option<String>,
        /// The device's name for people (`device_name`).
        #[arg(long)]
        device_name: Option<String>,
        /// The asset the device belongs to (`asset_id`).
        #[arg(long)]
        asset_id: Option<String>,
        /// The asset's name for people (`asset_name`).
        #[arg(long)]
        asset_name: Option<String>,
        /// When the device measured it, RFC 3339 (`timestamp_device`).
        #[arg(long)]
        timestamp_device: Option<String>,
    },
    /// Send events.
    Event {
        #[command(flatten)]
        common: SendArgs,
        /// The event type.
        #[arg(long = "type", required_unless_present = "file")]
        event_type: Option<String>,
        /// The device the event is about (`device_id`).
        #[arg(long)]
        device: Option<String>,
        /// `d2c` (device to cloud) or `c2d` (cloud to device).
        #[arg(long, value_parser = ["d2c", "c2d"])]
        direction: Option<String>,
        /// When it happened, RFC 3339 (`ts`).
        #[arg(long)]
        ts: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct SendArgs {
    /// Records to send: a JSON array or NDJSON; `-` reads stdin.
    #[arg(long, conflicts_with_all = ["payload", "fleet", "label"])]
    file: Option<PathBuf>,
    /// The payload, as JSON.
    #[arg(long, default_value = "{}")]
    payload: String,
    /// The fleet the record comes from (`fleet_id`).
    #[arg(long)]
    fleet: Option<String>,
    /// A label, KEY=VALUE (repeatable).
    #[arg(long)]
    label: Vec<String>,
    /// Records per request.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Idempotency-Key for a single request.
    #[arg(long)]
    idempotency_key: Option<String>,
}

/// Reads records from a file or stdin: a JSON array, a single object, or NDJSON.
fn read_records(path: &PathBuf) -> Result<Vec<Value>, Failure> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::other(format!("cannot read stdin: {e}")))?;
    } else {
        text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed)
            .map_err(|e| Failure::usage(format!("{} is not a JSON array: {e}", path.display())));
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| Failure::usage(format!("line {} of {}: {e}", n + 1, path.display())))
        })
        .collect()
}

fn record_from_flags(common: &SendArgs, fields: &[(&str, &Option<String>)]) -> Result<Value, Failure> {
    let payload: Value =
        serde_json::from_str(&common.payload).map_err(|e| Failure::usage(format!("--payload is not JSON: {e}")))?;
    let mut record = Map::new();
    for (key, value) in fields {
        if let Some(value) = value {
            record.insert((*key).to_owned(), json!(value));
        }
    }
    if let Some(fleet) = &common.fleet {
        record.insert("fleet_id".into(), json!(fleet));
    }
    let labels = output::pairs(&common.label, "label")?;
    if !labels.is_empty() {
        record.insert("labels".into(), json!(labels));
    }
    record.insert("payload".into(), payload);
    Ok(Value::Object(record))
}

pub(crate) async fn run(command: SendCommand, remote: Remote) -> Result<(), Failure> {
    let client = remote.client()?;
    let (common, events, records) = match &command {
        SendCommand::Data {
            common,
            device,
            tag,
            device_name,
            asset_id,
            asset_name,
            timestamp_device,
        } => {
            let records = match &common.file {
                Some(path) => read_records(path)?,
                None => vec![record_from_flags(
                    common,
                    &[
                        ("device_id", device),
                        ("tag", tag),
                        ("device_name", device_name),
                        ("asset_id", asset_id),
                        ("asset_name", asset_name),
                        ("timestamp_device", timestamp_device),
                    ],
                )?],
            };
            (common, false, records)
        }
        SendCommand::Event {
            common,
            event_type,
            device,
            direction,
            ts,
        } => {
            let records = match &common.file {
                Some(path) => read_records(path)?,
                None => vec![record_from_flags(
                    common,
                    &[
                        ("type", event_type),
                        ("device_id", device),
                        ("direction", direction),
                        ("ts", ts),
                    ],
                )?],
            };
            (common, true, records)
        }
    };
    if records.is_empty() {
        return Err(Failure::usage("no records to send"));
    }
    if common.batch == 0 {
        return Err(Failure::usage("--batch must be at least 1"));
    }
    if common.idempotency_key.is_some() && records.len() > common.batch {
        return Err(Failure::usage(
            "--idempotency-key applies to one request; send at most --batch records with it",
        ));
    }
    let ws = remote.workspace(&client).await?;
    let ids = send_all(&client, &ws, events, &records, common).await?;
    if remote.json {
        output::json(&json!({ "ids": ids }));
    } else {
        out!(
            "sent {} record(s) in {} request(s)",
            ids.len(),
            records.len().div_ceil(common.batch)
        );
    }
    Ok(())
}

async fn send_all(
    client: &Client,
    ws: &str,
    events: bool,
    records: &[Value],
    common: &SendArgs,
) -> Result<Vec<String>, Failure> {
    let progress = if records.len() > common.batch {
        ProgressBar::new(records.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut ids = Vec::with_capacity(records.len());
    for (n, chunk) in records.chunks(common.batch).enumerate() {
        let key = common.idempotency_key.as_deref();
        let body = if chunk.len() == 1 {
            chunk[0].clone()
        } else {
            Value::Array(chunk.to_vec())
        };
        let sent = if events {
            client.send_events(ws, &body, key).await
        } else {
            client.send_data(ws, &body, key).await
        };
        match sent {
            Ok(accepted) => ids.extend(accepted.ids),
            Err(err) => {
                progress.abandon();
                let first = n * common.batch;
                return Err(explain_chunk_error(err, first, chunk.len(), ids.len()));
            }
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    Ok(ids)
}

/// Names the failing record by its position in the whole input, and says what was sent.
fn explain_chunk_error(err: ClientError, first: usize, len: usize, sent: usize) -> Failure {
    let record = match &err {
        ClientError::Api { field: Some(field), .. } => field
            .strip_prefix('[')
            .and_then(|rest| rest.split_once(']'))
            .and_then(|(index, _)| index.parse::<usize>().ok())
            .map(|i| format!(" (record #{} of the input)", first + i + 1)),
        _ => None,
    };
    let failure = Failure::from(err);
    let range = if len == 1 {
        format!("record {}", first + 1)
    } else {
        format!("records {}–{}", first + 1, first + len)
    };
    let note = format!("; {range} not sent; {sent} record(s) before were accepted");
    Failure::with_note(failure, record.unwrap_or_default() + &note)
}
