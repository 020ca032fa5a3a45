//! Sources: the list and the create form, one source's request log (outcome, reason code,
//! explanation), replay of a request that failed, and the transform preview.

use std::collections::HashMap;

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use hookd_core::store::{RequestOutcome, SourceRequestQuery};
use minijinja::{Value, context};

use super::form::{Purpose, SOURCE_FIELDS, body, errors_by_field, submitted, values};
use super::{DashResult, Fields, Viewer, render_status, see_other};
use crate::api::AppState;
use crate::model;
use crate::service::ServiceError;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/w/{ws}/sources", get(list).post(create))
        .route("/w/{ws}/sources/{id}", get(show))
        .route("/w/{ws}/sources/{id}/requests/{request}/replay", post(replay))
        .route("/w/{ws}/sources/{id}/preview", post(preview))
}

const LOG_PAGE: usize = 50;

async fn list_page(state: &AppState, viewer: &Viewer, ws: &str, extra: Value, status: StatusCode) -> DashResult {
    let workspace = viewer.workspace(state, ws).await?;
    let sources: Vec<model::Source> = state
        .service
        .list_sources(&workspace.id)
        .await?
        .iter()
        .map(|s| model::Source::render(s, Vec::new()))
        .collect();
    let ctx = context! { sources, fields => super::form::grouped(&SOURCE_FIELDS), ..extra };
    Ok(render_status(
        state,
        status,
        Some(viewer),
        Some(ws),
        "sources.html",
        ctx,
    ))
}

async fn list(State(state): State<AppState>, viewer: Viewer, Path(ws): Path<String>) -> DashResult {
    let values = values(&SOURCE_FIELDS, &serde_json::json!({}));
    list_page(&state, &viewer, &ws, context! { values }, StatusCode::OK).await
}

async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(ws): Path<String>,
    Form(form): Form<Fields>,
) -> DashResult {
    let workspace = viewer.changing(&state, &ws, &form).await?;
    let body = body(&SOURCE_FIELDS, &form, Purpose::Create);
    match state.service.create_source(&workspace.id, &body).await {
        Ok(created) => Ok(see_other(&format!("/w/{ws}/sources/{}", created.source.id))),
        Err(ServiceError::Invalid(err)) => {
            let extra = context! {
                values => submitted(&SOURCE_FIELDS, &form),
                errors => errors_by_field(&SOURCE_FIELDS, &err),
            };
            list_page(&state, &viewer, &ws, extra, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(err) => Err(err.into()),
    }
}

async fn source_page(
    state: &AppState,
    viewer: &Viewer,
    ws: &str,
    id: &str,
    params: &HashMap<String, String>,
    extra: Value,
) -> DashResult {
    let workspace = viewer.workspace(state, ws).await?;
    let source = state.service.source(&workspace.id, id).await?;
    let outcome = params.get("outcome").and_then(|o| RequestOutcome::parse(o));
    let query = SourceRequestQuery {
        outcome,
        limit: LOG_PAGE,
        after: params.get("after").filter(|a| !a.is_empty()).cloned(),
    };
    let found = state.service.source_requests(&workspace.id, id, &query).await?;
    let next = (found.len() == LOG_PAGE)
        .then(|| found.last().map(|r| r.id.clone()))
        .flatten();
    let requests: Vec<model::SourceRequest> = found.iter().map(Into::into).collect();
    let ctx = context! {
        source => model::Source::render(&source, Vec::new()),
        requests,
        next,
        outcome => outcome.map(RequestOutcome::as_str),
        outcomes => ["accepted", "rejected", "failed"],
        ..extra
    };
    Ok(render_status(
        state,
        StatusCode::OK,
        Some(viewer),
        Some(ws),
        "source.html",
        ctx,
    ))
}

async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((ws, id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> DashResult {
    let extra = context! { replayed => params.get("replayed") };
    source_page(&state, &viewer, &ws, &id, &params, extra).await
}

async fn replay(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((ws, id, request)): Path<(String, String, String)>,
    Form(form): Form<Fields>,
) -> DashResult {
    let workspace = viewer.changing(&state, &ws, &form).await?;
    state.service.replay_request(&workspace.id, &id, &request).await?;
    Ok(see_other(&format!("/w/{ws}/sources/{id}?replayed={request}")))
}

async fn preview(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((ws, id)): Path<(String, String)>,
    Form(form): Form<Fields>,
) -> DashResult {
    // A preview stores nothing, so a read-only portal may run one too.
    let workspace = viewer.workspace(&state, &ws).await?;
    let mut draft = serde_json::Map::new();
    for name in ["split", "transform"] {
        if let Some(program) = form.get(name).map(|p| p.trim()).filter(|p| !p.is_empty()) {
            draft.insert(name.into(), program.into());
        }
    }
    let (previews, preview_error) = match state
        .service
        .preview(&workspace.id, &id, &serde_json::Value::Object(draft))
        .await
    {
        Ok(found) => (found.iter().map(model::Preview::from).collect(), None),
        Err(ServiceError::Invalid(err)) => (Vec::new(), Some(err.to_string())),
        Err(err) => return Err(err.into()),
    };
    let extra = context! {
        previews,
        preview_error,
        draft => context! { split => form.get("split"), transform => form.get("transform") },
        previewed => true,
    };
    source_page(&state, &viewer, &ws, &id, &HashMap::new(), extra).await
}
