//! The web console: server-rendered HTML (maud) from the same binary, under `/console`.
//!
//! This module holds the console's router, the page layout every page shares, its static assets
//! (compiled into the binary; no CDN) and the signed-in landing page. Sign-in, sessions, CSRF and
//! the [`ConsoleUser`] extractor are in [`auth`]; who may do what is in [`roles`]; the log page
//! in [`log_page`], one entry's page and the record of reading it in [`entry_page`], and the
//! settings pages in [`settings`].
//!
//! Rules every console page follows:
//! - Values from events and members are interpolated by maud, which escapes them; nothing builds
//!   HTML from strings by hand (`PreEscaped` only for markup this code wrote itself).
//! - No inline script or style: the Content-Security-Policy below allows only `/console/assets`.
//! - Every state-changing request carries the CSRF token (a hidden `csrf` field on forms, an
//!   `X-CSRF-Token` header on fetches); a layer refuses any that does not, so a new handler cannot
//!   forget it.
//! - Reading works with JavaScript off.

pub mod auth;
pub mod embed;
pub mod entry_page;
pub mod log_page;
pub mod password_page;
pub mod print_log_page;
mod rate_limit;
pub mod render;
pub mod settings;
pub mod state;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use axum::http::{HeaderName, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use stele_store::StoreError;

pub use auth::{ConsoleUser, PermissionDenied};
pub use rate_limit::{Blocked, Limits};
pub use state::ConsoleState;
use stele_service::access::roles::Permission;

use crate::app::state::AppState;

/// The console's routes, with the CSRF guard and the security headers on every one of them.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(audit_log))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/log", get(audit_log))
        .route(
            "/console/entities/{entity_type}/{entity_id}",
            get(entity_history),
        )
        .route("/console/export", get(export))
        .route("/console/entries/{id}", get(entry_page::show))
        .route("/console/entries/{id}/view", post(entry_page::viewed))
        .route(
            settings::SETTINGS_PATH,
            get(settings::org::show).post(settings::org::save),
        )
        .route(
            settings::KEYS_PATH,
            get(settings::keys::list).post(settings::keys::create),
        )
        .route(
            "/console/settings/keys/{id}/revoke",
            get(settings::keys::confirm_revoke).post(settings::keys::revoke),
        )
        .route(
            settings::MEMBERS_PATH,
            get(settings::members::list).post(settings::members::add),
        )
        .route(
            "/console/settings/members/{id}/role",
            post(settings::members::change_role),
        )
        .route(
            settings::STREAMS_PATH,
            get(settings::streams::list).post(settings::streams::create),
        )
        .route(
            "/console/settings/streams/{id}/pause",
            post(settings::streams::pause),
        )
        .route(
            "/console/settings/streams/{id}/resume",
            post(settings::streams::resume),
        )
        .route(
            "/console/settings/streams/{id}/edit",
            get(settings::streams::edit_form_page).post(settings::streams::edit),
        )
        .route(
            "/console/settings/streams/{id}/delete",
            get(settings::streams::confirm_delete).post(settings::streams::delete),
        )
        .route("/console/print-log", get(print_log_page::show))
        .route("/console/print-log/clear", post(print_log_page::clear))
        .route("/console/print-log/{id}", post(print_log_page::classify))
        .route(
            "/console/print-log/{id}/delete",
            post(print_log_page::delete),
        )
        .route(auth::LOGIN_PATH, get(auth::login_page).post(auth::login))
        .route(
            password_page::SET_PASSWORD_PATH,
            get(password_page::show).post(password_page::set),
        )
        .route("/console/logout", post(auth::logout))
        .route(auth::SWITCH_PATH, post(auth::switch_organization))
        .route("/console/assets/console.css", get(stylesheet))
        .route("/console/assets/console.js", get(script))
        // Any other console address is a page too, not the API's JSON 404.
        .route("/console/{*rest}", get(unknown_page).post(unknown_page))
        .layer(middleware::from_fn_with_state(state, auth::csrf_guard))
        .layer(middleware::map_response(security_headers))
}

