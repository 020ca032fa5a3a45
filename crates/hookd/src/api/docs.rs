//! `/docs`: the API reference, rendered in the browser by Redoc, which is vendored in
//! `assets/redoc` (no CDN). `/` is the dashboard's.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse};
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

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(docs_page))
        .routes(routes!(docs_page_slash))
        .routes(routes!(docs_script))
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
