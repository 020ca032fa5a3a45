//! Records as stored: what producers sent, stamped with `id`, `workspace_id` and
//! `timestamp_in`.

use axum::Json;
use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiResult, CommonErrors};
use super::extract::Caller;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(read_record))
}

/// Reads a record as stored (and as delivered). Records are pruned once no delivery carries
/// them and they are older than `retention.delivered`.
#[utoipa::path(
    get, path = "/v1/workspaces/{ws}/records/{rec}", tag = "ingest",
    params(("ws" = String, Path, description = "Workspace id"), ("rec" = String, Path, description = "Record id (`rec_…`)")),
    responses((status = 200, description = "The record", body = Object), CommonErrors)
)]
async fn read_record(
    State(state): State<AppState>,
    caller: Caller,
    Path((ws, rec)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.workspace(&state, &ws).await?;
    Ok(Json(state.service.record(&ws, &rec).await?))
}