/// The page every console page is: the header (Stele, the organization, with a switcher for a
/// person of several organizations, a Settings link for a member who may open a settings page,
/// the signed-in member and Sign out) and `body` under it. `user` is `None` on the sign-in page.
pub fn layout(title: &str, user: Option<&ConsoleUser>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(user) = user {
                    // For fetches that change something: console.js sends it as X-CSRF-Token.
                    meta name="csrf-token" content=(user.csrf_token);
                }
                title { (title) " · Stele" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/console" { "Stele" }
                    @if let Some(user) = user {
                        @if user.other_organizations.is_empty() {
                            span.org title=(user.org_id) { (user.org_name) }
                        } @else {
                            // A disclosure, so it works without JavaScript: one POST form whose
                            // buttons each name a membership of the person's.
                            details.org-switch {
                                summary.org title=(user.org_id) { (user.org_name) }
                                form.org-menu method="post" action=(auth::SWITCH_PATH) {
                                    input type="hidden" name=(auth::CSRF_FIELD) value=(user.csrf_token);
                                    span.org-menu-label { "Switch to" }
                                    @for other in &user.other_organizations {
                                        button type="submit" name="member" value=(other.member_id)
                                            title=(other.org_id) { (other.org_name) }
                                    }
                                }
                            }
                        }
                        @if user.can(Permission::AuditLogView) {
                            a.nav-link href="/console" { "Audit log" }
                        }
                        @if user.can(Permission::PrintlogView) {
                            a.nav-link href="/console/print-log" { "Print log" }
                        }
                        @if let Some(href) = settings::home(user) {
                            a.settings-link href=(href) { "Settings" }
                        }
                        span.spacer {}
                        span.who {
                            span.name { (user.display_name()) }
                            @if user.name.is_some() {
                                " " span.email { (user.email) }
                            }
                            " " span.role { (user.role) }
                        }
                        form.signout method="post" action="/console/logout" {
                            input type="hidden" name=(auth::CSRF_FIELD) value=(user.csrf_token);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// An HTML page with a status.
pub fn page(status: StatusCode, markup: Markup) -> Response {
    (status, markup).into_response()
}

/// A console address that names no page: an HTML 404 with a way back.
async fn unknown_page() -> Response {
    page(
        StatusCode::NOT_FOUND,
        layout(
            "No such page",
            None,
            html! {
                section.notice {
                    h1 { "No such page" }
                    p { "The console has no page at this address." }
                    p { a href=(BASE_PATH) { "Go to the audit log" } }
                }
            },
        ),
    )
}

/// Where the console's pages live; the log page builds its links under it.
const BASE_PATH: &str = "/console";

/// `GET /console` (and `/console/log`): the audit log page, with every filter in the URL.
async fn audit_log(
    State(state): State<AppState>,
    user: ConsoleUser,
    query: RawQuery,
) -> Result<Markup, PageError> {
    user.require(Permission::AuditLogView)?;
    let params = query_pairs(query);
    let body = log_page::audit_log(
        state.store.as_ref(),
        user.org,
        &params,
        state.clock.now(),
        BASE_PATH,
        None,
    )
    .await
    .map_err(|log_page::LogPageError::Store(e)| ConsoleError::from(e))?;
    // From the settings cache ingest reads too, so the banner says what ingest does.
    let recording = state
        .policies
        .recording_enabled(user.org)
        .await
        .map_err(ConsoleError::from)?;
    let settings_href = user
        .can(Permission::AuditLogsConfigure)
        .then_some(settings::SETTINGS_PATH);
    let body = html! {
        @if !recording { (log_page::recording_off_banner(settings_href)) }
        (body)
    };
    Ok(layout("Audit log", Some(&user), body))
}

/// `GET /console/entities/{type}/{id}`: every entry of one record (its history).
async fn entity_history(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((entity_type, entity_id)): Path<(String, String)>,
    query: RawQuery,
) -> Result<Markup, PageError> {
    user.require(Permission::AuditLogView)?;
    let params = query_pairs(query);
    let body = log_page::entity_history(
        state.store.as_ref(),
        user.org,
        (&entity_type, &entity_id),
        &params,
        state.clock.now(),
        BASE_PATH,
        None,
    )
    .await
    .map_err(|log_page::LogPageError::Store(e)| ConsoleError::from(e))?;
    Ok(layout(
        &format!("History of {entity_type} {entity_id}"),
        Some(&user),
        body,
    ))
}

/// `GET /console/export?format=csv&<filters>`: the Export buttons, exactly the current view, as
/// the member (who needs `audit.log.export`); recorded in the trail like every export.
async fn export(
    State(state): State<AppState>,
    user: ConsoleUser,
    client: auth::Client,
    query: RawQuery,
) -> Result<Response, PageError> {
    user.require(Permission::AuditLogExport)?;
    let params = query_pairs(query);
    let actor = stele_service::trail::activity::member_actor(user.who());
    crate::app::download::stream(&state, user.org, &params, actor, client.context())
        .await
        .map_err(PageError::Export)
}

/// The query string as pairs, in order (repeated names kept, as the actor type checkboxes send).
fn query_pairs(RawQuery(query): RawQuery) -> Vec<(String, String)> {
    query
        .as_deref()
        .map(render::decode_query)
        .unwrap_or_default()
}

/// What a console page can answer instead of itself.
#[derive(Debug)]
pub enum PageError {
    Denied(PermissionDenied),
    Failed(ConsoleError),
    /// The export refused its parameters or failed before the first byte: the API's JSON error.
    Export(crate::api::error::ApiError),
}

impl From<PermissionDenied> for PageError {
    fn from(e: PermissionDenied) -> Self {
        PageError::Denied(e)
    }
}

impl From<ConsoleError> for PageError {
    fn from(e: ConsoleError) -> Self {
        PageError::Failed(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Denied(e) => e.into_response(),
            PageError::Failed(e) => e.into_response(),
            PageError::Export(e) => e.into_response(),
        }
    }
}

/// An error on a console page, shown as a page (the API's JSON errors are for programs).
#[derive(Debug)]
pub enum ConsoleError {
    Unavailable,
    Internal(String),
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) | StoreError::CleanupPending(m) => {
                tracing::warn!(cause = %m, "storage unavailable");
                ConsoleError::Unavailable
            }
            other => ConsoleError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            ConsoleError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "Stele cannot reach its database right now. Try again in a moment.",
            ),
            ConsoleError::Internal(cause) => {
                tracing::error!(%cause, "internal error on a console page");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error",
                    "Something went wrong on Stele's side. The server log has the details.",
                )
            }
        };
        page(
            status,
            layout(
                title,
                None,
                html! { section.notice { h1 { (title) } p { (message) } } },
            ),
        )
    }
}

const STYLESHEET: &str = concat!(
    include_str!("assets/console.css"),
    "\n",
    include_str!("assets/log.css"),
    "\n",
    include_str!("assets/settings.css"),
    "\n",
    include_str!("assets/print_log.css"),
    "\n",
    include_str!("assets/embed.css")
);
const SCRIPT: &str = concat!(
    include_str!("assets/console.js"),
    "\n",
    include_str!("assets/log.js"),
    "\n",
    include_str!("assets/view.js"),
    "\n",
    include_str!("assets/print_log.js")
);

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            // Short: the assets change with the binary, and they carry no version in their URL.
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Headers on every console response: only our own assets may load (no inline script or style),
/// no framing (clickjacking of the sign-in form), no referrer leaving the site, and pages with a
/// member's data are not cached.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: &'static str, value: &'static str| {
        headers
            .entry(HeaderName::from_static(name))
            .or_insert(HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    set(headers, "x-frame-options", "DENY");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "same-origin");
    set(headers, "cache-control", "no-store");
    response
}
