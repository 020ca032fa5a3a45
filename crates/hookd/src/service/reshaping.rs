//! Making records of a source's requests: at its door, again for a logged request (replay),
//! and with draft programs over the last logged requests (preview).

use hookd_core::record::{RecordIn, parse_body};
use hookd_core::source::{
    Bindings, Limits, Reason, Rejection, Reshape, ReshapeSpec, SourceSpec, apply_patch, read_body,
};
use hookd_core::store::{RequestOutcome, SourceRequest, SourceRequestQuery};
use hookd_core::timefmt::rfc3339;
use hookd_core::validation::{Fields, ValidationError};
use serde_json::{Map, Value, json};

use super::sources::{Arrival, checked};
use super::{Service, ServiceError, ServiceResult};
use crate::planner::Origin;

/// What a preview shows for one request: the records the draft makes of it, or why none.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// The logged request; `None` for the sample given with the draft.
    pub request_id: Option<String>,
    pub records: Vec<Value>,
    pub error: Option<String>,
}

/// Requests a preview runs over unless it says otherwise, and at most.
const PREVIEW_DEFAULT: usize = 10;
const PREVIEW_MAX: usize = 50;

impl Service {
    /// The records a verified request makes: its body (for a GET with none, its query) is
    /// the input of the source's programs, run in the sandbox; without programs the body is
    /// one item, made a record here.
    pub(super) async fn records_of(
        &self,
        source_id: &str,
        spec: &SourceSpec,
        arrival: &Arrival<'_>,
    ) -> Result<Vec<RecordIn>, Rejection> {
        let body = read_body(arrival.content_type, arrival.body).map_err(|e| Rejection {
            reason: Reason::NotJson,
            explanation: e.0,
        })?;
        let query = Value::Object(
            arrival
                .query
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<Map<_, _>>(),
        );
        let body = match body {
            Value::Null if !arrival.query.is_empty() => query.clone(),
            body => body,
        };
        let settings = &self.inner.parts.settings.api;
        let limits = Limits {
            max_records: settings.max_records_per_request,
            max_bytes: settings.max_body_bytes,
        };
        let reshape = ReshapeSpec::of(spec);
        let made = if reshape.has_programs() {
            let bindings = Bindings {
                headers: Value::Object(
                    arrival
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone())))
                        .collect(),
                ),
                query,
                method: arrival.method.to_owned(),
                source: json!({"id": source_id, "name": spec.name}),
            };
            self.inner
                .parts
                .sandbox
                .reshape(&reshape, &body, &bindings, limits)
                .await
        } else {
            Reshape::compile(reshape)
                .map_err(|e| e.message)
                .and_then(|reshape| reshape.records(&body, &Bindings::default(), limits))
        };
        let transform_error = |explanation: String| Rejection {
            reason: Reason::TransformError,
            explanation,
        };
        let records = made.map_err(transform_error)?;
        if records.is_empty() {
            return Err(transform_error("the programs made no record of the body".into()));
        }
        parse_body(Value::Array(records), spec.record_type, limits.max_records).map_err(|e| {
            let problems: Vec<String> = e.all().map(ToString::to_string).collect();
            transform_error(format!(
                "the records made are not valid {} records: {}",
                spec.record_type.as_str(),
                problems.join("; ")
            ))
        })
    }
}

impl Service {
    /// Makes records again of a logged, verified request with the source's programs as they
    /// are now: a request that `failed` is recovered once its programs are fixed. A request
    /// refused by verification is never replayed.
    pub async fn replay_request(&self, workspace_id: &str, source_id: &str, id: &str) -> ServiceResult<SourceRequest> {
        let source = self.source(workspace_id, source_id).await?;
        let mut logged = self.source_request(workspace_id, source_id, id).await?;
        if logged.outcome == RequestOutcome::Rejected {
            return Err(ServiceError::Conflict {
                code: "not_replayable",
                message: format!(
                    "request {id} was refused ({}); only requests that verified are replayed",
                    logged.reason.as_deref().unwrap_or("rejected")
                ),
            });
        }
        let (headers, query) = (pairs(&logged.headers), pairs(&logged.query));
        let arrival = Arrival {
            method: &logged.method.clone(),
            content_type: content_type(&headers),
            headers: headers.clone(),
            query,
            body: &logged.body.clone(),
        };
        let when = rfc3339(self.now());
        match self.records_of(&source.id, &source.spec, &arrival).await {
            Ok(records) => {
                let count = records.len();
                let ids = self
                    .ingest(workspace_id, Origin::Source { id: source.id.clone() }, records, None)
                    .await?;
                logged.outcome = RequestOutcome::Accepted;
                logged.reason = None;
                logged.explanation = format!("replayed at {when}; {count} record{} committed", plural(count));
                logged.record_ids = ids;
            }
            Err(failure) => {
                logged.outcome = RequestOutcome::Failed;
                logged.reason = Some(failure.reason.as_str().to_owned());
                logged.explanation = format!("replayed at {when}: {}", failure.explanation);
            }
        }
        self.store().log_source_request(&logged).await?;
        Ok(logged)
    }

