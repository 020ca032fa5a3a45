//! The dashboard at `/`: server-rendered pages (minijinja templates in
//! `assets/dashboard`, embedded in the binary) for webhooks, deliveries, health, sources,
//! devices and portal links. Every form works without JavaScript; `dashboard.js` only adds
//! live updates of the delivery log. No page makes an outside request.
//!
//! It is a door like the API: each handler reads its form, calls the same [`Service`]
//! operation the API calls, and renders the answer, with the API's validation errors shown
//! next to the fields they name.
//!
//! # Layout
//!
//! - this module: the routes, rendering, errors, the embedded assets;
//! - `session`: signing in and out, who is viewing ([`Viewer`]), CSRF tokens, portal links;
//! - `form`: the webhook form's fields, and turning a submitted form into the API's JSON;
//! - `webhooks`, `deliveries`, `health` (with `chart`, the SVG charts), `sources`, `devices`.
//!
//! [`Service`]: crate::service::Service

mod chart;
mod deliveries;
mod devices;
mod form;
mod health;
mod session;
mod sources;
mod webhooks;

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::{Environment, Value, context};

use crate::api::AppState;
use crate::service::ServiceError;
use session::Viewer;

/// A submitted form, by field name.
type Fields = HashMap<String, String>;

/// The dashboard's routes (all under `/`, `/w/{ws}/…`, `/portal/…` and `/assets/…`).
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(session::home))
        .route("/sign-in", post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        .route("/portal/{token}", get(session::open_link))
        .route("/workspaces", get(session::workspaces).post(session::create_workspace))
        .route("/w/{ws}/portal-links", get(session::links).post(session::make_link))
        .route("/w/{ws}/portal-links/revoke", post(session::revoke_link))
        .merge(webhooks::routes())
        .merge(deliveries::routes())
        .merge(health::routes())
        .merge(sources::routes())
        .merge(devices::routes())
        .route("/assets/dashboard.css", get(stylesheet))
        .route("/assets/dashboard.js", get(script))
        .route("/assets/logo", get(logo))
        .layer(axum::middleware::from_fn_with_state(state, error_pages))
}

static PAGES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source).expect("the dashboard's templates parse");
    }
    env.add_filter("when", when);
    env
});

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../assets/dashboard/", $name)))),*]
    };
}

const TEMPLATES: [(&str, &str); 16] = templates!(
    "base.html",
    "macros.html",
    "sign_in.html",
    "error.html",
    "workspaces.html",
    "webhooks.html",
    "webhook.html",
    "webhook_form.html",
    "tested.html",
    "deliveries.html",
    "delivery_rows.html",
    "delivery.html",
    "health.html",
    "sources.html",
    "source.html",
    "devices.html",
);

/// An RFC 3339 time as people read it: `2026-12-03 18:04:05` (UTC).
fn when(value: Option<String>) -> String {
    let Some(text) = value else { return "—".into() };
    let trimmed = text.trim_end_matches('Z');
    let (date_time, _) = trimmed.split_once('.').unwrap_or((trimmed, ""));
    date_time.replacen('T', " ", 1)
}

/// A `datetime-local` value (`2026-12-03T18:04`, read as UTC) as ms since the epoch.
fn local_time(text: &str) -> Option<i64> {
    let with_seconds = if text.len() == 16 {
        format!("{text}:00Z")
    } else {
        format!("{text}Z")
    };
    hookd_core::timefmt::parse_rfc3339(&with_seconds)
}

/// A page from `template`, with what every page shows (the title, who is signed in, the
/// workspace in view).
fn render(state: &AppState, viewer: Option<&Viewer>, ws: Option<&str>, template: &str, ctx: Value) -> Response {
    render_status(state, StatusCode::OK, viewer, ws, template, ctx)
}

