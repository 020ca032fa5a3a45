//! Sources: create, change, delete, list; receiving a request at a source's door (verify →
//! make records → commit, every request logged with its outcome); the request log.

use std::collections::BTreeMap;

use hookd_core::id::new_id;
use hookd_core::source::{Inbound, Reason, Rejection, Reshape, ReshapeSpec, Source, SourceSpec, apply_patch, verify};
use hookd_core::store::{DoorWrite, IngestResult, MessageSeen, RequestOutcome, SourceRequest, SourceRequestQuery};
use hookd_core::validation::ValidationError;
use serde_json::Value;

use super::reshaping::plural;
use super::{Service, ServiceError, ServiceResult};
use crate::ingest::Submission;
use crate::planner::Origin;

/// The most of a refused request's body the log keeps: enough to see what was sent, not
/// enough for anyone to fill the database through a public door.
const REJECTED_BODY_CAP: usize = 4096;
/// What a redacted header or query value is logged as.
const REDACTED: &str = "[redacted]";

/// A created or changed source, and what its creator should know.
#[derive(Debug, Clone)]
pub struct SourceChanged {
    pub source: Source,
    pub warnings: Vec<String>,
}

/// A request as it arrived at a source's door.
pub struct Arrival<'a> {
    pub method: &'a str,
    pub content_type: Option<&'a str>,
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub body: &'a [u8],
}

/// What the door answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Committed (or kept to replay, when its body made no records: `ids` is empty).
    Accepted { status: u16, ids: Vec<String> },
    /// Refused; the reason is in the log only.
    Rejected(Reason),
}

impl Service {
    pub async fn create_source(&self, workspace_id: &str, body: &Value) -> ServiceResult<SourceChanged> {
        let spec = checked(SourceSpec::parse(body)?)?;
        let now = self.now();
        let source = Source {
            id: new_id("src"),
            workspace_id: workspace_id.to_owned(),
            spec,
            created_at: now,
            updated_at: now,
        };
        self.store().insert_source(&source).await?;
        Ok(changed(source))
    }

    pub async fn source(&self, workspace_id: &str, id: &str) -> ServiceResult<Source> {
        self.store()
            .get_source(workspace_id, id)
            .await?
            .ok_or(ServiceError::NotFound("source"))
    }

    pub async fn list_sources(&self, workspace_id: &str) -> ServiceResult<Vec<Source>> {
        Ok(self.store().list_sources(workspace_id).await?)
    }

    pub async fn update_source(&self, workspace_id: &str, id: &str, patch: &Value) -> ServiceResult<SourceChanged> {
        let mut source = self.source(workspace_id, id).await?;
        source.spec = checked(apply_patch(&source.spec, patch)?)?;
        source.updated_at = self.now();
        self.store().update_source(&source).await.map_err(not_found)?;
        self.inner.doors.forget(id);
        Ok(changed(source))
    }

    pub async fn delete_source(&self, workspace_id: &str, id: &str) -> ServiceResult<()> {
        self.store().delete_source(workspace_id, id).await.map_err(not_found)?;
        self.inner.doors.forget(id);
        Ok(())
    }

    pub async fn source_requests(
        &self,
        workspace_id: &str,
        source_id: &str,
        query: &SourceRequestQuery,
    ) -> ServiceResult<Vec<SourceRequest>> {
        self.source(workspace_id, source_id).await?;
        Ok(self
            .store()
            .list_source_requests(workspace_id, source_id, query)
            .await?)
    }

    pub async fn source_request(&self, workspace_id: &str, source_id: &str, id: &str) -> ServiceResult<SourceRequest> {
        self.store()
            .get_source_request(workspace_id, source_id, id)
            .await?
            .ok_or(ServiceError::NotFound("request"))
    }

    /// Receives a request at source `id`'s door. Every request that reaches a source is
    /// logged: refused, kept but not turned into records, or committed as records (the log
    /// names them) before the answer.
    pub async fn receive(&self, id: &str, arrival: Arrival<'_>) -> ServiceResult<Received> {
        let source = self.door(id).await?;
        let now = self.now();
        let request = Inbound {
            method: arrival.method,
            headers: &arrival.headers,
            query: &arrival.query,
            body: arrival.body,
        };
        let mut log = self.logged(&source, &arrival);
        let verified = verify(&source.spec, &request, now).map(|verified| verified.message_id);
        let message_id = match verified {
            Ok(message_id) => message_id,
            Err(rejection) => return self.refuse(log, rejection).await,
        };
        let message = message_id.map(|message_id| MessageSeen {
            source_id: source.id.clone(),
            message_id,
            now,
            until: now + source.spec.tolerance.as_millis() as i64,
        });
        let replayed = |message: &MessageSeen| Rejection {
            reason: Reason::Replayed,
            explanation: format!(
                "message `{}` was received before, within the last {} s",
                shorten(&message.message_id),
                source.spec.tolerance.as_secs()
            ),
        };
        let status = source.spec.response_status;
        match self.records_of(&source.id, &source.spec, &arrival).await {
            Ok(records) => {
                // The message id and the log entry are written with the records, in their
                // transaction: a request whose commit fails may be sent again.
                let count = records.len();
                log.explanation = format!("verified; {count} record{} committed", plural(count));
                let submission = Submission {
                    workspace_id: source.workspace_id.clone(),
                    records,
                    idempotency: None,
                    origin: Origin::Source { id: source.id.clone() },
                    door: Some(DoorWrite {
                        message: message.clone(),
                        log: log.clone(),
                    }),
                };
                match self.submit(submission).await? {
                    IngestResult::Committed(ids) | IngestResult::Replayed(ids) => {
                        Ok(Received::Accepted { status, ids })
                    }
                    IngestResult::MessageSeen => match &message {
                        Some(message) => self.refuse(log, replayed(message)).await,
                        None => Err(ServiceError::Internal(anyhow::anyhow!("a replay without a message id"))),
                    },
                    IngestResult::KeyConflict => {
                        Err(ServiceError::Internal(anyhow::anyhow!("a key conflict at a door")))
                    }
                }
            }
            Err(failure) => {
                if let Some(message) = &message
                    && !self
                        .store()
                        .remember_message(&message.source_id, &message.message_id, message.now, message.until)
                        .await?
                {
                    return self.refuse(log, replayed(message)).await;
                }
                log.outcome = RequestOutcome::Failed;
                log.reason = Some(failure.reason.as_str().to_owned());
                log.explanation = failure.explanation;
                self.store().log_source_request(&log).await?;
                Ok(Received::Accepted {
                    status,
                    ids: Vec::new(),
                })
            }
        }
    }

