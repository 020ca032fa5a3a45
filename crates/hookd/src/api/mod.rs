//! The HTTP API (the README's API section): one module per resource, each with its routes. Routes are
//! registered only through `utoipa_axum::routes!`, from each handler's `#[utoipa::path]`, so
//! the OpenAPI document at `/openapi.json` describes exactly the routes served.

mod deliveries;
mod devices;
mod docs;
pub mod error;
mod extract;
mod inbound;
mod ingest;
mod records;
mod sources;
mod system;
mod webhooks;
mod workspaces;

use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::config::{Role, Settings};
use crate::service::Service;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    /// The operations the routes call: nothing else of hookd is reached from here.
    pub service: Service,
    pub settings: Arc<Settings>,
    pub admin_key_hash: String,
    pub metrics: crate::metrics::Metrics,
    /// Requests per workspace key (by key hash); `None` when the limit is off.
    pub rate_limit: Option<Arc<governor::DefaultKeyedRateLimiter<String>>>,
    /// The MQTT door's connection, when `[mqtt]` is configured (for `/readyz`).
    pub mqtt: Option<crate::mqtt::Status>,
}

/// The per-key rate limiter the settings ask for.
pub fn rate_limiter(settings: &Settings) -> Option<Arc<governor::DefaultKeyedRateLimiter<String>>> {
    let rate = std::num::NonZeroU32::new(settings.api.rate_limit_per_second)?;
    let burst = std::num::NonZeroU32::new(settings.api.rate_limit_burst.max(settings.api.rate_limit_per_second))
        .unwrap_or(rate);
    Some(Arc::new(governor::RateLimiter::keyed(
        governor::Quota::per_second(rate).allow_burst(burst),
    )))
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

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookd",
        description = "A webhook gateway: ingest data points and events, deliver them signed, filtered, batched and retried to the webhooks your customers registered. Every route but the health, metrics and document routes takes `Authorization: Bearer <key>`: the admin key, or a workspace key. Errors are always `{\"error\": {\"code\", \"message\", \"field\"}}`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "workspaces", description = "Tenants and their API keys"),
        (name = "webhooks", description = "Subscriptions: where records are delivered, and how"),
        (name = "ingest", description = "Records in: 202 only once they are on disk"),
        (name = "deliveries", description = "The delivery log, retries and replays"),
        (name = "devices", description = "The devices a workspace hears from, and their presence"),
        (name = "sources", description = "Receiving: inbound doors (`/in/{src}`, no API key: the source's scheme verifies each request) and their request log"),
        (name = "system", description = "Health, metrics and this document")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route of a process in `role`, with its documentation. A worker serves only health,
/// metrics and the document.
fn routes(role: Role) -> OpenApiRouter<AppState> {
    let system = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(system::routes())
        .merge(docs::routes());
    if !role.runs_api() {
        return system;
    }
    system
        .merge(workspaces::routes())
        .merge(webhooks::routes())
        .merge(ingest::routes())
        .merge(deliveries::routes())
        .merge(devices::routes())
        .merge(records::routes())
        .merge(sources::routes())
        .merge(inbound::routes())
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes(Role::All).split_for_parts().1
}

pub fn router(state: AppState, role: Role) -> Router {
    let body_limit = state.settings.api.max_body_bytes;
    let (mut router, _) = routes(role).split_for_parts();
    if role.runs_api() && state.settings.dashboard.enabled {
        router = router.merge(crate::dashboard::routes(state.clone()));
    }
    router
        .fallback(|| async { error::ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            extract::limit_headers,
        ))
        .layer(axum::middleware::from_fn(access_log))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::new())
        .with_state(state)
}

/// Routes polled by machines (probes, scrapers): logged at debug, not once per poll at info.
const QUIET_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// One log line per API request: method, route, status, duration and workspace (at info; at
/// warn for a 5xx; the health, readiness and metrics routes at debug).
async fn access_log(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "(no route)".to_owned(), |p| p.as_str().to_owned());
    let workspace = workspace_of(request.uri().path()).map(str::to_owned);
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
    let workspace = workspace.as_deref().unwrap_or("-");
    if status >= 500 {
        tracing::warn!(%method, %route, status, ms, %workspace, "request");
    } else if QUIET_ROUTES.contains(&route.as_str()) {
        tracing::debug!(%method, %route, status, ms, %workspace, "request");
    } else {
        tracing::info!(%method, %route, status, ms, %workspace, "request");
    }
    response
}

/// The workspace id in a `/v1/workspaces/{ws}/…` path.
fn workspace_of(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/workspaces/")?
        .split('/')
        .next()
        .filter(|ws| !ws.is_empty())
}

#[cfg(test)]
mod tests {
    /// Routes registered with plain axum calls would be served but not documented.
    #[test]
    fn every_route_is_registered_through_its_openapi_description() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let source = std::fs::read_to_string(&path).unwrap();
            for forbidden in [
                concat!(".", "route("),
                concat!(".", "nest("),
                concat!(".", "route_service("),
            ] {
                assert!(
                    !source.contains(forbidden),
                    "{} registers a route with `{forbidden}`; use routes!() with #[utoipa::path]",
                    path.display()
                );
            }
        }
    }
}
