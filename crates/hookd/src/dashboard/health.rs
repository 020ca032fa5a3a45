//! Health: a workspace's (or one webhook's) attempts per minute and latency over the last 24
//! hours, and (for the admin) the queue.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use hookd_core::store::{Access, Tally, TallyQuery, minute_of};
use minijinja::context;

use super::{DashResult, Viewer, chart, render};
use crate::api::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/w/{ws}/health", get(show))
}

const DAY: i64 = 24 * 3_600_000;

async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(ws): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> DashResult {
    let workspace = viewer.workspace(&state, &ws).await?;
    let webhooks = state.service.list_webhooks(&workspace.id).await?;
    let webhook = params
        .get("webhook")
        .filter(|id| webhooks.iter().any(|w| w.id.as_str() == id.as_str()))
        .cloned();
    let now = state.service.now();
    let from = minute_of(now) - DAY + 60_000;
    let minutes = state
        .service
        .tallies_by_minute(&TallyQuery {
            workspace_id: workspace.id.clone(),
            webhook_id: webhook.clone(),
            since: from,
        })
        .await?;
    let day: Tally = minutes.iter().map(|(_, t)| t).sum();
    // The queue is every workspace's: only the admin sees it.
    let queue = match viewer.pass.access {
        Access::Admin => {
            let (queue, at) = state.service.queue_stats().await?;
            let oldest_age_s = queue.oldest_pending_at.map(|t| ((at - t).max(0) / 1000) as u64);
            Some(context! { pending => queue.pending, due => queue.due, oldest_age_s })
        }
        Access::Manage | Access::Read => None,
    };
    let options: Vec<(String, String)> = webhooks
        .iter()
        .map(|w| (w.id.to_string(), w.spec.name.clone()))
        .collect();
    Ok(render(
        &state,
        Some(&viewer),
        Some(&ws),
        "health.html",
        context! {
            webhooks => options,
            webhook,
            outcomes => chart::outcomes(&minutes, from),
            latency => chart::latency(&minutes, from),
            day => context! {
                attempts => day.attempts(),
                delivered => day.delivered,
                retrying => day.retrying,
                failed => day.failed,
                success_rate => day.success_rate().map(|r| format!("{:.1} %", r * 100.0)),
                p50 => day.latency_quantile(0.5),
                p95 => day.latency_quantile(0.95),
                p99 => day.latency_quantile(0.99),
            },
            queue,
        },
    ))
}