fn render_status(
    state: &AppState,
    status: StatusCode,
    viewer: Option<&Viewer>,
    ws: Option<&str>,
    template: &str,
    ctx: Value,
) -> Response {
    let settings = &state.settings.dashboard;
    let nav = match template {
        "webhooks.html" | "webhook.html" | "webhook_form.html" | "tested.html" => "webhooks",
        "deliveries.html" | "delivery.html" => "deliveries",
        "sources.html" | "source.html" => "sources",
        "health.html" => "health",
        "devices.html" => "devices",
        "workspaces.html" if ws.is_some() => "portal",
        "workspaces.html" => "workspaces",
        _ => "",
    };
    let page = context! {
        nav,
        brand => settings.title,
        has_logo => settings.logo_file.is_some(),
        viewer => viewer.map(Viewer::view),
        ws => ws,
        ..ctx
    };
    match PAGES.get_template(template).and_then(|t| t.render(page)) {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(err) => {
            tracing::error!(error = ?err, template, "a dashboard page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page failed to render").into_response()
        }
    }
}

/// After a form: to `to`, as a GET (303).
fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_owned())]).into_response()
}

/// What a dashboard request could not do.
#[derive(Debug)]
enum DashError {
    /// A read-only portal, or a form without this sign-in's CSRF token.
    Forbidden(&'static str),
    NotFound(&'static str),
    Service(ServiceError),
}

impl From<ServiceError> for DashError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::NotFound(what) => Self::NotFound(what),
            other => Self::Service(other),
        }
    }
}

type DashResult<T = Response> = Result<T, DashError>;

/// An error page to render: what [`DashError`] answers, turned into the page by
/// [`error_pages`] (which has the settings the page needs).
#[derive(Debug, Clone)]
struct ErrorPage {
    message: String,
}

impl IntoResponse for DashError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::Forbidden(why) => (StatusCode::FORBIDDEN, why.to_owned()),
            Self::NotFound(what) | Self::Service(ServiceError::NotFound(what)) => {
                (StatusCode::NOT_FOUND, format!("That {what} does not exist here."))
            }
            Self::Service(ServiceError::Invalid(err)) => (StatusCode::UNPROCESSABLE_ENTITY, err.to_string()),
            Self::Service(ServiceError::Conflict { message, .. }) => (StatusCode::CONFLICT, message),
            Self::Service(ServiceError::Unavailable) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is unavailable; try again shortly.".to_owned(),
            ),
            Self::Service(ServiceError::Internal(err)) => {
                tracing::error!(error = ?err, "a dashboard request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong; it is in hookd's log.".to_owned(),
                )
            }
        };
        let mut response = status.into_response();
        response.extensions_mut().insert(ErrorPage { message });
        response
    }
}

/// Renders the page of an error a handler answered.
async fn error_pages(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    match response.extensions().get::<ErrorPage>() {
        Some(error) => {
            let status = response.status();
            let ctx = context! { status => status.as_u16(), message => error.message };
            render_status(&state, status, None, None, "error.html", ctx)
        }
        None => response,
    }
}

const STYLESHEET: &str = include_str!("../../assets/dashboard/dashboard.css");
const SCRIPT: &str = include_str!("../../assets/dashboard/dashboard.js");

/// The stylesheet, its accent colour from `dashboard.accent`.
async fn stylesheet(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let css = format!(
        ":root {{ --accent: {}; }}\n{STYLESHEET}",
        state.settings.dashboard.accent
    );
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        css,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// The operator's logo (`dashboard.logo_file`), read when asked for.
async fn logo(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let Some(path) = &state.settings.dashboard.logo_file else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let kind = if path.extension().is_some_and(|e| e == "svg") {
        "image/svg+xml"
    } else {
        "image/png"
    };
    match tokio::fs::read(path).await {
        Ok(bytes) => ([(CONTENT_TYPE, kind), (CACHE_CONTROL, "public, max-age=300")], bytes).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, path = %path.display(), "the dashboard logo cannot be read");
            StatusCode::NOT_FOUND.into_response()
        }
    }
}
