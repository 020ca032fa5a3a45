//! The delivery log on the wire: deliveries, their request bodies and attempts.

use std::collections::BTreeMap;

use hookd_core::store;
use hookd_core::timefmt::rfc3339;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
    Dead,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    #[schema(example = "dlv_01J9Z3K2M4N5P6Q7R8S9T0V1W2")]
    pub id: String,
    pub workspace_id: String,
    pub webhook_id: String,
    pub state: DeliveryState,
    pub record_ids: Vec<String>,
    pub attempt_count: u32,
    /// When pending: the next attempt.
    pub next_attempt_at: Option<String>,
    pub last_status: Option<u16>,
    pub last_explanation: Option<String>,
    /// The device whose order it keeps (`ordering: "device"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering_key: Option<String>,
    /// Records that reached it: those it carries, plus those a newer state of their device
    /// superseded (`coalesce: "latest"`). Sent as the `hookd-coalesced` header when more
    /// than it carries.
    pub coalesced: u32,
    /// Records it stands for but does not carry (`hookd-superseded`).
    pub superseded: u32,
    /// It went `dead` and its device's later deliveries went on without it (an event
    /// `delivery.order_broken` says so too).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub order_broken: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A delivery with the request body it sends and its attempts, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    /// The body every attempt sends (the batch envelope, or the record for `single`); null
    /// for GET webhooks, or when its records were pruned (see `request_body_note`).
    #[schema(value_type = Option<Object>)]
    pub request_body: Option<serde_json::Value>,
    /// Why there is no `request_body`, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body_note: Option<String>,
    pub attempts: Vec<Attempt>,
    /// The headers its last attempt sent, rebuilt: the token's value as `***`, the signature
    /// made with the secrets that sign now. Left out before the first attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Vec<String>>)]
    pub request_headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPage {
    /// Newest first.
    pub data: Vec<Delivery>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    pub id: String,
    pub delivery_id: String,
    pub started_at: String,
    pub duration_ms: u64,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// When it did not: `timeout`, `connect`, `reset`, `dns`, `tls` or `blocked`.
    pub error_kind: Option<String>,
    /// What the receiver did and what hookd did about it.
    #[schema(example = "the receiver answered 503 Service Unavailable; retrying in 5s (attempt 2 of 8)")]
    pub explanation: String,
    /// The delivery's state after this attempt.
    pub outcome: DeliveryState,
    pub response_headers: BTreeMap<String, String>,
    /// The start of the response body (capped).
    pub response_body: Option<String>,
}

impl From<store::DeliveryState> for DeliveryState {
    fn from(state: store::DeliveryState) -> Self {
        match state {
            store::DeliveryState::Pending => Self::Pending,
            store::DeliveryState::Delivered => Self::Delivered,
            store::DeliveryState::Failed => Self::Failed,
            store::DeliveryState::Dead => Self::Dead,
        }
    }
}

impl From<DeliveryState> for store::DeliveryState {
    fn from(state: DeliveryState) -> Self {
        match state {
            DeliveryState::Pending => Self::Pending,
            DeliveryState::Delivered => Self::Delivered,
            DeliveryState::Failed => Self::Failed,
            DeliveryState::Dead => Self::Dead,
        }
    }
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        store::DeliveryState::from(self).as_str()
    }
}

impl From<&store::Delivery> for Delivery {
    fn from(d: &store::Delivery) -> Self {
        Self {
            id: d.id.to_string(),
            workspace_id: d.workspace_id.clone(),
            webhook_id: d.webhook_id.to_string(),
            state: d.state.into(),
            record_ids: d.record_ids.clone(),
            attempt_count: d.attempts,
            next_attempt_at: (d.state == store::DeliveryState::Pending).then(|| rfc3339(d.next_attempt_at)),
            last_status: d.last_status,
            last_explanation: d.last_explanation.clone(),
            ordering_key: d.ordering_key.clone(),
            coalesced: d.coalesced,
            superseded: d.superseded,
            order_broken: d.order_broken,
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

impl From<&store::Attempt> for Attempt {
    fn from(a: &store::Attempt) -> Self {
        Self {
            id: a.id.clone(),
            delivery_id: a.delivery_id.to_string(),
            started_at: rfc3339(a.started_at),
            duration_ms: a.duration_ms,
            status: a.status,
            error_kind: a.error_kind.clone(),
            explanation: a.explanation.clone(),
            outcome: a.outcome.into(),
            response_headers: serde_json::from_str(&a.response_headers).unwrap_or_default(),
            response_body: a.response_body.clone(),
        }
    }
}

impl From<crate::service::DeliveryView> for DeliveryDetail {
    fn from(view: crate::service::DeliveryView) -> Self {
        use crate::service::RequestBody;
        let (request_body, request_body_note) = match view.request_body {
            RequestBody::Json(body) => (Some(body), None),
            RequestBody::None(why) => (None, Some(why.to_owned())),
        };
        Self {
            delivery: (&view.delivery).into(),
            request_body,
            request_body_note,
            attempts: view.attempts.iter().map(Into::into).collect(),
            request_headers: view.request_headers,
        }
    }
}
