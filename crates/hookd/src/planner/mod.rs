//! The delivery planner: which webhooks get which records, in which deliveries, due when.
//! Apart from group commit (which only writes what is planned), it matches records against
//! the [`Registry`] of enabled webhooks kept in memory, and cuts each webhook's matches into
//! [`NewDelivery`]s.
//!
//! This is where later delivery behaviours hook in. A planned delivery carries the time it is
//! first due (`due_at`, today always now), so a debounce can plan one for later; an ordering
//! key (its lane within the webhook, e.g. a device, for per-device ordering) and a coalescing
//! key (deliveries with the same key that are not yet sent become one, for debounce). Today
//! the planner sets neither key; the fleet behaviours set them here and store them.

mod registry;

use std::collections::HashMap;
use std::sync::Arc;

use hookd_core::clock::Millis;
use hookd_core::id::{DeliveryId, WebhookId};
use hookd_core::record::RecordIn;
use hookd_core::store::{NewDelivery, NewRecord, Store, StoreResult};
use hookd_core::webhook::Webhook;

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
}

/// A handle to the planner. Cheap to clone.
#[derive(Clone)]
pub struct Planner {
    registry: Registry,
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
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            registry: Registry::new(store),
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

    /// The deliveries of records (`incoming` as sent, `stored` as they are written, in the
    /// same order) from `origin` in `workspace_id`: for each webhook, its matching records in
    /// order, cut into deliveries of at most its batch size (one each for `single`).
    pub fn plan(
        &self,
        webhooks: &Webhooks,
        workspace_id: &str,
        origin: &Origin,
        incoming: &[RecordIn],
        stored: &[NewRecord],
        now: Millis,
    ) -> Vec<NewDelivery> {
        let (excluded, source) = match origin {
            Origin::Api => (None, None),
            Origin::System { about } => (Some(about), None),
            Origin::Source { id } => (None, Some(id.as_str())),
        };
        webhooks
            .by_workspace
            .get(workspace_id)
            .into_iter()
            .flat_map(|hooks| hooks.iter())
            .filter(|webhook| excluded != Some(&webhook.id) && webhook.spec.filters.admits_source(source))
            .flat_map(|webhook| {
                let matched: Vec<&str> = incoming
                    .iter()
                    .zip(stored)
                    .filter(|(record, _)| webhook.spec.accepts(record))
                    .map(|(_, stored)| stored.id.as_str())
                    .collect();
                matched
                    .chunks(webhook.spec.records_per_delivery())
                    .map(|ids| NewDelivery {
                        id: DeliveryId::generate(),
                        workspace_id: workspace_id.to_owned(),
                        webhook_id: webhook.id.clone(),
                        record_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
                        created_at: now,
                        due_at: now,
                        ordering_key: None,
                        coalescing_key: None,
                        lease: None,
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
