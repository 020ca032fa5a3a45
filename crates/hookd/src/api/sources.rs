//! Sources: CRUD and the request log. Their public door is in `inbound`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use hookd_core::store::{RequestOutcome, SourceRequestQuery};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, BodyErrors, CommonErrors};
use super::extract::{Caller, JsonBody, list_query, page_limit};
use crate::model;
use crate::service::SourceChanged;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_source, list_sources))
        .routes(routes!(read_source, update_source, delete_source))
        .routes(routes!(list_requests))
        .routes(routes!(read_request))
        .routes(routes!(replay_request))
        .routes(routes!(preview))
}

fn view(changed: &SourceChanged) -> model::Source {
    model::Source::render(&changed.source, changed.warnings.clone())
}

/// Creates a source. Its door is `POST /in/{src}` (see `path` in the answer).
#[utoipa::path(
    post, path = "/v1/workspaces/{ws}/sources", tag = "sources", params(("ws" = String, Path, description = "Workspace id")), request_body = model::SourceIn,
    responses((status = 201, body = model::Source), CommonErrors, BodyErrors)
)]
async fn create_source(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<model::Source>)> {
    let workspace = caller.workspace(&state, &ws).await?;
    let created = state.service.create_source(&workspace.id, &body.value).await?;
    Ok((StatusCode::CREATED, Json(view(&created))))
}

/// Lists the workspace's sources.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/sources", tag = "sources", params(("ws" = String, Path, description = "Workspace id")), responses((status = 200, body = model::List<model::Source>), CommonErrors))]
async fn list_sources(
    State(state): State<AppState>,
    caller: Caller,
    Path(ws): Path<String>,
) -> ApiResult<Json<model::List<model::Source>>> {
    caller.workspace(&state, &ws).await?;
    let sources = state.service.list_sources(&ws).await?;
    Ok(Json(model::List {
        data: sources.iter().map(|s| model::Source::render(s, Vec::new())).collect(),
    }))
}

/// Reads a source. Its secrets show only their last four characters.
#[utoipa::path(get, path = "/v1/workspaces/{ws}/sources/{src}", tag = "sources", params(("ws" = String, Path, description = "Workspace id"), ("src" = String, Path, description = "Source id")), responses((status = 200, body = model::Source), CommonErrors))]
async fn read_source(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, src)): Path<(String, String)>,
) -> ApiResult<Json<model::Source>> {
    caller.workspace(&state, &ws).await?;
    Ok(Json(model::Source::render(
        &state.service.source(&ws, &src).await?,
        Vec::new(),
    )))
}

/// Replaces the fields the body names (`secret` replaces every secret; a new `scheme` starts
/// from its defaults).
#[utoipa::path(
    patch, path = "/v1/workspaces/{ws}/sources/{src}", tag = "sources", params(("ws" = String, Path, description = "Workspace id"), ("src" = String, Path, description = "Source id")), request_body = model::SourceIn,
    responses((status = 200, body = model::Source), CommonErrors, BodyErrors)
)]
async fn update_source(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, src)): Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<Json<model::Source>> {
    caller.workspace(&state, &ws).await?;
    Ok(Json(view(&state.service.update_source(&ws, &src, &body.value).await?)))
}

/// Deletes a source and its request log. Records it made stay.
#[utoipa::path(
    delete, path = "/v1/workspaces/{ws}/sources/{src}", tag = "sources", params(("ws" = String, Path, description = "Workspace id"), ("src" = String, Path, description = "Source id")),
    responses((status = 204, description = "Deleted"), CommonErrors)
)]
async fn delete_source(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, src)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.workspace(&state, &ws).await?;
    state.service.delete_source(&ws, &src).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Filters and paging of the request log.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query; it is parsed by `parse_query`
struct RequestParams {
    /// Only requests with this outcome: accepted, rejected or failed.
    outcome: Option<String>,
    /// Page size, 1–250 (default 50).
    #[param(minimum = 1, maximum = 250)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    after: Option<String>,
}

