//! Signing in and out, who is viewing, CSRF tokens, workspaces, and portal links.
//!
//! A sign-in is a server-side session: the browser holds a random token in an `HttpOnly`,
//! `SameSite=Lax` cookie (`Secure` over TLS) that expires with the session; the store holds
//! its hash. Every request re-checks it (see the service's `signed_in`).

use std::time::Duration;

use axum::Form;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hookd_core::signature::constant_time_eq;
use hookd_core::store::{Access, Pass, Workspace};
use hookd_core::timefmt::rfc3339;
use minijinja::context;
use serde::Serialize;

use super::{DashError, DashResult, Fields, render, render_status, see_other};
use crate::api::AppState;
use crate::model;
use crate::service::Issued;

const COOKIE_NAME: &str = "hookd_session";

/// Who is viewing: a sign-in that still holds.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub(super) pass: Pass,
    token: String,
}

/// What the templates see of the viewer.
#[derive(Serialize)]
pub(super) struct ViewerView {
    admin: bool,
    read_only: bool,
    workspace: Option<String>,
    csrf: String,
}

impl Viewer {
    pub(super) fn view(&self) -> ViewerView {
        ViewerView {
            admin: self.pass.access == Access::Admin,
            read_only: self.pass.access == Access::Read,
            workspace: self.pass.workspace_id.clone(),
            csrf: self.pass.csrf.clone(),
        }
    }

    /// The workspace `id`, if this viewer may see it (another workspace is "not found").
    pub(super) async fn workspace(&self, state: &AppState, id: &str) -> DashResult<Workspace> {
        if self.pass.workspace_id.as_deref().is_some_and(|own| own != id) {
            return Err(DashError::NotFound("workspace"));
        }
        Ok(state.service.workspace(id).await?)
    }

    /// As [`workspace`](Self::workspace), for a form that changes something: the viewer may
    /// change it, and the form carries this sign-in's CSRF token.
    pub(super) async fn changing(&self, state: &AppState, id: &str, form: &Fields) -> DashResult<Workspace> {
        self.check_form(form)?;
        self.workspace(state, id).await
    }

    /// The form carries this sign-in's CSRF token.
    fn check_csrf(&self, form: &Fields) -> DashResult<()> {
        let sent = form.get("csrf").map(String::as_str).unwrap_or("");
        if !constant_time_eq(sent.as_bytes(), self.pass.csrf.as_bytes()) {
            return Err(DashError::Forbidden(
                "This form has expired (its security token does not match your sign-in). Go back, reload the page and try again.",
            ));
        }
        Ok(())
    }

    fn check_form(&self, form: &Fields) -> DashResult<()> {
        self.check_csrf(form)?;
        if self.pass.access == Access::Read {
            return Err(DashError::Forbidden("This portal link is read-only."));
        }
        Ok(())
    }

    fn is_admin(&self) -> bool {
        self.pass.access == Access::Admin
    }