    /// What draft programs (`split`, `transform`, `fields`, `record_type`: the source's own
    /// where left out) would make of the last `limit` verified requests, and of a `sample`
    /// (`{"body", "headers", "content_type"}`) if given. Nothing is stored.
    pub async fn preview(&self, workspace_id: &str, source_id: &str, draft: &Value) -> ServiceResult<Vec<Preview>> {
        let source = self.source(workspace_id, source_id).await?;
        let f = Fields::new(draft, "")?;
        f.deny_unknown(&["split", "transform", "fields", "record_type", "sample", "limit"])?;
        let limit = match f.opt_u64("limit")? {
            None => PREVIEW_DEFAULT,
            Some(n) if (1..=PREVIEW_MAX as u64).contains(&n) => n as usize,
            Some(_) => return Err(f.invalid("limit", format!("`limit` is 1 to {PREVIEW_MAX}")).into()),
        };
        let programs: Map<String, Value> = ["split", "transform", "fields", "record_type"]
            .into_iter()
            .filter_map(|key| f.map().get(key).map(|v| (key.to_owned(), v.clone())))
            .collect();
        let spec = checked(apply_patch(&source.spec, &Value::Object(programs))?)?;
        let mut previews = Vec::new();
        if let Some(sample) = f.value("sample") {
            let sample = Sample::parse(sample)?;
            let arrival = Arrival {
                method: "POST",
                content_type: sample.content_type.as_deref(),
                headers: sample.headers,
                query: Vec::new(),
                body: sample.body.as_bytes(),
            };
            previews.push(preview_of(None, self.records_of(&source.id, &spec, &arrival).await));
        }
        let query = SourceRequestQuery {
            outcome: None,
            limit: limit * 4,
            after: None,
        };
        let logged = self
            .store()
            .list_source_requests(workspace_id, source_id, &query)
            .await?;
        for request in logged
            .iter()
            .filter(|r| r.outcome != RequestOutcome::Rejected)
            .take(limit)
        {
            let (headers, query) = (pairs(&request.headers), pairs(&request.query));
            let arrival = Arrival {
                method: &request.method,
                content_type: content_type(&headers),
                headers: headers.clone(),
                query,
                body: &request.body,
            };
            let made = self.records_of(&source.id, &spec, &arrival).await;
            previews.push(preview_of(Some(request.id.clone()), made));
        }
        Ok(previews)
    }
}

fn preview_of(request_id: Option<String>, made: Result<Vec<RecordIn>, Rejection>) -> Preview {
    match made {
        Ok(records) => Preview {
            request_id,
            records: records.iter().map(RecordIn::to_value).collect(),
            error: None,
        },
        Err(rejection) => Preview {
            request_id,
            records: Vec::new(),
            error: Some(format!("{}: {}", rejection.reason.as_str(), rejection.explanation)),
        },
    }
}

/// A sample request given with a preview.
struct Sample {
    body: String,
    headers: Vec<(String, String)>,
    content_type: Option<String>,
}

impl Sample {
    fn parse(value: &Value) -> Result<Self, ValidationError> {
        let f = Fields::new(value, "sample")?;
        f.deny_unknown(&["body", "headers", "content_type"])?;
        let body = match f.required("body")? {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        Ok(Self {
            body,
            headers: f
                .str_map("headers")?
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            content_type: f.opt_str("content_type")?.map(str::to_owned),
        })
    }
}

/// A logged JSON object of strings (headers, query) as pairs.
fn pairs(logged: &str) -> Vec<(String, String)> {
    let map: Map<String, Value> = serde_json::from_str(logged).unwrap_or_default();
    map.into_iter()
        .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
        .collect()
}

fn content_type(headers: &[(String, String)]) -> Option<&str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
