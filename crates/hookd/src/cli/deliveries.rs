//! `hookd deliveries list|show|retry|tail`.

use std::collections::HashMap;
use std::time::Duration;

use super::output::{self, Failure, or_dash};
use super::{Remote, WorkspaceArg};
use crate::client::{Client, DeliveryFilter};
use crate::model::{Attempt, Delivery, DeliveryState};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum DeliveryCommand {
    /// List deliveries, newest first.
    List {
        #[command(flatten)]
        workspace: WorkspaceArg,
        /// Only this webhook's.
        #[arg(long)]
        webhook: Option<String>,
        #[arg(long, value_enum)]
        state: Option<StateFlag>,
        /// How many (1–250), or with --all the page size.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Start after this delivery id (the previous page's last).
        #[arg(long)]
        after: Option<String>,
        /// Every page, not only the first.
        #[arg(long)]
        all: bool,
    },
    /// Show a delivery with all its attempts.
    Show {
        #[command(flatten)]
        workspace: WorkspaceArg,
        delivery: String,
    },
    /// Retry a delivery now.
    Retry {
        #[command(flatten)]
        workspace: WorkspaceArg,
        delivery: String,
    },
    /// Follow new attempts as they happen: time, webhook, status, latency, explanation.
    Tail {
        #[command(flatten)]
        workspace: WorkspaceArg,
        /// Only this webhook's.
        #[arg(long)]
        webhook: Option<String>,
        /// Stop after this long (e.g. 30s); runs until Ctrl-C otherwise.
        #[arg(long = "for")]
        duration: Option<String>,
        /// How often to look for new attempts.
        #[arg(long, default_value = "1s")]
        every: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum StateFlag {
    Pending,
    Delivered,
    Failed,
    Dead,
}

impl From<StateFlag> for DeliveryState {
    fn from(flag: StateFlag) -> Self {
        match flag {
            StateFlag::Pending => Self::Pending,
            StateFlag::Delivered => Self::Delivered,
            StateFlag::Failed => Self::Failed,
            StateFlag::Dead => Self::Dead,
        }
    }
}

fn row(d: &Delivery) -> Vec<String> {
    vec![
        d.id.clone(),
        d.webhook_id.clone(),
        d.state.as_str().to_owned(),
        d.attempt_count.to_string(),
        or_dash(d.last_status),
        d.next_attempt_at.clone().unwrap_or_else(|| d.updated_at.clone()),
        or_dash(d.last_explanation.clone()),
    ]
}

const HEADER: [&str; 7] = [
    "ID",
    "WEBHOOK",
    "STATE",
    "ATTEMPTS",
    "LAST",
    "NEXT / UPDATED",
    "EXPLANATION",
];

fn attempt_status(a: &Attempt) -> String {
    or_dash(a.status.map(|s| s.to_string()).or_else(|| a.error_kind.clone()))
}

pub(crate) async fn run(command: DeliveryCommand, remote: Remote) -> Result<(), Failure> {
    let client = remote.client()?;
    match command {
        DeliveryCommand::List {
            workspace,
            webhook,
            state,
            limit,
            after,
            all,
        } => {
            let ws = workspace.resolve(&client).await?;
            let mut filter = DeliveryFilter {
                webhook_id: webhook,
                state: state.map(Into::into),
                limit: Some(limit),
                after,
            };
            let mut list = Vec::new();
            loop {
                let page = client.list_deliveries(&ws, &filter).await?;
                list.extend(page.data);
                match page.next_cursor {
                    Some(cursor) if all => filter.after = Some(cursor),
                    _ => break,
                }
            }
            output::print(remote.json, &list, &HEADER, |list| list.iter().map(row).collect());
        }
        DeliveryCommand::Show { workspace, delivery } => {
            let ws = workspace.resolve(&client).await?;
            let detail = client.get_delivery(&ws, &delivery).await?;
            if remote.json {
                println!("{}", serde_json::to_string_pretty(&detail).unwrap_or_default());
                return Ok(());
            }
            let d = &detail.delivery;
            output::print_fields(false, d, |d| {
                vec![
                    ("id", d.id.clone()),
                    ("webhook", d.webhook_id.clone()),
                    ("state", d.state.as_str().to_owned()),
                    ("records", d.record_ids.join(", ")),
                    ("created", d.created_at.clone()),
                    ("next attempt", or_dash(d.next_attempt_at.clone())),
                ]
            });
            println!();
            output::print(
                false,
                &detail.attempts,
                &["STARTED", "STATUS", "MS", "EXPLANATION"],
                |attempts| {
                    attempts
                        .iter()
                        .map(|a| {
                            vec![
                                a.started_at.clone(),
                                attempt_status(a),
                                a.duration_ms.to_string(),
                                a.explanation.clone(),
                            ]
                        })
                        .collect()
                },
            );
        }
        DeliveryCommand::Retry { workspace, delivery } => {
            let ws = workspace.resolve(&client).await?;
            let retried = client.retry_delivery(&ws, &delivery).await?;
            output::print(remote.json, &vec![retried], &HEADER, |list| {
                list.iter().map(row).collect()
            });
        }
        DeliveryCommand::Tail {
            workspace,
            webhook,
            duration,
            every,
        } => {
            let ws = workspace.resolve(&client).await?;
            let parse = |s: &str, flag: &str| {
                hookd_core::duration::parse(s).map_err(|e| Failure::usage(format!("--{flag}: {e}")))
            };
            let every = parse(&every, "every")?;
            let until = duration
                .map(|d| parse(&d, "for"))
                .transpose()?
                .map(|d| tokio::time::Instant::now() + d);
            tail(&client, &ws, webhook, every, until, remote.json).await?;
        }
    }
    Ok(())
}

/// Polls the newest deliveries and prints each attempt made since the tail started.
async fn tail(
    client: &Client,
    ws: &str,
    webhook: Option<String>,
    every: Duration,
    until: Option<tokio::time::Instant>,
    json: bool,
) -> Result<(), Failure> {
    let filter = DeliveryFilter {
        webhook_id: webhook,
        limit: Some(250),
        ..Default::default()
    };
    // Attempts already seen, by delivery: the baseline is what exists when the tail starts.
    let mut seen: HashMap<String, u32> = client
        .list_deliveries(ws, &filter)
        .await?
        .data
        .into_iter()
        .map(|d| (d.id, d.attempt_count))
        .collect();
    if !json {
        eprintln!("following new attempts (Ctrl-C to stop)");
    }
    loop {
        if until.is_some_and(|t| tokio::time::Instant::now() >= t) {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let page = client.list_deliveries(ws, &filter).await?;
        // Oldest first, so lines come out in the order things happened.
        for delivery in page.data.iter().rev() {
            let before = seen.get(&delivery.id).copied().unwrap_or(0);
            if delivery.attempt_count <= before {
                continue;
            }
            let detail = client.get_delivery(ws, &delivery.id).await?;
            for attempt in detail.attempts.iter().skip(before as usize) {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({ "webhook_id": delivery.webhook_id, "attempt": attempt })
                    );
                } else {
                    println!(
                        "{}  {}  {:>7}  {:>6} ms  {}",
                        attempt.started_at,
                        delivery.webhook_id,
                        attempt_status(attempt),
                        attempt.duration_ms,
                        attempt.explanation
                    );
                }
            }
            seen.insert(delivery.id.clone(), delivery.attempt_count);
        }
    }
}
