//! The delivery planner: which webhooks get which records, in which deliveries, due when.
//! Apart from group commit (which only writes what is planned), it matches records against
//! the [`Registry`] of enabled webhooks kept in memory, and cuts each webhook's matches into
//! [`NewDelivery`]s.
//!
//! The fleet behaviours are planned here too ([`pacing`]): a planned delivery carries the time
//! it is first due (`due_at`: later for a batch window), an ordering key (its lane within the
//! webhook, a device, for per-device ordering) and how it joins a pending delivery of the same
//! coalescing key (batch windows, debounce), which the store does in the ingest transaction.

mod conditions;
mod pacing;
mod registry;

use std::collections::HashMap;
use std::sync::Arc;

use hookd_core::clock::Millis;
use hookd_core::id::{DeliveryId, WebhookId};
use hookd_core::record::RecordIn;
use hookd_core::store::{NewDelivery, NewRecord, Store, StoreResult};
use hookd_core::webhook::Webhook;

pub use conditions::{Conditions, Verdicts};
pub use registry::{Enabled, Registry};

/// Where records come from. It decides what they may be delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Sent to the API by a producer.
    Api,
    /// Made by hookd itself about webhook `about` (operational events): never delivered to
    /// that webhook, so a failing webhook cannot feed on its own events.
    System { about: WebhookId },
    /// Received by a source (`src_…`) at its door: delivered to the webhooks that take
    /// records from every door or name this source.
    Source { id: String },
    /// Made by hookd about a device's presence (`device.online`, `device.offline`):
    /// delivered like the API's records, never counted as hearing from the device.
    Presence,
}

/// A handle to the planner. Cheap to clone.
#[derive(Clone)]
pub struct Planner {
    registry: Registry,
    conditions: Conditions,
}

/// Records arriving in one ingest request: as sent, and as they are written (same order).
pub struct Arrivals<'a> {
    pub workspace_id: &'a str,
    pub origin: &'a Origin,
    pub incoming: &'a [RecordIn],
    pub stored: &'a [NewRecord],
}

/// The enabled webhooks of the workspaces being planned for.
pub struct Webhooks {
    by_workspace: HashMap<String, Enabled>,
}

impl Webhooks {
    /// Every one of them, by id.
    pub fn by_id(&self) -> HashMap<WebhookId, Arc<Webhook>> {
        self.by_workspace
            .values()
            .flat_map(|hooks| hooks.iter())
            .map(|w| (w.id.clone(), w.clone()))
            .collect()
    }
}

impl Planner {
    pub fn new(store: Arc<dyn Store>, conditions: Conditions) -> Self {
        Self {
            registry: Registry::new(store),
            conditions,
        }
    }

    /// The cache of enabled webhooks, to tell it of changes.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The enabled webhooks of `workspaces`, for [`Planner::plan`].
    pub async fn webhooks(&self, workspaces: impl IntoIterator<Item = &str>) -> StoreResult<Webhooks> {
        let mut ids: Vec<String> = workspaces.into_iter().map(str::to_owned).collect();
        ids.sort();
        ids.dedup();
        Ok(Webhooks {
            by_workspace: self.registry.enabled(&ids).await?,
        })
    }

    /// The webhooks of `arrivals`' workspace that may take its records (enabled, not the
    /// webhook a system event is about, admitting its door).
    fn eligible<'w>(webhooks: &'w Webhooks, arrivals: &Arrivals<'w>) -> impl Iterator<Item = &'w Arc<Webhook>> {
        let (excluded, source) = match arrivals.origin {
            Origin::Api | Origin::Presence => (None, None),
            Origin::System { about } => (Some(about), None),
            Origin::Source { id } => (None, Some(id.as_str())),
        };
        webhooks
            .by_workspace
            .get(arrivals.workspace_id)
            .into_iter()
            .flat_map(|hooks| hooks.iter())
            .filter(move |webhook| excluded != Some(&webhook.id) && webhook.spec.filters.admits_source(source))
    }

    /// Runs the conditions of the webhooks `batch` may go to on the records their filters
    /// pass, one sandbox request per conditioned webhook.
    pub async fn judge(&self, webhooks: &Webhooks, batch: &[Arrivals<'_>], now: Millis) -> Verdicts {
        let mut candidates: HashMap<&WebhookId, conditions::Candidates<'_>> = HashMap::new();
        for arrivals in batch {
            for webhook in Self::eligible(webhooks, arrivals).filter(|w| w.spec.condition.is_some()) {
                let passed = arrivals
                    .incoming
                    .iter()
                    .zip(arrivals.stored)
                    .filter(|(record, _)| webhook.spec.accepts(record))
                    .map(|(_, stored)| (stored.id.as_str(), stored.body.as_str()));
                candidates
                    .entry(&webhook.id)
                    .or_insert_with(|| conditions::Candidates {
                        webhook,
                        records: Vec::new(),
                    })
                    .records
                    .extend(passed);
            }
        }
        if candidates.is_empty() {
            return Verdicts::default();
        }
        self.conditions.judge(candidates.into_values().collect(), now).await
    }

    /// The deliveries of `arrivals`: for each webhook, its matching records (by its filters
    /// and, if it has one, the condition's verdict) in order, cut into deliveries of at most
    /// its batch size (one each for `single`), paced as the webhook says ([`pacing`]).
    pub fn plan(
        &self,
        webhooks: &Webhooks,
        arrivals: &Arrivals<'_>,
        verdicts: &Verdicts,
        now: Millis,
    ) -> Vec<NewDelivery> {
        let mut planned = Vec::new();
        for webhook in Self::eligible(webhooks, arrivals) {
            let matched: Vec<(&RecordIn, &str)> = arrivals
                .incoming
                .iter()
                .zip(arrivals.stored)
                .filter(|(record, stored)| webhook.spec.accepts(record) && verdicts.admits(webhook, &stored.id))
                .map(|(record, stored)| (record, stored.id.as_str()))
                .collect();
            if matched.is_empty() {
                continue;
            }
            let delivery = |record_ids: Vec<String>| NewDelivery {
                id: DeliveryId::generate(),
                workspace_id: arrivals.workspace_id.to_owned(),
                webhook_id: webhook.id.clone(),
                record_ids,
                created_at: now,
                due_at: now,
                ordering_key: None,
                coalescing: None,
                lease: None,
            };
            if pacing::paced(&webhook.spec) {
                pacing::cut(&webhook.spec, &matched, now, delivery, &mut planned);
            } else {
                planned.extend(
                    matched
                        .chunks(webhook.spec.records_per_delivery())
                        .map(|chunk| delivery(chunk.iter().map(|(_, id)| (*id).to_owned()).collect())),
                );
            }
        }
        planned
    }
}
