//! Operational events — `webhook.disabled`, `webhook.recovered`, `delivery.failing`,
//! `delivery.dead`, `delivery.order_broken` — and disabling webhooks that have failed continuously for too long.
//! Events are ordinary records in the webhook's workspace, so customers subscribe to them
//! with an event webhook (`"filters": {"event_types": ["delivery.dead"]}`).

use futures::future::BoxFuture;
use hookd_core::clock::Millis;
use hookd_core::id::WebhookId;
use hookd_core::outcome::Decision;
use hookd_core::record::RecordIn;
use hookd_core::store::{Claimed, DeliveryState, Health};
use hookd_core::timefmt::rfc3339;
use hookd_core::webhook::Webhook;
use serde_json::json;

use crate::config::DispatchSettings;

/// Operational events about one webhook, to be ingested in its workspace.
pub struct Events {
    pub workspace_id: String,
    /// The webhook they are about: they are never delivered to it.
    pub about: WebhookId,
    pub records: Vec<RecordIn>,
}

/// Where the dispatcher's operational events go: the port it owns, wired at start-up to
/// ingest (so the dispatcher needs nothing of the committer).
pub trait EventSink: Send + Sync {
    /// Ingests the events; the future resolves once they are committed, or failed to be.
    fn ingest(&self, events: Events) -> BoxFuture<'static, ()>;
}

/// Why the webhook is to be disabled after this attempt, if it is: the receiver said 410
/// Gone, or it has been failing without a success for `auto_disable_after`.
pub(super) fn disable_reason(
    webhook: &Webhook,
    decision: &Decision,
    health: Health,
    now: Millis,
    settings: &DispatchSettings,
) -> Option<String> {
    if decision.disable_webhook {
        return Some(format!("disabled at {}: {}", rfc3339(now), decision.explanation));
    }
    let since = webhook.health.failing_since;
    let limit = settings.auto_disable_after.as_millis() as i64;
    if matches!(health, Health::Down { .. }) && since > 0 && now - since >= limit {
        return Some(format!(
            "disabled at {}: failing without a success since {} (longer than {}); fix the receiver, then enable the webhook",
            rfc3339(now),
            rfc3339(since),
            hookd_core::duration::format(settings.auto_disable_after)
        ));
    }
    None
}

/// What an attempt came to.
pub(super) struct Facts<'a> {
    pub(super) decision: &'a Decision,
    pub(super) health: Health,
    pub(super) disabled: Option<&'a str>,
    pub(super) now: Millis,
}

/// The events an attempt's outcome calls for.
pub(super) fn operational(claimed: &Claimed, facts: &Facts<'_>, settings: &DispatchSettings) -> Vec<RecordIn> {
    let webhook = &claimed.webhook;
    let delivery = &claimed.delivery;
    let about_delivery = || {
        json!({
            "webhook_id": webhook.id,
            "delivery_id": delivery.id,
            "attempts": delivery.attempts + 1,
            "explanation": facts.decision.explanation,
            "at": rfc3339(facts.now),
        })
    };
    let mut events = Vec::new();
    if facts.decision.state == DeliveryState::Dead {
        events.push(RecordIn::event("delivery.dead", about_delivery()));
        if let Some(device) = &delivery.ordering_key {
            // Its device's later deliveries go on without it: the order has a gap.
            let mut broken = about_delivery();
            broken["device_id"] = device.as_str().into();
            events.push(RecordIn::event("delivery.order_broken", broken));
        }
    }
    if facts.decision.state == DeliveryState::Pending && facts.decision.failures == settings.failing_event_after {
        events.push(RecordIn::event("delivery.failing", about_delivery()));
    }
    if let Some(reason) = facts.disabled {
        events.push(RecordIn::event(
            "webhook.disabled",
            json!({ "webhook_id": webhook.id, "reason": reason, "at": rfc3339(facts.now) }),
        ));
    }
    if facts.health == Health::Up && webhook.health.consecutive_failures >= settings.breaker_failures {
        events.push(RecordIn::event(
            "webhook.recovered",
            json!({ "webhook_id": webhook.id, "after_failures": webhook.health.consecutive_failures, "at": rfc3339(facts.now) }),
        ));
    }
    events
}
