//! `hookd replay`: send a webhook's deliveries again, by time range and state.

use indicatif::{ProgressBar, ProgressStyle};

use super::Remote;
use super::deliveries::StateFlag;
use super::output::{self, Failure};
use crate::client::DeliveryFilter;
use crate::model::{Delivery, DeliveryState, ReplayIn};

#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// The webhook whose deliveries to send again.
    #[arg(long)]
    webhook: String,
    /// Deliveries created at or after this time (RFC 3339).
    #[arg(long)]
    since: String,
    /// …and before this time (RFC 3339); default now.
    #[arg(long)]
    until: Option<String>,
    /// States to replay, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "dead,failed")]
    state: Vec<StateFlag>,
    /// Print what would be sent again, and send nothing.
    #[arg(long)]
    dry_run: bool,
}

fn time(s: &str, flag: &str) -> Result<i64, Failure> {
    hookd_core::timefmt::parse_rfc3339(s).ok_or_else(|| {
        Failure::usage(format!(
            "--{flag} `{s}` is not an RFC 3339 time, e.g. 2024-03-01T10:00:00Z"
        ))
    })
}

pub(crate) async fn run(args: ReplayArgs, remote: Remote) -> Result<(), Failure> {
    let client = remote.client()?;
    let ws = remote.workspace(&client).await?;
    let since = time(&args.since, "since")?;
    let until = args
        .until
        .as_deref()
        .map(|u| time(u, "until"))
        .transpose()?
        .unwrap_or(i64::MAX);
    let states: Vec<DeliveryState> = args.state.iter().copied().map(Into::into).collect();

    // Find what matches: every page of each state, newest first, within the time range.
    let progress = ProgressBar::new_spinner();
    progress.set_style(
        ProgressStyle::with_template("{spinner} scanned {pos} deliveries, {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut matched: Vec<Delivery> = Vec::new();
    for state in &states {
        let mut filter = DeliveryFilter {
            webhook_id: Some(args.webhook.clone()),
            state: Some(*state),
            limit: Some(250),
            after: None,
        };
        loop {
            let page = client.list_deliveries(&ws, &filter).await?;
            progress.inc(page.data.len() as u64);
            let created = |d: &Delivery| hookd_core::timefmt::parse_rfc3339(&d.created_at).unwrap_or(0);
            let older_than_range = page.data.last().is_some_and(|d| created(d) < since);
            matched.extend(page.data.into_iter().filter(|d| (since..until).contains(&created(d))));
            progress.set_message(format!("{} to replay", matched.len()));
            match page.next_cursor {
                Some(cursor) if !older_than_range => filter.after = Some(cursor),
                _ => break,
            }
        }
    }
    progress.finish_and_clear();

    if args.dry_run {
        output::list(remote.json, &matched, &["ID", "STATE", "ATTEMPTS", "CREATED"], |d| {
            vec![
                d.id.clone(),
                d.state.as_str().into(),
                d.attempt_count.to_string(),
                d.created_at.clone(),
            ]
        });
        if !remote.json {
            out!("dry run: {} deliveries would be sent again", matched.len());
        }
        return Ok(());
    }
    let replay = ReplayIn {
        since: args.since.clone(),
        until: args.until.clone(),
        states: Some(args.state.iter().copied().map(Into::into).collect()),
        dry_run: None,
    };
    let result = client.replay(&ws, &args.webhook, &replay).await?;
    output::fields(remote.json, &result, |r| vec![("replayed", r.replayed.to_string())]);
    Ok(())
}
