//! Records on the wire: data points and events, and the schemas of the ingest bodies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A data point. Unknown fields are kept and delivered; `id`, `workspace_id` and
/// `timestamp_in` are set by hookd.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"timestamp_device": "2023-12-01T09:51:00Z", "tag": "d1", "device_id": "dev-124",
    "asset_id": "ast-1234", "asset_name": "Machine 1", "device_name": "Machine 1",
    "payload": {"ts": 1701424260, "ex": [0, 0], "C": {}}, "fleet_id": "flt-1234"}))]
pub struct DataPoint {
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    pub device_id: String,
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    pub tag: String,
    /// Any JSON.
    pub payload: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    D2c,
    C2d,
}

/// An event. Unknown fields are kept and delivered; `id`, `workspace_id` and `timestamp_in`
/// are set by hookd.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"type": "order.created", "payload": {"accountId": "AG-1234567",
    "automationId": "Automation-7a416085-5668-467c-98ad-f903ad1c4187", "entityId": "AG-1234567:ORD-1234567",
    "marketId": "default", "orderId": "AG-1234567:ORD-1234567", "partnerId": "9YW9"}}))]
pub struct Event {
    #[serde(rename = "type")]
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    pub event_type: String,
    /// Any JSON.
    pub payload: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// A time string or a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<EventTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// When an event happened, as the producer wrote it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EventTime {
    Text(String),
    Number(f64),
}

/// One data point or an array of them (all-or-nothing).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DataBody {
    One(Box<DataPoint>),
    Many(Vec<DataPoint>),
}

/// One event or an array of them (all-or-nothing).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventBody {
    One(Box<Event>),
    Many(Vec<Event>),
}

/// The schema of an ingest body: one record, or 1 to 1,000 of them (the default
/// `api.max_records_per_request`).
fn one_or_many<T: ToSchema>(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder, Ref};
    let record = Ref::from_schema_name(T::name());
    let many = ArrayBuilder::new()
        .items(record.clone())
        .min_items(Some(1))
        .max_items(Some(1000));
    OneOfBuilder::new()
        .item(record)
        .item(many)
        .description(Some(description))
        .into()
}

macro_rules! ingest_body_schema {
    ($body:ty, $record:ty, $description:literal) => {
        impl utoipa::PartialSchema for $body {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                one_or_many::<$record>($description)
            }
        }

        impl ToSchema for $body {
            fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
                schemas.push((
                    <$record>::name().into(),
                    <$record as utoipa::PartialSchema>::schema(),
                ));
                <$record>::schemas(schemas);
            }
        }
    };
}

ingest_body_schema!(
    DataBody,
    DataPoint,
    "One data point or an array of 1 to 1,000 (all-or-nothing)."
);
ingest_body_schema!(
    EventBody,
    Event,
    "One event or an array of 1 to 1,000 (all-or-nothing)."
);
