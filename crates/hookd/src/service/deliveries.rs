//! The delivery log: list, one delivery with the request body its attempts send, retry by
//! hand; records as stored.

use std::collections::HashMap;

use hookd_core::id::DeliveryId;
use hookd_core::store::{Attempt, Delivery, DeliveryQuery};
use hookd_core::timefmt::rfc3339;

use super::{Service, ServiceError, ServiceResult};

/// The body a delivery's attempts send, or why there is none to show.
#[derive(Debug, Clone)]
pub enum RequestBody {
    Json(serde_json::Value),
    None(&'static str),
}

/// One delivery with its attempts, oldest first, and its request body.
#[derive(Debug, Clone)]
pub struct DeliveryView {
    pub delivery: Delivery,
    pub attempts: Vec<Attempt>,
    pub request_body: RequestBody,
    /// The headers its last attempt sent, rebuilt (the token hidden, the signature made with
    /// the secrets that sign now); none before its first attempt.
    pub request_headers: Vec<(String, String)>,
}

impl Service {
    /// Deliveries newest first.
    pub async fn list_deliveries(&self, workspace_id: &str, query: &DeliveryQuery) -> ServiceResult<Vec<Delivery>> {
        Ok(self.store().list_deliveries(workspace_id, query).await?)
    }

    /// Deliveries newest first, as `query` asks, for a person, also narrowed to those
    /// carrying a record of `device`. A state or device filter (neither is indexed) looks
    /// through at most `scan` deliveries of the other filters, so a rare one answers at once
    /// instead of reading millions. With the deliveries found, where the search stopped when it
    /// stopped before the end (pass it as `after` to go on).
    pub async fn find_deliveries(
        &self,
        workspace_id: &str,
        query: &DeliveryQuery,
        device: Option<&str>,
        scan: usize,
    ) -> ServiceResult<(Vec<Delivery>, Option<DeliveryId>)> {
        if query.state.is_none() && device.is_none() {
            return Ok((self.list_deliveries(workspace_id, query).await?, None));
        }
        const STEP: usize = 250;
        let mut page = DeliveryQuery {
            state: None,
            limit: STEP,
            ..query.clone()
        };
        let (mut found, mut scanned) = (Vec::new(), 0);
        loop {
            let batch = self.list_deliveries(workspace_id, &page).await?;
            scanned += batch.len();
            let in_state: Vec<&Delivery> = batch
                .iter()
                .filter(|d| query.state.is_none_or(|state| d.state == state))
                .collect();
            let devices = match device {
                Some(_) => self.devices_of(workspace_id, &in_state).await?,
                None => HashMap::new(),
            };
            for delivery in in_state {
                let carries = |device: &str| {
                    delivery
                        .record_ids
                        .iter()
                        .any(|r| devices.get(r).is_some_and(|d| d == device))
                };
                if device.is_none_or(carries) && found.len() < query.limit {
                    found.push(delivery.clone());
                }
            }
            if found.len() >= query.limit {
                return Ok((found, None));
            }
            match batch.last().map(|d| d.id.clone()) {
                Some(last) if batch.len() == STEP && scanned < scan => page.after = Some(last),
                Some(last) if batch.len() == STEP => return Ok((found, Some(last))),
                _ => return Ok((found, None)),
            }
        }
    }

    /// The device of each record these deliveries carry, by record id.
    async fn devices_of(&self, workspace_id: &str, deliveries: &[&Delivery]) -> ServiceResult<HashMap<String, String>> {
        let ids: Vec<String> = deliveries.iter().flat_map(|d| d.record_ids.iter().cloned()).collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let records = self.store().get_records(workspace_id, &ids).await?;
        Ok(records
            .into_iter()
            .filter_map(|(id, body)| {
                let record: serde_json::Value = serde_json::from_str(&body).ok()?;
                Some((id, record.get("device_id")?.as_str()?.to_owned()))
            })
            .collect())
    }

    pub async fn delivery(&self, workspace_id: &str, id: &str) -> ServiceResult<DeliveryView> {
        let (delivery, attempts) = self
            .store()
            .get_delivery(workspace_id, id)
            .await?
            .ok_or(ServiceError::NotFound("delivery"))?;
        let last_attempt_at = attempts.last().map(|a| a.started_at);
        let (request_body, request_headers) = self.request(&delivery, last_attempt_at).await?;
        Ok(DeliveryView {
            delivery,
            attempts,
            request_body,
            request_headers,
        })
    }

    /// The body the delivery's attempts send, built as the dispatcher builds it, and the
    /// headers of its last attempt, rebuilt (none before the first).
    async fn request(
        &self,
        delivery: &Delivery,
        last_attempt_at: Option<i64>,
    ) -> ServiceResult<(RequestBody, Vec<(String, String)>)> {
        let Some(webhook) = self
            .store()
            .get_webhook(&delivery.workspace_id, &delivery.webhook_id)
            .await?
        else {
            return Ok((RequestBody::None("its webhook was deleted"), Vec::new()));
        };
        let found: HashMap<String, String> = self
            .store()
            .get_records(&delivery.workspace_id, &delivery.record_ids)
            .await?
            .into_iter()
            .collect();
        let records: Option<Vec<String>> = delivery.record_ids.iter().map(|id| found.get(id).cloned()).collect();
        let Some(records) = records else {
            return Ok((RequestBody::None("its records were pruned (retention)"), Vec::new()));
        };
        let body = crate::dispatch::request::body(&webhook, &delivery.id, &records);
        let headers = last_attempt_at.map_or_else(Vec::new, |at| {
            crate::dispatch::request::rebuilt_headers(webhook.into(), delivery, records, at)
        });
        let Some(body) = body else {
            return Ok((RequestBody::None("GET webhooks send no body"), headers));
        };
        let body = serde_json::from_slice(&body).map_or(RequestBody::None("the body is not JSON"), RequestBody::Json);
        Ok((body, headers))
    }

    /// Makes the delivery pending and due now on a fresh retry schedule, whatever its state;
    /// one with an attempt in flight is left to that attempt.
    pub async fn retry_delivery(&self, workspace_id: &str, id: &str) -> ServiceResult<Delivery> {
        let now = self.now();
        let note = format!(
            "retried by hand at {}: due now, with its full retry schedule again",
            rfc3339(now)
        );
        let delivery = self
            .store()
            .retry_delivery(workspace_id, id, now, &note)
            .await?
            .ok_or(ServiceError::NotFound("delivery"))?;
        self.inner.parts.dispatcher.wake();
        Ok(delivery)
    }

    /// A record as stored.
    pub async fn record(&self, workspace_id: &str, id: &str) -> ServiceResult<serde_json::Value> {
        let (_, body) = self
            .store()
            .get_records(workspace_id, std::slice::from_ref(&id.to_owned()))
            .await?
            .pop()
            .ok_or(ServiceError::NotFound("record"))?;
        serde_json::from_str(&body).map_err(|e| ServiceError::Internal(e.into()))
    }
}
