//! `/`: a page for a person who opens hookd in a browser; `/docs`: the API reference,
//! rendered in the browser by Redoc, which is vendored in `assets/redoc` (no CDN).

use axum::http::HeaderMap;
use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

const REDOC: &[u8] = include_bytes!("../../assets/redoc/redoc.standalone.js");

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>hookd API reference</title>
</head>
<body>
  <redoc spec-url="/openapi.json" hide-download-button="false"></redoc>
  <script src="/docs/redoc.standalone.js"></script>
</body>
</html>
"#;

const HOME: &str = include_str!("../../assets/home.html");

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(home))
        .routes(routes!(docs_page))
        .routes(routes!(docs_page_slash))
        .routes(routes!(docs_script))
}

/// For a browser (`Accept: text/html`), a page saying what this is, with the quick start and
/// links to the API reference; for anything else, the JSON 404 of an unknown route.
#[utoipa::path(
    get, path = "/", tag = "system", security(()),
    responses((status = 200, content_type = "text/html", body = String), (status = 404, description = "Not asked for HTML", body = crate::model::ErrorBody))
)]
async fn home(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        Html(HOME.replace("{{version}}", env!("CARGO_PKG_VERSION"))).into_response()
    } else {
        super::error::ApiError::NotFound("route").into_response()
    }
}

/// The API reference, rendered from `/openapi.json`.
#[utoipa::path(get, path = "/docs", tag = "system", security(()), responses((status = 200, content_type = "text/html", body = String)))]
async fn docs_page() -> Html<&'static str> {
    Html(PAGE)
}

/// The API reference at `/docs/`, as at `/docs`.
#[utoipa::path(get, path = "/docs/", tag = "system", security(()), responses((status = 200, content_type = "text/html", body = String)))]
async fn docs_page_slash() -> Html<&'static str> {
    Html(PAGE)
}

/// The vendored Redoc renderer the reference page loads.
#[utoipa::path(get, path = "/docs/redoc.standalone.js", tag = "system", security(()), responses((status = 200, content_type = "text/javascript", body = String)))]
async fn docs_script() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        REDOC,
    )
}
