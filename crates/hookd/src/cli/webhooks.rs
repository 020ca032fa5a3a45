//! `hookd webhooks …`: every field of a webhook as a flag.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::Remote;
use super::deliveries::print_attempt;
use super::output::{self, Failure, or_dash};
use crate::model::{Filters, Format, HttpMethod, Ordering, RecordKind, TlsIn, Webhook};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum WebhookCommand {
    /// Create a webhook; prints it with its signing secret.
    Create {
        #[command(flatten)]
        fields: WebhookFlags,
        /// The signing secret (`whsec_…`); generated when left out.
        #[arg(long)]
        secret: Option<String>,
        /// Print only the new webhook's id (for `export WH=$(…)`); warnings still go to stderr.
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// List webhooks.
    List,
    /// Show one webhook, with how its receiver has been doing.
    Get {
        /// The webhook id (`wh_…`).
        webhook: String,
    },
    /// Change the fields given. A filter flag replaces that filter only; an empty value
    /// (`--fleet ''`, `--token ''`, `--header ''`) clears the field.
    Update {
        /// The webhook id (`wh_…`).
        webhook: String,
        #[command(flatten)]
        fields: WebhookFlags,
        /// Remove every filter: the webhook then takes every record of its kind.
        #[arg(long)]
        clear_filters: bool,
    },
    /// Delete a webhook and its deliveries.
    Delete {
        /// The webhook id (`wh_…`).
        webhook: String,
    },
    /// Make one test attempt now and show it (status, latency, response). It is never retried.
    Test {
        /// The webhook id (`wh_…`).
        webhook: String,
    },
    /// Show the signing secret.
    Secret {
        /// The webhook id (`wh_…`).
        webhook: String,
    },
    /// Replace the signing secret; the old one keeps signing for the grace period.
    RotateSecret {
        /// The webhook id (`wh_…`).
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
    /// The HTTP method; GET webhooks send no body.
    #[arg(long, value_enum)]
    method: Option<MethodFlag>,
    /// Only records of this fleet (repeatable; '' clears).
    #[arg(long = "fleet")]
    fleets: Vec<String>,
    /// Only data points with this tag (repeatable; '' clears).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Only events of this type (repeatable; '' clears).
    #[arg(long = "event-type")]
    event_types: Vec<String>,
    /// Only records of this device (repeatable; '' clears).
    #[arg(long = "device")]
    devices: Vec<String>,
    /// Only records with this label, KEY=VALUE (repeatable; '' clears).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// A token sent with every request ('' removes it).
    #[arg(long)]
    token: Option<String>,
    /// A jq condition each record must yield `true` for, e.g. '.payload.temp > 80' ('' removes it).
    #[arg(long)]
    condition: Option<String>,
    /// The header the token is sent in (default X-AUTH-TOKEN).
    #[arg(long)]
    token_header: Option<String>,
    /// An extra header, NAME=VALUE; values may use {{device_id}}, {{labels.x}} (repeatable;
    /// '' removes every extra header).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// A query parameter added to the URL, NAME=VALUE, templated like --header (repeatable;
    /// '' removes every one).
    #[arg(long = "query")]
    query: Vec<String>,
    /// `batch`: up to --batch-max records per request; `single`: one record per request.
    #[arg(long, value_enum)]
    format: Option<FormatFlag>,
    /// Records per batch, 1–1000.
    #[arg(long)]
    batch_max: Option<u32>,
    /// How long a batch waits after its first record for more, e.g. 2s (0s: send at once).
    #[arg(long)]
    batch_window: Option<String>,
    /// Debounce: at most one delivery per device per interval, e.g. 1s (0s: none).
    #[arg(long)]
    min_interval: Option<String>,
    /// What a debounce sends: the device's `latest` record, or `all` of them in one batch.
    #[arg(long, value_parser = ["latest", "all"])]
    coalesce: Option<String>,
    /// `device`: each device's records in their own time order, one at a time; `none`.
    #[arg(long, value_parser = ["none", "device"])]
    ordering: Option<String>,
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
    /// A PEM file of CA certificates to trust for this https receiver (the TLS flags replace
    /// the webhook's TLS settings as a whole).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// A PEM client certificate file for mutual TLS (with --tls-client-key).
    #[arg(long, value_name = "FILE", requires = "tls_client_key")]
    tls_client_cert: Option<PathBuf>,
    /// The client certificate's PEM private key file.
    #[arg(long, value_name = "FILE", requires = "tls_client_cert")]
    tls_client_key: Option<PathBuf>,
    /// Accept any certificate: anyone between hookd and the receiver can then read and change
    /// deliveries. For a receiver you cannot give a proper certificate yet.
    #[arg(long)]
    tls_no_verify: bool,
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

/// A repeatable flag's values; a lone empty value means "none".
fn listed(values: &[String]) -> Vec<String> {
    values.iter().filter(|v| !v.is_empty()).cloned().collect()
}

/// A flag's text as a field, `''` meaning "remove it" (`null`).
fn or_null(text: &str) -> Value {
    if text.is_empty() { Value::Null } else { json!(text) }
}

/// A map as `show` prints it.
fn map_or_none(map: &BTreeMap<String, String>) -> String {
    if map.is_empty() {
        "none".into()
    } else {
        format!("{map:?}")
    }
}

/// A repeatable KEY=VALUE flag's pairs; a lone empty value means "none".
fn paired(values: &[String], flag: &str) -> Result<BTreeMap<String, String>, Failure> {
    output::pairs(&listed(values), flag)
}

impl WebhookFlags {
    /// Whether any filter flag is given.
    fn any_filter(&self) -> bool {
        [&self.fleets, &self.tags, &self.event_types, &self.devices, &self.labels]
            .iter()
            .any(|values| !values.is_empty())
    }

    /// `current` with the filters these flags name replaced, the others kept.
    fn filters(&self, mut current: Filters) -> Result<Filters, Failure> {
        let replace = |target: &mut Vec<String>, given: &[String]| {
            if !given.is_empty() {
                *target = listed(given);
            }
        };
        replace(&mut current.fleets, &self.fleets);
        replace(&mut current.tags, &self.tags);
        replace(&mut current.event_types, &self.event_types);
        replace(&mut current.devices, &self.devices);
        if !self.labels.is_empty() {
            current.labels = paired(&self.labels, "label")?;
        }
        Ok(current)
    }

    /// The flags given, as a request body (absent flags are left out). `filters` are the
    /// webhook's filters before the change.
    fn body(&self, filters: Filters) -> Result<Map<String, Value>, Failure> {
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
        if self.any_filter() {
            put("filters", json!(self.filters(filters)?));
        }
        if let Some(token) = &self.token {
            put("token", or_null(token));
        }
        if let Some(condition) = &self.condition {
            put("condition", or_null(condition));
        }
        if let Some(header) = &self.token_header {
            put("token_header", json!(header));
        }
        if !self.headers.is_empty() {
            put("headers", json!(paired(&self.headers, "header")?));
        }
        if !self.query.is_empty() {
            put("query", json!(paired(&self.query, "query")?));
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
        for (field, value) in [
            ("batch_window", &self.batch_window),
            ("min_interval", &self.min_interval),
            ("coalesce", &self.coalesce),
            ("ordering", &self.ordering),
        ] {
            if let Some(value) = value {
                put(field, json!(value));
            }
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
        if let Some(tls) = self.tls()? {
            put("tls", json!(tls));
        }
        Ok(body)
    }

    /// The TLS flags given, with the files they name read, as the `tls` field.
    fn tls(&self) -> Result<Option<TlsIn>, Failure> {
        let given = self.tls_ca.is_some() || self.tls_client_cert.is_some() || self.tls_no_verify;
        if !given {
            return Ok(None);
        }
        let read = |path: &Option<PathBuf>, flag: &str| {
            path.as_ref()
                .map(|p| {
                    std::fs::read_to_string(p).map_err(|e| Failure::usage(format!("--{flag} {}: {e}", p.display())))
                })
                .transpose()
        };
        Ok(Some(TlsIn {
            ca: read(&self.tls_ca, "tls-ca")?,
            client_cert: read(&self.tls_client_cert, "tls-client-cert")?,
            client_key: read(&self.tls_client_key, "tls-client-key")?,
            verify: self.tls_no_verify.then_some(false),
        }))
    }
}

fn word<T: serde::Serialize>(value: T) -> String {
    json!(value).as_str().unwrap_or_default().to_owned()
}

fn show(json: bool, webhook: &Webhook, secret: Option<&str>) {
    if json {
        let mut value = serde_json::to_value(webhook).unwrap_or_default();
        if let Some(secret) = secret {
            value["secret"] = json!(secret);
        }
        return output::json(&value);
    }
    let f = &webhook.filters;
    let list = |items: &[String]| {
        if items.is_empty() {
            "any".to_owned()
        } else {
            items.join(", ")
        }
    };
    let mut fields = vec![
        ("id", webhook.id.clone()),
        ("name", webhook.name.clone()),
        ("kind", word(webhook.kind)),
        ("url", format!("{} {}", word(webhook.method), webhook.url)),
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
            if webhook.has_token {
                format!("set, sent in {}", webhook.token_header)
            } else {
                "none".into()
            },
        ),
        ("condition", webhook.condition.clone().unwrap_or_else(|| "none".into())),
        ("headers", map_or_none(&webhook.headers)),
        ("query", map_or_none(&webhook.query)),
        (
            "format",
            format!("{} (batch_max {})", word(webhook.format), webhook.batch_max),
        ),
        ("pacing", pacing_summary(webhook)),
        ("timeout", webhook.timeout.clone()),
        ("retries", webhook.retry_schedule.join(", ")),
        ("tls", tls_summary(&webhook.tls)),
        (
            "enabled",
            if webhook.enabled {
                "yes".into()
            } else {
                format!("no — {}", or_dash(webhook.disabled_reason.as_deref()))
            },
        ),
    ];
    if let Some(secret) = secret {
        fields.push(("secret", secret.to_owned()));
    }
    output::print_lines(&fields);
}

pub(crate) async fn run(command: WebhookCommand, remote: Remote) -> Result<(), Failure> {
    let client = remote.client()?;
    let ws = remote.workspace(&client).await?;
    match command {
        WebhookCommand::Create { fields, secret, quiet } => {
            let mut body = fields.body(Filters::default())?;
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
            output::warn(&created.webhook.warnings);
            if quiet {
                out!("{}", created.webhook.id);
            } else {
                show(remote.json, &created.webhook, Some(&created.secret));
            }
        }
        WebhookCommand::List => {
            let list = client.list_webhooks(&ws).await?;
            output::list(
                remote.json,
                &list,
                &["ID", "NAME", "KIND", "URL", "ENABLED"],
                |w: &Webhook| {
                    vec![
                        w.id.clone(),
                        w.name.clone(),
                        word(w.kind),
                        w.url.clone(),
                        if w.enabled { "yes".into() } else { "no".into() },
                    ]
                },
            );
        }
        WebhookCommand::Get { webhook } => show(remote.json, &client.get_webhook(&ws, &webhook).await?, None),
        WebhookCommand::Update {
            webhook,
            fields,
            clear_filters,
        } => {
            let filters = if fields.any_filter() && !clear_filters {
                client.get_webhook(&ws, &webhook).await?.filters
            } else {
                Filters::default()
            };
            let mut body = fields.body(filters)?;
            if clear_filters {
                body.entry("filters").or_insert(json!(Filters::default()));
            }
            if body.is_empty() {
                return Err(Failure::usage("nothing to change: give at least one field flag"));
            }
            let updated = client.update_webhook(&ws, &webhook, &body).await?;
            output::warn(&updated.warnings);
            show(remote.json, &updated, None);
        }
        WebhookCommand::Delete { webhook } => {
            client.delete_webhook(&ws, &webhook).await?;
            output::fields(remote.json, &json!({ "deleted": webhook }), |_| {
                vec![("deleted", webhook.clone())]
            });
        }
        WebhookCommand::Test { webhook } => {
            let result = client.test_webhook(&ws, &webhook).await?;
            if remote.json {
                output::json(&result);
                return Ok(());
            }
            output::print_lines(&[("delivery", result.delivery_id.clone())]);
            print_attempt(&result.attempt);
        }
        WebhookCommand::Secret { webhook } => {
            let secret = client.read_secret(&ws, &webhook).await?;
            print_secret(remote.json, &secret);
        }
        WebhookCommand::RotateSecret { webhook, secret } => {
            let secret = client.rotate_secret(&ws, &webhook, secret.as_deref()).await?;
            print_secret(remote.json, &secret);
        }
    }
    Ok(())
}

fn tls_summary(tls: &crate::model::Tls) -> String {
    let mut parts = Vec::new();
    if !tls.verify {
        parts.push("certificates NOT verified");
    }
    if tls.ca.is_some() {
        parts.push("own CA");
    }
    if tls.has_client_key {
        parts.push("client certificate");
    }
    if parts.is_empty() {
        "default".into()
    } else {
        parts.join(", ")
    }
}

fn print_secret(json: bool, secret: &crate::model::Secret) {
    output::fields(json, secret, |s| {
        let mut fields = vec![("secret", s.secret.clone())];
        for previous in &s.previous {
            fields.push(("previous", format!("still signing until {}", previous.expires_at)));
        }
        fields
    });
}

/// Batch window, debounce and ordering in one line: `at once` when none is set.
fn pacing_summary(webhook: &Webhook) -> String {
    let mut parts = Vec::new();
    if webhook.batch_window != "0s" {
        parts.push(format!("batches wait up to {}", webhook.batch_window));
    }
    if webhook.min_interval != "0s" {
        parts.push(format!(
            "one delivery per device per {} ({})",
            webhook.min_interval,
            word(webhook.coalesce)
        ));
    }
    if webhook.ordering == Ordering::Device {
        parts.push("in order per device".into());
    }
    if parts.is_empty() {
        "at once".into()
    } else {
        parts.join(", ")
    }
}
