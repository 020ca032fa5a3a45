//! `hookd sources create|list|get|update|delete|requests|replay|preview`.

use serde_json::{Map, Value, json};

use super::Remote;
use super::output::{self, Failure, or_dash};
use crate::model::{Preview, Source, SourceRequest};

/// What a source is made of: every flag of `create`, and of `update` (where each one given
/// replaces that field).
#[derive(Debug, clap::Args)]
pub(crate) struct SourceFields {
    /// A name for the source.
    #[arg(long)]
    name: Option<String>,
    /// How its requests are verified: token, basic, hmac, standard_webhooks, github, stripe,
    /// slack, shopify, orbit, or none (required at create; `none` must be said).
    #[arg(long)]
    scheme: Option<String>,
    /// A secret that verifies (repeat for several; basic: user:password; replaces all on update).
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// token: the token's header (default X-AUTH-TOKEN); hmac: the signature header.
    #[arg(long)]
    header: Option<String>,
    /// token: read the token from this query parameter instead.
    #[arg(long)]
    query: Option<String>,
    /// hmac: the scheme as JSON, e.g. '{"algorithm": "sha256", "header_format": "sha256={signature}"}'.
    #[arg(long)]
    hmac: Option<String>,
    /// How far a signed timestamp may be from now, either way (e.g. 5m).
    #[arg(long)]
    tolerance: Option<String>,
    #[command(flatten)]
    programs: ProgramFlags,
    /// A method the door takes: POST (default), PUT, GET (repeat for several).
    #[arg(long = "method")]
    methods: Vec<String>,
    /// What the door answers a sender: 200, 202 (default) or 204.
    #[arg(long = "response-status")]
    response_status: Option<u16>,
}

/// What makes records of a request: the record type and the jq programs.
#[derive(Debug, clap::Args)]
pub(crate) struct ProgramFlags {
    /// Records made: event (default) or data.
    #[arg(long = "record-type")]
    record_type: Option<String>,
    /// jq: the items a request carries (e.g. '.result[]').
    #[arg(long)]
    split: Option<String>,
    /// jq: each item's payload.
    #[arg(long)]
    transform: Option<String>,
    /// A record field from the item, FIELD=JQ (e.g. device_id=.circuit; repeat; labels.site=.site).
    #[arg(long = "field")]
    fields: Vec<String>,
}

impl ProgramFlags {
    /// Puts the flags given into `body`.
    fn put(self, body: &mut Map<String, Value>) -> Result<(), Failure> {
        for (key, value) in [
            ("record_type", self.record_type),
            ("split", self.split),
            ("transform", self.transform),
        ] {
            if let Some(value) = value {
                body.insert(key.to_owned(), Value::from(value));
            }
        }
        if !self.fields.is_empty() {
            body.insert("fields".into(), json!(output::pairs(&self.fields, "field")?));
        }
        Ok(())
    }
}