fn parse_query(raw: Option<&str>) -> ApiResult<SourceRequestQuery> {
    let params = list_query(raw, &["outcome", "limit", "after"])?;
    let outcome = params
        .get("outcome")
        .map(|o| {
            RequestOutcome::parse(o).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_value",
                    "outcome",
                    format!("unknown outcome `{o}`; expected accepted, rejected or failed"),
                )
            })
        })
        .transpose()?;
    let limit = page_limit(&params)?;
    Ok(SourceRequestQuery {
        outcome,
        limit,
        after: params.get("after").cloned(),
    })
}

/// The source's request log, newest first: every request, accepted or not, with its reason
/// code and the evidence.
#[utoipa::path(
    get, path = "/v1/workspaces/{ws}/sources/{src}/requests", tag = "sources",
    params(("ws" = String, Path, description = "Workspace id"), ("src" = String, Path, description = "Source id"), RequestParams),
    responses((status = 200, body = model::SourceRequestPage), (status = 400, description = "A query parameter is wrong", body = model::ErrorBody), CommonErrors)
)]
async fn list_requests(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, src)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<model::SourceRequestPage>> {
    caller.workspace(&state, &ws).await?;
    let query = parse_query(raw.as_deref())?;
    let page = state.service.source_requests(&ws, &src, &query).await?;
    let next_cursor = (page.len() == query.limit)
        .then(|| page.last().map(|r| r.id.clone()))
        .flatten();
    Ok(Json(model::SourceRequestPage {
        data: page.iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One logged request.
#[utoipa::path(
    get, path = "/v1/workspaces/{ws}/sources/{src}/requests/{req}", tag = "sources",
    params(("ws" = String, Path, description = "Workspace id"), ("src" = String, Path, description = "Source id"), ("req" = String, Path, description = "Request id")),
    responses((status = 200, body = model::SourceRequest), CommonErrors)
)]
async fn read_request(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, src, req)): Path<(String, String, String)>,
) -> ApiResult<Json<model::SourceRequest>> {
    caller.workspace(&state, &ws).await?;
    Ok(Json((&state.service.source_request(&ws, &src, &req).await?).into()))
}

/// Makes records again of a logged request that verified, with the source's programs as they
/// are now (a `failed` one is recovered once they are fixed). Answers the request as logged
/// after it.
#[utoipa::path(
    post, path = "/v1/workspaces/{ws}/sources/{src}/requests/{req}/replay", tag = "sources",
    params(("ws" = String, Path, description = "Workspace id"), ("src" = String, Path, description = "Source id"), ("req" = String, Path, description = "Request id")),
    responses((status = 200, body = model::SourceRequest), (status = 409, description = "The request was refused by verification: never replayed", body = model::ErrorBody), CommonErrors)
)]
async fn replay_request(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, src, req)): Path<(String, String, String)>,
) -> ApiResult<Json<model::SourceRequest>> {
    caller.workspace(&state, &ws).await?;
    Ok(Json((&state.service.replay_request(&ws, &src, &req).await?).into()))
}

/// Tries draft programs on the source's last verified requests (and a sample, if given):
/// the records each would make, or the error and where. Nothing is stored or sent.
#[utoipa::path(
    post, path = "/v1/workspaces/{ws}/sources/{src}/preview", tag = "sources",
    params(("ws" = String, Path, description = "Workspace id"), ("src" = String, Path, description = "Source id")),
    request_body = model::PreviewIn,
    responses((status = 200, body = model::List<model::Preview>), CommonErrors, BodyErrors)
)]
async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, src)): Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<Json<model::List<model::Preview>>> {
    caller.workspace(&state, &ws).await?;
    let previews = state.service.preview(&ws, &src, &body.value).await?;
    Ok(Json(model::List {
        data: previews.iter().map(Into::into).collect(),
    }))
}
