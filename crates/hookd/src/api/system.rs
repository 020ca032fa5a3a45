//! Liveness, readiness, metrics and the OpenAPI document.

use std::sync::LazyLock;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::model::Health;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_text))
        .routes(routes!(openapi_json))
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "system", security(()), responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        reason: None,
    })
}

/// Readiness: the database answers. With `[mqtt]` configured and the broker not connected,
/// still 200 (the API works) but `status: "degraded"`, the reason saying why.
#[utoipa::path(
    get, path = "/readyz", tag = "system", security(()),
    responses((status = 200, body = Health), (status = 503, description = "The database does not answer", body = Health))
)]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    if let Err(err) = state.service.ping().await {
        tracing::warn!(error = ?err, "readiness check failed");
        let reason = Some("the database does not answer".into());
        let health = Health {
            status: "unavailable".into(),
            reason,
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(health));
    }
    let health = match state.mqtt.as_ref().map(crate::mqtt::Status::check) {
        Some(Err(reason)) => Health {
            status: "degraded".into(),
            reason: Some(reason),
        },
        _ => Health {
            status: "ready".into(),
            reason: None,
        },
    };
    (StatusCode::OK, Json(health))
}

/// Prometheus metrics, in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "system", security(()), responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    match state.service.queue_stats().await {
        Ok((stats, now)) => state.metrics.queue(stats, now),
        Err(err) => tracing::warn!(error = ?err, "queue statistics unavailable for /metrics"),
    }
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json", tag = "system", security(()), responses((status = 200, content_type = "application/json", body = Object)))]
async fn openapi_json() -> impl IntoResponse {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        super::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    });
    ([(CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}