impl SourceFields {
    /// The fields given, as a create or patch body.
    fn body(self) -> Result<Map<String, Value>, Failure> {
        let mut body = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                body.insert(key.to_owned(), value);
            }
        };
        put("name", self.name.map(Value::from));
        put("scheme", self.scheme.map(Value::from));
        put("header", self.header.map(Value::from));
        put("query", self.query.map(Value::from));
        put("tolerance", self.tolerance.map(Value::from));
        put("response_status", self.response_status.map(Value::from));
        put("secrets", (!self.secrets.is_empty()).then(|| json!(self.secrets)));
        put("methods", (!self.methods.is_empty()).then(|| json!(self.methods)));
        if let Some(hmac) = self.hmac {
            let value: Value =
                serde_json::from_str(&hmac).map_err(|e| Failure::usage(format!("--hmac is not JSON: {e}")))?;
            put("hmac", Some(value));
        }
        self.programs.put(&mut body)?;
        Ok(body)
    }
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SourceCommand {
    /// Create a source: an inbound door at /in/<id>. With --forward-to, also a webhook that
    /// forwards its records, signed by hookd (with --json: `{"source", "forwarding"}`).
    Create {
        #[command(flatten)]
        fields: SourceFields,
        /// Also create a webhook delivering this source's records (only them) to this URL.
        #[arg(long = "forward-to")]
        forward_to: Option<String>,
    },
    /// List the workspace's sources.
    List,
    /// Show a source.
    Get {
        /// The source id (`src_…`).
        source: String,
    },
    /// Change the fields given.
    Update {
        /// The source id (`src_…`).
        source: String,
        #[command(flatten)]
        fields: SourceFields,
    },
    /// Delete a source and its request log.
    Delete {
        /// The source id (`src_…`).
        source: String,
    },
    /// The source's request log, newest first, with each refusal's reason and evidence.
    Requests {
        /// The source id (`src_…`).
        source: String,
        /// Only accepted, rejected or failed requests.
        #[arg(long)]
        outcome: Option<String>,
        /// How many (1–250).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Make records again of a logged request that verified, with the programs as they are now.
    Replay {
        /// The source id (`src_…`).
        source: String,
        /// The request id (`req_…`).
        request: String,
    },
    /// Try draft programs on the source's last requests: what each would make, or the error.
    Preview {
        /// The source id (`src_…`).
        source: String,
        /// The drafts (the source's own where left out).
        #[command(flatten)]
        programs: ProgramFlags,
        /// How many of the last verified requests (1–50).
        #[arg(long, default_value_t = 10)]
        limit: u64,
    },
}

fn show(as_json: bool, source: &Source) {
    output::fields(as_json, source, |s| {
        vec![
            ("id", s.id.clone()),
            ("name", s.name.clone()),
            ("scheme", s.scheme.clone()),
            ("door", s.path.clone()),
            (
                "secrets",
                s.secrets
                    .iter()
                    .map(|x| format!("…{}", x.ends_with))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("record type", s.record_type.clone()),
            ("split", or_dash(s.split.clone())),
            ("transform", or_dash(s.transform.clone())),
            (
                "fields",
                s.fields
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            ("methods", s.methods.join(", ")),
        ]
    });
}

fn request_row(r: &SourceRequest) -> Vec<String> {
    vec![
        r.id.clone(),
        r.received_at.clone(),
        r.method.clone(),
        r.outcome.clone(),
        or_dash(r.reason.clone()),
        r.explanation.clone(),
    ]
}

const REQUEST_HEADER: [&str; 6] = ["ID", "RECEIVED", "METHOD", "OUTCOME", "REASON", "EXPLANATION"];

pub(crate) async fn run(command: SourceCommand, remote: Remote) -> Result<(), Failure> {
    let client = remote.client()?;
    let ws = remote.workspace(&client).await?;
    match command {
        SourceCommand::Create { fields, forward_to } => {
            let body = fields.body()?;
            if !body.contains_key("scheme") {
                return Err(Failure::usage(
                    "--scheme is required: token, basic, hmac, standard_webhooks, github, stripe, slack, shopify, orbit or none",
                ));
            }
            let created = client.create_source(&ws, &body).await?;
            output::warn(&created.warnings);
            let Some(url) = forward_to else {
                show(remote.json, &created);
                return Ok(());
            };
            let webhook = json!({
                "name": format!("{} forwarding", created.name),
                "kind": created.record_type,
                "url": url,
                "filters": {"sources": [created.id]},
            });
            let forwarding = client.create_webhook(&ws, &webhook).await?;
            output::warn(&forwarding.webhook.warnings);
            if remote.json {
                output::json(&json!({"source": created, "forwarding": forwarding}));
            } else {
                show(false, &created);
                out!("");
                output::print_lines(&[
                    ("forwarded by", forwarding.webhook.id.clone()),
                    ("to", forwarding.webhook.url.clone()),
                    ("signing secret", forwarding.secret.clone()),
                ]);
            }
        }
        SourceCommand::List => {
            let list = client.list_sources(&ws).await?;
            output::list(remote.json, &list, &["ID", "NAME", "SCHEME", "DOOR"], |s: &Source| {
                vec![s.id.clone(), s.name.clone(), s.scheme.clone(), s.path.clone()]
            });
        }
        SourceCommand::Get { source } => show(remote.json, &client.get_source(&ws, &source).await?),
        SourceCommand::Update { source, fields } => {
            let updated = client.update_source(&ws, &source, &fields.body()?).await?;
            output::warn(&updated.warnings);
            show(remote.json, &updated);
        }
        SourceCommand::Delete { source } => {
            client.delete_source(&ws, &source).await?;
            if !remote.json {
                out!("deleted {source}");
            }
        }
        SourceCommand::Requests { source, outcome, limit } => {
            let page = client
                .list_source_requests(&ws, &source, outcome.as_deref(), limit)
                .await?;
            output::list(remote.json, &page.data, &REQUEST_HEADER, request_row);
        }
        SourceCommand::Replay { source, request } => {
            let replayed = client.replay_source_request(&ws, &source, &request).await?;
            output::list(
                remote.json,
                std::slice::from_ref(&replayed),
                &REQUEST_HEADER,
                request_row,
            );
        }
        SourceCommand::Preview {
            source,
            programs,
            limit,
        } => {
            let mut draft = Map::new();
            draft.insert("limit".into(), json!(limit));
            programs.put(&mut draft)?;
            let previews = client.preview_source(&ws, &source, &draft).await?;
            if remote.json {
                output::json(&previews);
                return Ok(());
            }
            for Preview {
                request_id,
                records,
                error,
            } in &previews
            {
                out!("{}:", request_id.as_deref().unwrap_or("sample"));
                match error {
                    Some(error) => out!("  error: {error}"),
                    None => {
                        for record in records {
                            out!("  {record}");
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
