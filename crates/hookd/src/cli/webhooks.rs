//! `hookd webhooks …`: every field of a webhook as a flag.

use serde_json::{Map, Value, json};

use super::output::{self, Failure, or_dash};
use super::{Remote, WorkspaceArg};
use crate::model::{Format, HttpMethod, RecordKind, Webhook};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum WebhookCommand {
    /// Create a webhook; prints it with its signing secret.
    Create {
        #[command(flatten)]
        workspace: WorkspaceArg,
        #[command(flatten)]
        fields: WebhookFlags,
        /// The signing secret (`whsec_…`); generated when left out.
        #[arg(long)]
        secret: Option<String>,
    },
    /// List webhooks.
    List {
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
    /// Show one webhook.
    Get {
        #[command(flatten)]
        workspace: WorkspaceArg,
        webhook: String,
    },
    /// Change the fields given; filter flags replace all filters of their kind.
    Update {
        #[command(flatten)]
        workspace: WorkspaceArg,
        webhook: String,
        #[command(flatten)]
        fields: WebhookFlags,
    },
    /// Delete a webhook and its deliveries.
    Delete {
        #[command(flatten)]
        workspace: WorkspaceArg,
        webhook: String,
    },
    /// Send a TEST event now and show the attempt.
    Test {
        #[command(flatten)]
        workspace: WorkspaceArg,
        webhook: String,
    },
    /// Show the signing secret.
    Secret {
        #[command(flatten)]
        workspace: WorkspaceArg,
        webhook: String,
    },
    /// Replace the signing secret; the old one keeps signing for the grace period.
    RotateSecret {
        #[command(flatten)]
        workspace: WorkspaceArg,
        webhook: String,
        /// The new secret; generated when left out.
        #[arg(long)]
        secret: Option<String>,
    },
}

/// A webhook's fields as flags. On create, `--kind` and `--url` are required.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct WebhookFlags {
    /// A name for people; defaults to the URL's host.
    #[arg(long)]
    name: Option<String>,
    /// Which records: data points or events.
    #[arg(long, value_enum)]
    kind: Option<KindFlag>,
    /// Where to deliver (http or https).
    #[arg(long)]
    url: Option<String>,
    #[arg(long, value_enum)]
    method: Option<MethodFlag>,
    /// Only records of this fleet (repeatable).
    #[arg(long = "fleet")]
    fleets: Vec<String>,
    /// Only data points with this tag (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Only events of this type (repeatable).
    #[arg(long = "event-type")]
    event_types: Vec<String>,
    /// Only records of this device (repeatable).
    #[arg(long = "device")]
    devices: Vec<String>,
    /// Only records with this label, KEY=VALUE (repeatable).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// A token sent with every request.
    #[arg(long)]
    token: Option<String>,
    /// The header the token is sent in (default X-AUTH-TOKEN).
    #[arg(long)]
    token_header: Option<String>,
    /// An extra header, NAME=VALUE; values may use {{device_id}}, {{labels.x}} (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    #[arg(long, value_enum)]
    format: Option<FormatFlag>,
    /// Records per batch, 1–1000.
    #[arg(long)]
    batch_max: Option<u32>,
    /// How long to wait for the receiver, e.g. 10s.
    #[arg(long)]
    timeout: Option<String>,
    /// Delays between retries, e.g. 5s,5m,30m.
    #[arg(long = "retry", value_delimiter = ',')]
    retry: Option<Vec<String>>,
    /// Disable the webhook (its deliveries are held).
    #[arg(long, conflicts_with = "enable")]
    disable: bool,
    /// Enable the webhook.
    #[arg(long)]
    enable: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KindFlag {
    Data,
    Event,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MethodFlag {
    #[value(name = "POST", alias = "post")]
    Post,
    #[value(name = "GET", alias = "get")]
    Get,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatFlag {
    Batch,
    Single,
}

impl WebhookFlags {
    /// The flags given, as a request body (absent flags are left out).
    fn body(&self) -> Result<Map<String, Value>, Failure> {
        let mut body = Map::new();
        let mut put = |key: &str, value: Value| {
            body.insert(key.to_owned(), value);
        };
        if let Some(name) = &self.name {
            put("name", json!(name));
        }
        if let Some(kind) = self.kind {
            put(
                "kind",
                json!(match kind {
                    KindFlag::Data => RecordKind::Data,
                    KindFlag::Event => RecordKind::Event,
                }),
            );
        }
        if let Some(url) = &self.url {
            put("url", json!(url));
        }
        if let Some(method) = self.method {
            put(
                "method",
                json!(match method {
                    MethodFlag::Post => HttpMethod::Post,
                    MethodFlag::Get => HttpMethod::Get,
                }),
            );
        }
        let labels = output::pairs(&self.labels, "label")?;
        let any_filter = !(self.fleets.is_empty()
            && self.tags.is_empty()
            && self.event_types.is_empty()
            && self.devices.is_empty()
            && labels.is_empty());
        if any_filter {
            put(
                "filters",
                json!({ "fleets": self.fleets, "tags": self.tags, "event_types": self.event_types, "devices": self.devices, "labels": labels }),
            );
        }
        if let Some(token) = &self.token {
            put("token", json!(token));
        }
        if let Some(header) = &self.token_header {
            put("token_header", json!(header));
        }
        if !self.headers.is_empty() {
            put("headers", json!(output::pairs(&self.headers, "header")?));
        }
        if let Some(format) = self.format {
            put(
                "format",
                json!(match format {
                    FormatFlag::Batch => Format::Batch,
                    FormatFlag::Single => Format::Single,
                }),
            );
        }
        if let Some(n) = self.batch_max {
            put("batch_max", json!(n));
        }
        if let Some(timeout) = &self.timeout {
            put("timeout", json!(timeout));
        }
        if let Some(retry) = &self.retry {
            put("retry_schedule", json!(retry));
        }
        if self.disable || self.enable {
            put("enabled", json!(self.enable));
        }
        Ok(body)
    }
}

fn show(json: bool, webhook: &Webhook, secret: Option<&str>) {
    if json {
        let mut value = serde_json::to_value(webhook).unwrap_or_default();
        if let Some(secret) = secret {
            value["secret"] = json!(secret);
        }
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        return;
    }
    let f = &webhook.filters;
    let list = |items: &[String]| {
        if items.is_empty() {
            "any".to_owned()
        } else {
            items.join(", ")
        }
    };
    output::print_fields(false, webhook, |w| {
        let mut fields = vec![
            ("id", w.id.clone()),
            ("name", w.name.clone()),
            ("kind", json!(w.kind).as_str().unwrap_or_default().to_owned()),
            (
                "url",
                format!("{} {}", json!(w.method).as_str().unwrap_or_default(), w.url),
            ),
            ("fleets", list(&f.fleets)),
            ("tags", list(&f.tags)),
            ("event types", list(&f.event_types)),
            ("devices", list(&f.devices)),
            (
                "labels",
                if f.labels.is_empty() {
                    "any".into()
                } else {
                    format!("{:?}", f.labels)
                },
            ),
            (
                "token",
                if w.has_token {
                    format!("set, sent in {}", w.token_header)
                } else {
                    "none".into()
                },
            ),
            (
                "headers",
                if w.headers.is_empty() {
                    "none".into()
                } else {
                    format!("{:?}", w.headers)
                },
            ),
            (
                "format",
                format!(
                    "{} (batch_max {})",
                    json!(w.format).as_str().unwrap_or_default(),
                    w.batch_max
                ),
            ),
            ("timeout", w.timeout.clone()),
            ("retries", w.retry_schedule.join(", ")),
            (
                "enabled",
                if w.enabled {
                    "yes".into()
                } else {
                    format!("no — {}", or_dash(w.disabled_reason.as_deref()))
                },
            ),
        ];
        if let Some(secret) = secret {
            fields.push(("secret", secret.to_owned()));
        }
        fields
    });
}

pub(crate) async fn run(command: WebhookCommand, remote: Remote) -> Result<(), Failure> {
    let client = remote.client()?;
    match command {
        WebhookCommand::Create {
            workspace,
            fields,
            secret,
        } => {
            let ws = workspace.resolve(&client).await?;
            let mut body = fields.body()?;
            let url = body
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(|| Failure::usage("--url is required"))?
                .to_owned();
            if !body.contains_key("kind") {
                return Err(Failure::usage("--kind is required (data or event)"));
            }
            if !body.contains_key("name") {
                let host = url::Url::parse(&url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or(url);
                body.insert("name".into(), json!(host));
            }
            if let Some(secret) = secret {
                body.insert("secret".into(), json!(secret));
            }
            let created = client.create_webhook(&ws, &body).await?;
            show(remote.json, &created.webhook, Some(&created.secret));
        }
        WebhookCommand::List { workspace } => {
            let ws = workspace.resolve(&client).await?;
            let list = client.list_webhooks(&ws).await?;
            output::print(remote.json, &list, &["ID", "NAME", "KIND", "URL", "ENABLED"], |list| {
                list.iter()
                    .map(|w| {
                        let kind = json!(w.kind).as_str().unwrap_or_default().to_owned();
                        vec![
                            w.id.clone(),
                            w.name.clone(),
                            kind,
                            w.url.clone(),
                            if w.enabled { "yes".into() } else { "no".into() },
                        ]
                    })
                    .collect()
            });
        }
        WebhookCommand::Get { workspace, webhook } => {
            let ws = workspace.resolve(&client).await?;
            show(remote.json, &client.get_webhook(&ws, &webhook).await?, None);
        }
        WebhookCommand::Update {
            workspace,
            webhook,
            fields,
        } => {
            let ws = workspace.resolve(&client).await?;
            let body = fields.body()?;
            if body.is_empty() {
                return Err(Failure::usage("nothing to change: give at least one field flag"));
            }
            show(remote.json, &client.update_webhook(&ws, &webhook, &body).await?, None);
        }
        WebhookCommand::Delete { workspace, webhook } => {
            let ws = workspace.resolve(&client).await?;
            client.delete_webhook(&ws, &webhook).await?;
            if !remote.json {
                println!("deleted {webhook}");
            }
        }
        WebhookCommand::Test { workspace, webhook } => {
            let ws = workspace.resolve(&client).await?;
            let result = client.test_webhook(&ws, &webhook).await?;
            output::print_fields(remote.json, &result, |r| {
                vec![
                    ("delivery", r.delivery_id.clone()),
                    (
                        "status",
                        or_dash(r.attempt.status.map(|s| s.to_string()).or(r.attempt.error_kind.clone())),
                    ),
                    ("took", format!("{} ms", r.attempt.duration_ms)),
                    ("outcome", r.attempt.outcome.as_str().to_owned()),
                    ("explanation", r.attempt.explanation.clone()),
                ]
            });
        }
        WebhookCommand::Secret { workspace, webhook } => {
            let ws = workspace.resolve(&client).await?;
            let secret = client.read_secret(&ws, &webhook).await?;
            print_secret(remote.json, &secret);
        }
        WebhookCommand::RotateSecret {
            workspace,
            webhook,
            secret,
        } => {
            let ws = workspace.resolve(&client).await?;
            let secret = client.rotate_secret(&ws, &webhook, secret.as_deref()).await?;
            print_secret(remote.json, &secret);
        }
    }
    Ok(())
}

fn print_secret(json: bool, secret: &crate::model::Secret) {
    output::print_fields(json, secret, |s| {
        let mut fields = vec![("secret", s.secret.clone())];
        for previous in &s.previous {
            fields.push(("previous", format!("still signing until {}", previous.expires_at)));
        }
        fields
    });
}
