//! Building the request for a claimed delivery: the body (the README's delivery contract) and the headers,
//! signed per Standard Webhooks.

use bytes::Bytes;
use hookd_core::clock::Millis;
use hookd_core::signature::signature_header;
use std::sync::Arc;

use hookd_core::id::LeaseToken;
use hookd_core::store::{Claimed, Delivery, Lease};
use hookd_core::webhook::{Format, Method, Webhook, template};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::sender::Outgoing;

/// The body of delivery `delivery_id` to `webhook`, carrying `records` (their stored JSON).
/// `None` for GET webhooks.
pub fn body(webhook: &Webhook, delivery_id: &str, records: &[String]) -> Option<Bytes> {
    if webhook.spec.method == Method::Get {
        return None;
    }
    let triggered: Vec<String>;
    let records = match &webhook.spec.condition {
        None => records,
        Some(condition) => {
            triggered = records.iter().map(|r| with_trigger(r, condition)).collect();
            &triggered
        }
    };
    let body = match webhook.spec.format {
        Format::Single => records.first().cloned().unwrap_or_else(|| "{}".into()),
        Format::Batch => {
            let records_len: usize = records.iter().map(|r| r.len() + 1).sum();
            let mut out = String::with_capacity(records_len + 160);
            // Ids are [A-Za-z0-9_] only, so they need no JSON escaping.
            out.push_str("{\"batch_id\":\"");
            out.push_str(delivery_id);
            out.push_str("\",\"webhook_id\":\"");
            out.push_str(&webhook.id);
            out.push_str("\",\"workspace_id\":\"");
            out.push_str(&webhook.workspace_id);
            out.push_str("\",\"kind\":\"");
            out.push_str(webhook.spec.kind.as_str());
            out.push_str("\",\"result\":[");
            for (i, record) in records.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(record);
            }
            out.push_str("]}");
            out
        }
    };
    Some(Bytes::from(body))
}

/// A stored record (a JSON object) with `"trigger_condition"`, the condition it matched, last.
fn with_trigger(record: &str, condition: &str) -> String {
    let Some(open) = record.trim_end().strip_suffix('}') else {
        return record.to_owned();
    };
    let condition = serde_json::Value::String(condition.to_owned()).to_string();
    let comma = if open.trim_end().ends_with('{') { "" } else { "," };
    format!("{open}{comma}\"trigger_condition\":{condition}}}")
}

/// The full request for one attempt at `now`.
pub(super) fn build(claimed: &Claimed, now: Millis) -> Outgoing {
    let webhook: &Webhook = &claimed.webhook;
    let body = body(webhook, &claimed.delivery.id, &claimed.records);
    let timestamp = now.div_euclid(1000);
    let mut headers = HeaderMap::new();
    // Custom headers first, so hookd's own can never be shadowed.
    let templated = !webhook.spec.headers.is_empty() || !webhook.spec.query.is_empty();
    let first: Option<serde_json::Value> = templated
        .then(|| claimed.records.first().and_then(|r| serde_json::from_str(r).ok()))
        .flatten();
    for (name, template) in &webhook.spec.headers {
        let value = Webhook::render_header(template, first.as_ref());
        insert(&mut headers, name, &value);
    }
    let mut url = webhook.spec.url.clone();
    if !webhook.spec.query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (name, template) in &webhook.spec.query {
            pairs.append_pair(name, &template::render(template, first.as_ref()));
        }
    }
    if let Some(token) = &webhook.spec.token {
        insert(&mut headers, &webhook.spec.token_header, token);
    }
    if body.is_some() {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    let delivery = &claimed.delivery;
    if delivery.coalesced as usize > delivery.record_ids.len() || delivery.superseded > 0 {
        insert(&mut headers, "hookd-coalesced", &delivery.coalesced.to_string());
        insert(&mut headers, "hookd-superseded", &delivery.superseded.to_string());
    }
    let id = &delivery.id;
    insert(&mut headers, "webhook-id", id);
    insert(&mut headers, "webhook-timestamp", &timestamp.to_string());
    let signature = signature_header(
        webhook.signing_secrets(now),
        id,
        timestamp,
        body.as_deref().unwrap_or_default(),
    );
    insert(&mut headers, "webhook-signature", &signature);
    Outgoing {
        method: match webhook.spec.method {
            Method::Post => reqwest::Method::POST,
            Method::Get => reqwest::Method::GET,
        },
        url,
        headers,
        body,
        timeout: webhook.spec.timeout,
        tls: webhook.spec.tls.clone(),
    }
}

/// The headers an attempt of `delivery` at `at` sends, rebuilt as people may see them (the
/// token hidden; the signature made with the secrets that sign now).
pub fn rebuilt_headers(
    webhook: Arc<Webhook>,
    delivery: &Delivery,
    records: Vec<String>,
    at: Millis,
) -> Vec<(String, String)> {
    let claimed = Claimed {
        delivery: delivery.clone(),
        lease: Lease {
            token: LeaseToken::generate(),
            until: at,
        },
        webhook,
        records,
    };
    shown_headers(&build(&claimed, at), &claimed.webhook)
}

/// A request's headers as people may see them: the token's value hidden.
pub(super) fn shown_headers(outgoing: &Outgoing, webhook: &Webhook) -> Vec<(String, String)> {
    let token_header = webhook
        .spec
        .token
        .as_ref()
        .map(|_| webhook.spec.token_header.to_ascii_lowercase());
    outgoing
        .headers
        .iter()
        .map(|(name, value)| {
            let shown = if Some(name.as_str()) == token_header.as_deref() {
                "***".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), shown)
        })
        .collect()
}

/// Inserts a header validated at webhook creation; anything unexpected is skipped, not sent.
fn insert(headers: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
        headers.insert(name, value);
    }
}