    /// Logs a request whose body was larger than `limit` bytes (what was received of it is
    /// not kept).
    pub async fn refuse_too_large(&self, id: &str, arrival: Arrival<'_>, limit: usize) -> ServiceResult<Received> {
        let source = self.door(id).await?;
        let mut log = self.logged(&source, &arrival);
        log.body_truncated = true;
        let rejection = Rejection {
            reason: Reason::TooLarge,
            explanation: format!("the body is larger than {limit} bytes (api.max_body_bytes)"),
        };
        self.refuse(log, rejection).await
    }

    /// The source behind door `id` (see `doors`).
    async fn door(&self, id: &str) -> ServiceResult<std::sync::Arc<Source>> {
        if let Some(source) = self.inner.doors.get(id) {
            return Ok(source);
        }
        let source = std::sync::Arc::new(
            self.store()
                .find_source(id)
                .await?
                .ok_or(ServiceError::NotFound("source"))?,
        );
        self.inner.doors.keep(source.clone());
        Ok(source)
    }

    /// A new log entry for a request arriving at `source`.
    fn logged(&self, source: &Source, arrival: &Arrival<'_>) -> SourceRequest {
        SourceRequest {
            id: new_id("req"),
            workspace_id: source.workspace_id.clone(),
            source_id: source.id.clone(),
            received_at: self.now(),
            method: arrival.method.to_owned(),
            headers: redacted_headers(&source.spec, &arrival.headers),
            query: redacted_query(&source.spec, &arrival.query),
            body: arrival.body.to_vec(),
            body_truncated: false,
            outcome: RequestOutcome::Accepted,
            reason: None,
            explanation: String::new(),
            record_ids: Vec::new(),
        }
    }

    async fn refuse(&self, mut log: SourceRequest, rejection: Rejection) -> ServiceResult<Received> {
        log.outcome = RequestOutcome::Rejected;
        log.reason = Some(rejection.reason.as_str().to_owned());
        log.explanation = rejection.explanation;
        if log.body.len() > REJECTED_BODY_CAP {
            log.body.truncate(REJECTED_BODY_CAP);
            log.body_truncated = true;
        }
        self.store().log_source_request(&log).await?;
        Ok(Received::Rejected(rejection.reason))
    }
}

fn changed(source: Source) -> SourceChanged {
    let warnings = source.spec.warning().into_iter().collect();
    SourceChanged { source, warnings }
}

fn not_found(err: hookd_core::store::StoreError) -> ServiceError {
    match err {
        hookd_core::store::StoreError::NotFound => ServiceError::NotFound("source"),
        other => other.into(),
    }
}

/// A spec whose programs compile (an error names the field and the position in it).
pub(super) fn checked(spec: SourceSpec) -> Result<SourceSpec, ValidationError> {
    Reshape::compile(ReshapeSpec::of(&spec))?;
    Ok(spec)
}

/// Headers as a JSON object for the log, with every credential redacted: the scheme's own
/// header, `Authorization`, cookies, and anything named like a secret or token.
fn redacted_headers(spec: &SourceSpec, headers: &[(String, String)]) -> String {
    let own: Vec<String> = [spec.header.clone(), spec.hmac_scheme().map(|h| h.header.clone())]
        .into_iter()
        .flatten()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let map: BTreeMap<&str, &str> = headers
        .iter()
        .map(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            let secret = own.contains(&lower)
                || ["authorization", "cookie", "proxy-authorization"].contains(&lower.as_str())
                || ["token", "secret", "signature", "api-key", "apikey", "password"]
                    .iter()
                    .any(|s| lower.contains(s));
            (name.as_str(), if secret { REDACTED } else { value.as_str() })
        })
        .collect();
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
}

/// The query as a JSON object for the log, the token parameter redacted.
fn redacted_query(spec: &SourceSpec, query: &[(String, String)]) -> String {
    let map: BTreeMap<&str, &str> = query
        .iter()
        .map(|(name, value)| {
            let secret = spec.query.as_deref() == Some(name.as_str()) || name.contains("token") || name.contains("key");
            (name.as_str(), if secret { REDACTED } else { value.as_str() })
        })
        .collect();
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
}

/// A message id as the log shows it: a signature used as one is cut short.
fn shorten(id: &str) -> String {
    if id.chars().count() > 24 {
        format!("{}…", id.chars().take(12).collect::<String>())
    } else {
        id.to_owned()
    }
}
