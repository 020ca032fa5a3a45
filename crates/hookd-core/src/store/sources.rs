//! What is stored of sources: the sources themselves (their spec sealed like a webhook's),
//! the log of requests each received, and the message ids remembered against replays.

use super::{StoreError, StoreResult};
use crate::clock::Millis;
use crate::seal::Sealer;
use crate::source::SourceSpec;

/// What became of a request to a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestOutcome {
    /// Verified and turned into records, committed.
    Accepted,
    /// Refused before anything was made of it (verification, method, size, replay).
    Rejected,
    /// Verified, but its body could not be turned into records (kept, to replay).
    Failed,
}

impl RequestOutcome {
    pub const ALL: [RequestOutcome; 3] = [Self::Accepted, Self::Rejected, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }

    pub fn from_stored(s: &str) -> StoreResult<Self> {
        Self::parse(s).ok_or_else(|| StoreError::corrupt("request outcome", s))
    }
}

/// One request to a source, as its log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRequest {
    pub id: String,
    pub workspace_id: String,
    pub source_id: String,
    pub received_at: Millis,
    pub method: String,
    /// Headers as a JSON object (lower-case names), secrets and tokens redacted.
    pub headers: String,
    /// The query as a JSON object, the token parameter redacted.
    pub query: String,
    /// The body as received, up to the log's cap.
    pub body: Vec<u8>,
    pub body_truncated: bool,
    pub outcome: RequestOutcome,
    /// The stable reason code of a rejection or failure.
    pub reason: Option<String>,
    pub explanation: String,
    pub record_ids: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SourceRequestQuery {
    pub outcome: Option<RequestOutcome>,
    pub limit: usize,
    /// Cursor: only requests with an id lower than this (older).
    pub after: Option<String>,
}

/// A source's spec as stored: its JSON, sealed when keys are configured.
pub fn seal_source_spec(id: &str, spec: &SourceSpec, sealer: &Sealer) -> String {
    sealer.seal(&context(id), &spec.to_json().to_string())
}

/// A stored spec read back.
pub fn open_source_spec(id: &str, stored: &str, sealer: &Sealer) -> StoreResult<SourceSpec> {
    let text = sealer
        .open(stored, || context(id))
        .map_err(|e| StoreError::corrupt(&format!("source {id}"), e))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| StoreError::corrupt("source", e))?;
    SourceSpec::parse(&value).map_err(|e| StoreError::corrupt("source", e))
}

/// A stored spec in the form `sealer` writes (sealed with its current key, or plain), or
/// `None` when it already is; an error when it does not open with the keys given.
pub fn resealed_source_spec(id: &str, stored: &str, sealer: &Sealer) -> StoreResult<Option<String>> {
    if sealer.is_current(stored) {
        return Ok(None);
    }
    let text = sealer
        .open(stored, || context(id))
        .map_err(|e| StoreError::corrupt(&format!("source {id}"), e))?;
    Ok(Some(sealer.seal(&context(id), &text)))
}

fn context(id: &str) -> String {
    format!("source/{id}/spec")
}
