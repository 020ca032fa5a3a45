//! A draft condition tried on a webhook's workspace's newest records: which it would match.
//! Nothing is stored or sent; the draft runs in the sandbox like the webhook's own.

use hookd_core::record::parse_body;
use hookd_core::validation::{Fields, ValidationError};
use hookd_core::webhook::condition;
use serde_json::Value;

use super::{Service, ServiceError, ServiceResult};

/// What a draft condition says of one stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionVerdict {
    pub record_id: String,
    /// The condition yields `true` for it.
    pub matched: bool,
    /// The webhook's filters pass it (so, with `matched`, the webhook would get it).
    pub filters: bool,
    /// Why the condition could not be told (taken as no match).
    pub error: Option<String>,
}

/// Records a preview looks at unless told, and at most.
const PREVIEW_DEFAULT: usize = 50;
const PREVIEW_MAX: usize = 500;

impl Service {
    /// Runs `draft`'s `condition` over the newest `limit` records of the webhook's kind in
    /// its workspace, newest first.
    pub async fn preview_condition(
        &self,
        workspace_id: &str,
        webhook_id: &str,
        draft: &Value,
    ) -> ServiceResult<Vec<ConditionVerdict>> {
        let webhook = self.webhook(workspace_id, webhook_id).await?;
        let f = Fields::new(draft, "")?;
        f.deny_unknown(&["condition", "limit"])?;
        let code = condition::parse(&f)?.ok_or_else(|| f.invalid("condition", "`condition` is required"))?;
        let limit = match f.opt_u64("limit")? {
            None => PREVIEW_DEFAULT,
            Some(n) if (1..=PREVIEW_MAX as u64).contains(&n) => n as usize,
            Some(_) => return Err(f.invalid("limit", format!("`limit` is 1 to {PREVIEW_MAX}")).into()),
        };
        let kind = webhook.spec.kind;
        let records = self.store().recent_records(workspace_id, kind, limit).await?;
        let bodies: Vec<&str> = records.iter().map(|(_, body)| body.as_str()).collect();
        let verdicts = self
            .inner
            .parts
            .sandbox
            .conditions(&code, &bodies)
            .await
            .map_err(|e| ServiceError::Invalid(ValidationError::new("invalid_value", "condition", e)))?;
        Ok(records
            .iter()
            .zip(verdicts)
            .map(|((id, body), verdict)| {
                let filters = serde_json::from_str::<Value>(body)
                    .ok()
                    .and_then(|value| parse_body(value, kind, 1).ok())
                    .and_then(|mut parsed| parsed.pop())
                    .is_some_and(|record| webhook.spec.filters.matches(&record));
                ConditionVerdict {
                    record_id: id.clone(),
                    matched: verdict == Ok(true),
                    filters,
                    error: verdict.err(),
                }
            })
            .collect())
    }
}