    /// Where this viewer starts.
    fn home(&self) -> String {
        match &self.pass.workspace_id {
            Some(ws) => format!("/w/{ws}/webhooks"),
            None => "/workspaces".into(),
        }
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

async fn viewer_of(headers: &HeaderMap, state: &AppState) -> DashResult<Option<Viewer>> {
    let Some(token) = cookie_token(headers) else {
        return Ok(None);
    };
    let pass = state.service.signed_in(&token, &state.admin_key_hash).await?;
    Ok(pass.map(|pass| Viewer { pass, token }))
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match viewer_of(&parts.headers, state).await {
            Ok(Some(viewer)) => Ok(viewer),
            Ok(None) => Err(see_other("/")),
            Err(err) => Err(err.into_response()),
        }
    }
}

/// Whether the browser reached hookd over TLS (a proxy in front says so, or the settings do).
fn over_tls(state: &AppState, headers: &HeaderMap) -> bool {
    state.settings.dashboard.secure_cookie
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` of a sign-in lasting `ttl` (or, with `None`, the one that ends it).
fn session_cookie(state: &AppState, headers: &HeaderMap, token: Option<(&str, Duration)>) -> String {
    let secure = if over_tls(state, headers) { "; Secure" } else { "" };
    match token {
        Some((token, ttl)) => format!(
            "{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            ttl.as_secs().max(1)
        ),
        None => format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    }
}

/// `/`: the sign-in form, or, when signed in, where the viewer starts.
pub(super) async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match viewer_of(&headers, &state).await {
        Ok(Some(viewer)) => see_other(&viewer.home()),
        Ok(None) => render(&state, None, None, "sign_in.html", context! {}),
        Err(err) => err.into_response(),
    }
}

pub(super) async fn sign_in(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<Fields>) -> Response {
    let key = form.get("key").map(|k| k.trim()).unwrap_or("");
    let ttl = state.settings.dashboard.session_ttl;
    let issued = if key.is_empty() {
        Ok(None)
    } else {
        state.service.sign_in(key, &state.admin_key_hash, ttl).await
    };
    match issued {
        Ok(Some(issued)) => signed_in(&state, &headers, issued),
        Ok(None) => {
            let error = if key.is_empty() {
                "Enter an API key."
            } else {
                "That key is not the admin key or a workspace key of this hookd."
            };
            render_status(
                &state,
                StatusCode::UNAUTHORIZED,
                None,
                None,
                "sign_in.html",
                context! { error },
            )
        }
        Err(err) => DashError::from(err).into_response(),
    }
}

pub(super) async fn sign_out(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(form): Form<Fields>,
) -> Response {
    // A read-only portal signs out too: only the token is checked.
    if let Err(err) = viewer.check_csrf(&form) {
        return err.into_response();
    }
    if let Err(err) = state.service.sign_out(&viewer.token).await {
        return DashError::from(err).into_response();
    }
    with_cookie(see_other("/"), session_cookie(&state, &headers, None))
}

/// A sign-in just issued: its cookie, lasting as long as the pass, and on to where it starts.
fn signed_in(state: &AppState, headers: &HeaderMap, issued: Issued) -> Response {
    let ttl = Duration::from_millis((issued.pass.expires_at - issued.pass.created_at).max(1000) as u64);
    let viewer = Viewer {
        pass: issued.pass,
        token: issued.token,
    };
    let cookie = session_cookie(state, headers, Some((&viewer.token, ttl)));
    with_cookie(see_other(&viewer.home()), cookie)
}

fn with_cookie(mut response: Response, cookie: String) -> Response {
    response
        .headers_mut()
        .insert(SET_COOKIE, cookie.parse().expect("a cookie is a header value"));
    response
}

/// `/workspaces`: the admin's list of workspaces, with a form for a new one.
pub(super) async fn workspaces(State(state): State<AppState>, viewer: Viewer) -> DashResult {
    if !viewer.is_admin() {
        return Ok(see_other(&viewer.home()));
    }
    workspaces_page(&state, &viewer, None, StatusCode::OK).await
}

async fn workspaces_page(
    state: &AppState,
    viewer: &Viewer,
    ctx: Option<minijinja::Value>,
    status: StatusCode,
) -> DashResult {
    let list: Vec<model::Workspace> = state.service.list_workspaces().await?.iter().map(Into::into).collect();
    let ctx = minijinja::context! { workspaces => list, ..ctx.unwrap_or_default() };
    Ok(render_status(state, status, Some(viewer), None, "workspaces.html", ctx))
}

/// Creates a workspace and a key for it (shown once), as `hookd workspaces create` does.
pub(super) async fn create_workspace(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<Fields>,
) -> DashResult {
    viewer.check_form(&form)?;
    if !viewer.is_admin() {
        return Err(DashError::Forbidden("Only the admin creates workspaces."));
    }
    let body = serde_json::json!({ "name": form.get("name").map(|n| n.trim()).unwrap_or("") });
    match state.service.create_workspace(&body).await {
        Ok(workspace) => {
            let key = state.service.create_key(&workspace.id).await?;
            let ctx = context! { created => model::Workspace::from(&workspace), key => key.key };
            workspaces_page(&state, &viewer, Some(ctx), StatusCode::CREATED).await
        }
        Err(crate::service::ServiceError::Invalid(err)) => {
            let ctx = context! { errors => super::form::errors_by_field(&super::form::WORKSPACE_FIELDS, &err), name => form.get("name") };
            workspaces_page(&state, &viewer, Some(ctx), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(err) => Err(err.into()),
    }
}

/// A portal link as the list shows it.
#[derive(Serialize)]
struct LinkView {
    id: String,
    access: &'static str,
    created_at: String,
    expires_at: String,
}

/// `/w/{ws}/portal-links`: the workspace's links, and a form for a new one.
pub(super) async fn links(State(state): State<AppState>, viewer: Viewer, Path(ws): Path<String>) -> DashResult {
    links_page(&state, &viewer, &ws, None).await
}

async fn links_page(state: &AppState, viewer: &Viewer, ws: &str, made: Option<String>) -> DashResult {
    let workspace = viewer.workspace(state, ws).await?;
    let links: Vec<LinkView> = state
        .service
        .links(&workspace.id)
        .await?
        .iter()
        .map(|l| LinkView {
            id: l.id.clone(),
            access: l.access.as_str(),
            created_at: rfc3339(l.created_at),
            expires_at: rfc3339(l.expires_at),
        })
        .collect();
    Ok(render(
        state,
        Some(viewer),
        Some(ws),
        "workspaces.html",
        context! { portal => true, workspace => model::Workspace::from(&workspace), links, made },
    ))
}

pub(super) async fn make_link(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(ws): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Fields>,
) -> DashResult {
    let workspace = viewer.changing(&state, &ws, &form).await?;
    let access = match form.get("access").map(String::as_str) {
        Some("manage") => Access::Manage,
        _ => Access::Read,
    };
    let max = state.settings.dashboard.max_link_ttl;
    let ttl = form
        .get("expires_in")
        .and_then(|t| hookd_core::duration::parse(t.trim()).ok())
        .unwrap_or(Duration::from_secs(7 * 24 * 3600))
        .min(max);
    let issued = state
        .service
        .make_link(&viewer.pass, &workspace.id, access, ttl)
        .await?;
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let scheme = if over_tls(&state, &headers) { "https" } else { "http" };
    let made = format!("{scheme}://{host}/portal/{}", issued.token);
    links_page(&state, &viewer, &ws, Some(made)).await
}

pub(super) async fn revoke_link(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(ws): Path<String>,
    Form(form): Form<Fields>,
) -> DashResult {
    let workspace = viewer.changing(&state, &ws, &form).await?;
    let id = form.get("id").map(String::as_str).unwrap_or("");
    state.service.revoke_link(&workspace.id, id).await?;
    Ok(see_other(&format!("/w/{ws}/portal-links")))
}

/// `/portal/{token}`: opens a portal link as a sign-in scoped to its workspace.
pub(super) async fn open_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let ttl = state.settings.dashboard.session_ttl;
    match state.service.open_link(&token, &state.admin_key_hash, ttl).await {
        Ok(Some(issued)) => signed_in(&state, &headers, issued),
        Ok(None) => render_status(
            &state,
            StatusCode::NOT_FOUND,
            None,
            None,
            "error.html",
            context! { status => 404, message => "This portal link is unknown, expired or revoked. Ask for a new one." },
        ),
        Err(err) => DashError::from(err).into_response(),
    }
    .into_response()
}
