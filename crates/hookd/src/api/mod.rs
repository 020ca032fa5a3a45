//! The HTTP API (DESIGN.md §5): one module per resource, each with its routes.

mod deliveries;
pub mod error;
mod extract;
mod ingest;
mod system;
mod views;
mod webhooks;
mod workspaces;

use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use hookd_core::clock::Clock;
use hookd_core::store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::config::Settings;
use crate::dispatch::Dispatcher;
use crate::ingest::Committer;

pub use extract::key_hash;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub committer: Committer,
    pub dispatcher: Dispatcher,
    pub admin_key_hash: String,
    pub metrics: PrometheusHandle,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.api.max_body_bytes;
    Router::new()
        .merge(system::routes())
        .merge(workspaces::routes())
        .merge(webhooks::routes())
        .merge(ingest::routes())
        .merge(deliveries::routes())
        .fallback(|| async { error::ApiError::NotFound("route") })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::new())
        .with_state(state)
}
