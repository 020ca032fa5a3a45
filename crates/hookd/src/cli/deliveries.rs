//! `hookd deliveries list|show|retry|tail`.

use std::collections::HashMap;
use std::time::Duration;

use super::Remote;
use super::output::{self, Failure, or_dash};
use crate::client::{Client, ClientError, DeliveryFilter};
use crate::model::{Attempt, Delivery, DeliveryState};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum DeliveryCommand {
    /// List deliveries, newest first.
    List {
        /// Only this webhook's.
        #[arg(long)]
        webhook: Option<String>,
        /// Only deliveries in this state.
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
        /// Print only the ids, one per line (for `hookd deliveries show $(…)`).
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Show a delivery: the request body it sends and every attempt, with the receiver's
    /// status, headers and the start of its answer.
    Show {
        /// The delivery id (`dlv_…`).
        delivery: String,
    },
    /// Retry a delivery now.
    Retry {
        /// The delivery id (`dlv_…`).
        delivery: String,
    },
    /// Follow new attempts as they happen: time, webhook, status, latency, explanation. With
    /// --json, one JSON object per line. Waits for hookd when it restarts.
    Tail {
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
    /// Show a record as stored (`rec_…`, as listed by `show`).
    Record {
        /// The record id (`rec_…`).
        record: String,
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

/// One attempt as lines: when, status, latency, outcome and explanation, then the response's
/// headers and the start of its body.
pub(crate) fn print_attempt(a: &Attempt) {
    output::print_lines(&[
        ("attempt", a.id.clone()),
        ("started", a.started_at.clone()),
        ("status", attempt_status(a)),
        ("took", format!("{} ms", a.duration_ms)),
        ("outcome", a.outcome.as_str().to_owned()),
        ("explanation", a.explanation.clone()),
    ]);
    if !a.response_headers.is_empty() {
        out!("  response headers:");
        for (name, value) in &a.response_headers {
            out!("    {name}: {value}");
        }
    }
    match &a.response_body {
        Some(body) => {
            out!("  response body (first {} bytes kept):", body.len());
            for line in body.lines() {
                out!("    {line}");
            }
        }
        None => out!("  response body: none"),
    }
}

pub(crate) async fn run(command: DeliveryCommand, remote: Remote) -> Result<(), Failure> {
    let client = remote.client()?;
    let ws = remote.workspace(&client).await?;
    match command {
        DeliveryCommand::List {
            webhook,
            state,
            limit,
            after,
            all,
            quiet,
        } => {
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
            if quiet {
                for delivery in &list {
                    out!("{}", delivery.id);
                }
            } else {
                output::list(remote.json, &list, &HEADER, row);
            }
        }
        DeliveryCommand::Show { delivery } => {
            let detail = client.get_delivery(&ws, &delivery).await?;
            if remote.json {
                output::json(&detail);
                return Ok(());
            }
            let d = &detail.delivery;
            output::print_lines(&[
                ("id", d.id.clone()),
                ("webhook", d.webhook_id.clone()),
                ("state", d.state.as_str().to_owned()),
                ("summary", or_dash(d.last_explanation.clone())),
                ("records", d.record_ids.join(", ")),
                ("created", d.created_at.clone()),
                ("next attempt", or_dash(d.next_attempt_at.clone())),
            ]);
            match &detail.request_body {
                Some(body) => {
                    out!("\nrequest body:");
                    out!("{}", serde_json::to_string_pretty(body).unwrap_or_default());
                }
                None => out!("\nrequest body: {}", or_dash(detail.request_body_note.clone())),
            }
            for attempt in &detail.attempts {
                out!("");
                print_attempt(attempt);
            }
            if detail.attempts.is_empty() {
                out!("\nno attempts yet");
            }
        }
        DeliveryCommand::Retry { delivery } => {
            let retried = client.retry_delivery(&ws, &delivery).await?;
            output::fields(remote.json, &retried, |d| {
                vec![
                    ("id", d.id.clone()),
                    ("state", d.state.as_str().to_owned()),
                    ("next attempt", or_dash(d.next_attempt_at.clone())),
                    ("summary", or_dash(d.last_explanation.clone())),
                ]
            });
        }
        DeliveryCommand::Tail {
            webhook,
            duration,
            every,
        } => {
            let parse = |s: &str, flag: &str| {
                hookd_core::duration::parse(s).map_err(|e| Failure::usage(format!("--{flag}: {e}")))
            };
            let every = parse(&every, "every")?;
            let until = duration
                .map(|d| parse(&d, "for"))
                .transpose()?
                .map(|d| tokio::time::Instant::now() + d);
            let tail = Tail {
                client: &client,
                server: remote.server(),
                ws: &ws,
                filter: DeliveryFilter {
                    webhook_id: webhook,
                    limit: Some(250),
                    ..Default::default()
                },
                json: remote.json,
            };
            tail.run(every, until).await?;
        }
        DeliveryCommand::Record { record } => {
            let record = client.get_record(&ws, &record).await?;
            output::json(&record);
        }
    }
    Ok(())
}

/// Follows the delivery log, printing each attempt made since the tail started.
struct Tail<'a> {
    client: &'a Client,
    server: &'a str,
    ws: &'a str,
    filter: DeliveryFilter,
    json: bool,
}

/// Longest wait between tries to reach hookd again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Tail<'_> {
    async fn run(&self, every: Duration, until: Option<tokio::time::Instant>) -> Result<(), Failure> {
        // Attempts already seen, by delivery: the baseline is what exists when the tail starts.
        let mut seen: HashMap<String, u32> = self
            .client
            .list_deliveries(self.ws, &self.filter)
            .await?
            .data
            .into_iter()
            .map(|d| (d.id, d.attempt_count))
            .collect();
        if !self.json {
            eprintln!("following new attempts (Ctrl-C to stop)");
        }
        let mut wait = every;
        let mut lost = false;
        loop {
            if until.is_some_and(|t| tokio::time::Instant::now() >= t) {
                return Ok(());
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
            match self.poll(&mut seen).await {
                Ok(()) => {
                    if lost {
                        eprintln!("reconnected to hookd at {}", self.server);
                        lost = false;
                    }
                    wait = every;
                }
                Err(err) if is_transient(&err) => {
                    wait = if lost {
                        (wait * 2).min(MAX_BACKOFF)
                    } else {
                        every.max(Duration::from_secs(1))
                    };
                    lost = true;
                    eprintln!(
                        "hookd at {} is not answering ({err}); trying again in {}",
                        self.server,
                        hookd_core::duration::format(wait)
                    );
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Prints the attempts made since the last poll.
    async fn poll(&self, seen: &mut HashMap<String, u32>) -> Result<(), ClientError> {
        let page = self.client.list_deliveries(self.ws, &self.filter).await?;
        // Oldest first, so lines come out in the order things happened.
        for delivery in page.data.iter().rev() {
            let before = seen.get(&delivery.id).copied().unwrap_or(0);
            if delivery.attempt_count <= before {
                continue;
            }
            let detail = self.client.get_delivery(self.ws, &delivery.id).await?;
            for attempt in detail.attempts.iter().skip(before as usize) {
                if self.json {
                    out!(
                        "{}",
                        serde_json::json!({ "webhook_id": delivery.webhook_id, "attempt": attempt })
                    );
                } else {
                    out!(
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
        Ok(())
    }
}

/// Whether hookd is away for now (restarting, or its database is): worth waiting for.
fn is_transient(err: &ClientError) -> bool {
    match err {
        ClientError::Unreachable { .. } => true,
        ClientError::Api { status, .. } | ClientError::Unexpected { status, .. } => {
            status.as_u16() == 503 || status.as_u16() == 502
        }
    }
}
