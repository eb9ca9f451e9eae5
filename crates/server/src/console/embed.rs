//! The embedded audit log: one organization's log, as the console shows it, inside another
//! product's page (an iframe), opened with a viewer token (`stele_service::access::viewer`,
//! minted by `POST /v1/viewer-tokens`). docs/platforms.md has the embed snippet.
//!
//! - `GET /embed/log?token=svt_…&<filters>` opens a session: it records `viewer.session_start`
//!   under the viewer's identity and redirects to the session's page.
//! - `GET /embed/s/{session}/log`, `…/entities/{type}/{id}`, `…/entries/{id}`, `…/export`: the
//!   pages, each carrying a fresh session token in its links (no cookie: a third-party iframe may
//!   have none), with the token's fixed filters always in force.
//! - `GET /embed/s/{session}/theme.css`: the viewer's theme as CSS variables (a stylesheet, so the
//!   page's Content-Security-Policy can stay without inline styles): per field, the token's
//!   `theme`, else the organization's settings' `embed_theme`, else the platform organization's
//!   (the platform's default for every organization), else the page's own look.
//! - A session that has ended answers with a page that asks its parent for a fresh token over
//!   `postMessage` (`{"type": "stele:session-expired"}`; the parent answers
//!   `{"type": "stele:token", "token": "svt_…"}`) and reopens where it was.
//!
//! Only the origins the server allows for every organization (`--embed-origins`) and those the
//! organization allows in its settings (`embed_origins`) may frame these pages
//! (`frame-ancestors`); none by default.

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{DOCTYPE, Markup, html};
use stele_core::time::Millis;
use stele_store::{OrgKey, Organization};

use super::ConsoleError;
use super::auth::Client;
use super::log_page;
use super::render::encode_component;
use super::settings::streams::{self, StreamsDoor};
use super::settings::{DoneQuery, FormPairs, Notice};
use crate::app::state::AppState;
use stele_service::access::viewer::{self, Claims, Kind, Permission, Theme, TokenError};
use stele_service::trail::{self, By, activity};

/// Where the embedded pages live.
pub const EMBED_PATH: &str = "/embed";

/// The embedded viewer's routes, with its own security headers.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/embed/log", get(open_log))
        .route("/embed/streams", get(open_streams))
        .route(
            "/embed/s/{session}/streams",
            get(streams_list).post(streams_create),
        )
        .route("/embed/s/{session}/streams/{id}/pause", post(streams_pause))
        .route(
            "/embed/s/{session}/streams/{id}/resume",
            post(streams_resume),
        )
        .route(
            "/embed/s/{session}/streams/{id}/edit",
            get(streams_edit_page).post(streams_edit),
        )
        .route(
            "/embed/s/{session}/streams/{id}/delete",
            get(streams_confirm_delete).post(streams_delete),
        )
        .route("/embed/s/{session}/log", get(log))
        .route(
            "/embed/s/{session}/entities/{entity_type}/{entity_id}",
            get(history),
        )
        .route("/embed/s/{session}/entries/{id}", get(entry))
        .route("/embed/s/{session}/export", get(export))
        .route("/embed/s/{session}/theme.css", get(theme))
        .route("/embed/assets/embed.js", get(script))
        .layer(middleware::from_fn_with_state(state, embed_headers))
}

/// What a viewer's request gets instead of a page.
#[derive(Debug)]
enum EmbedError {
    /// The token is not valid or its time is over: the page that asks for a new one.
    Ended(TokenError),
    /// Nothing the token may show is here.
    NotFound,
    /// The token does not permit it.
    Refused(&'static str),
    /// The store failed; logged, and said without its cause.
    Failed(String),
}

impl From<stele_store::StoreError> for EmbedError {
    fn from(e: stele_store::StoreError) -> Self {
        EmbedError::Failed(e.to_string())
    }
}

impl From<log_page::LogPageError> for EmbedError {
    fn from(log_page::LogPageError::Store(e): log_page::LogPageError) -> Self {
        e.into()
    }
}

impl IntoResponse for EmbedError {
    fn into_response(self) -> Response {
        match self {
            EmbedError::Ended(reason) => ended(&reason),
            EmbedError::NotFound => notice(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here this view may show.",
            ),
            EmbedError::Refused(message) => notice(StatusCode::FORBIDDEN, "Not allowed", message),
            EmbedError::Failed(cause) => {
                tracing::error!(%cause, "embedded audit log failed");
                notice(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable",
                    "The audit log is unavailable right now; try again shortly.",
                )
            }
        }
    }
}

type Result<T, E = EmbedError> = std::result::Result<T, E>;

/// The session base path that every link of a page carries.
fn base(session: &str) -> String {
    format!("{EMBED_PATH}/s/{session}")
}

/// The claims of a session token in the path.
fn session(state: &AppState, token: &str, now: Millis) -> Result<Claims> {
    viewer::verify(&state.viewer_tokens, token, Kind::Session, now).map_err(EmbedError::Ended)
}

/// The organization a token is for.
async fn organization(state: &AppState, claims: &Claims) -> Result<Organization> {
    state
        .directory
        .resolve(state.store.as_ref(), &claims.org)
        .await?
        // The organization is gone: nothing to show any more.
        .ok_or(EmbedError::Ended(TokenError::BadSignature))
}

/// `GET /embed/log?token=…`: opens a session and goes to its log.
async fn open_log(
    State(state): State<AppState>,
    client: Client,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    open(&state, &client, query, "log").await
}

/// `GET /embed/streams?token=…`: opens a session and goes to the organization's log streams,
/// for a token with the `streams` permission (WorkOS's `log_streams` portal link).
async fn open_streams(
    State(state): State<AppState>,
    client: Client,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    open(&state, &client, query, "streams").await
}

/// Opens a session with the query's opening token and goes to its `page`.
async fn open(
    state: &AppState,
    client: &Client,
    query: Option<String>,
    page: &str,
) -> Result<Response> {
    let params = pairs(query);
    let token = params
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
        .ok_or(EmbedError::Ended(TokenError::Malformed))?;
    let now = state.clock.now();
    let claims =
        viewer::verify(&state.viewer_tokens, token, Kind::Open, now).map_err(EmbedError::Ended)?;
    if page == "streams" && !claims.may(Permission::Streams) {
        return Err(EmbedError::Refused(STREAMS_REFUSED));
    }
    let org = organization(state, &claims).await?;
    let event = activity::viewer_session_started(
        &claims,
        client.ip.map(|ip| ip.to_string()),
        client.user_agent.clone(),
        now,
    );
    trail::record(state.store.as_ref(), org.key, event).await?;
    let session = viewer::sign(&state.viewer_tokens, &claims.session(now));
    let rest: Vec<(String, String)> = params.into_iter().filter(|(k, _)| k != "token").collect();
    Ok(Redirect::to(&with_query(&format!("{}/{page}", base(&session)), &rest)).into_response())
}

/// `GET /embed/s/{session}/log`: the log, or the record's history for a per-record token.
async fn log(
    State(state): State<AppState>,
    Path(session_token): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let now = state.clock.now();
    let claims = session(&state, &session_token, now)?;
    if let Some((t, id)) = claims.filters.record() {
        let (t, id) = (t.to_string(), id.to_string());
        return render_history(&state, &claims, &t, &id, pairs(query), now).await;
    }
    let org = organization(&state, &claims).await?;
    let params = claims.filters.apply(&pairs(query));
    let fresh = viewer::sign(&state.viewer_tokens, &claims.session(now));
    let body = log_page::audit_log(
        state.store.as_ref(),
        org.key,
        &params,
        now,
        &base(&fresh),
        Some(&claims.filters),
    )
    .await?;
    let theme = theme_of(&state, &claims, org.key).await;
    Ok(page(&claims, &theme, &fresh, "Audit log", body))
}

/// `GET /embed/s/{session}/entities/{type}/{id}`: one record's history, within the fixed filters.
async fn history(
    State(state): State<AppState>,
    Path((session_token, entity_type, entity_id)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let now = state.clock.now();
    let claims = session(&state, &session_token, now)?;
    if claims
        .filters
        .record()
        .is_some_and(|record| record != (entity_type.as_str(), entity_id.as_str()))
    {
        return Err(EmbedError::NotFound);
    }
    render_history(&state, &claims, &entity_type, &entity_id, pairs(query), now).await
}

async fn render_history(
    state: &AppState,
    claims: &Claims,
    entity_type: &str,
    entity_id: &str,
    params: Vec<(String, String)>,
    now: Millis,
) -> Result<Response> {
    let org = organization(state, claims).await?;
    let params = claims.filters.apply(&params);
    let fresh = viewer::sign(&state.viewer_tokens, &claims.session(now));
    let body = log_page::entity_history(
        state.store.as_ref(),
        org.key,
        (entity_type, entity_id),
        &params,
        now,
        &base(&fresh),
        Some(&claims.filters),
    )
    .await?;
    let theme = theme_of(state, claims, org.key).await;
    Ok(page(claims, &theme, &fresh, "History", body))
}

/// `GET /embed/s/{session}/entries/{id}`: one entry, if the fixed filters let the viewer see it.
async fn entry(
    State(state): State<AppState>,
    Path((session_token, id)): Path<(String, String)>,
) -> Result<Response> {
    let now = state.clock.now();
    let claims = session(&state, &session_token, now)?;
    let org = organization(&state, &claims).await?;
    let store = state.store.as_ref();
    let entry = store
        .get(org.key, &id)
        .await?
        .filter(|entry| claims.filters.admits(entry))
        .ok_or(EmbedError::NotFound)?;
    let fresh = viewer::sign(&state.viewer_tokens, &claims.session(now));
    let body = log_page::entry_details_page(
        store,
        org.key,
        &entry,
        now,
        &base(&fresh),
        Some(&claims.filters),
    )
    .await?;
    let theme = theme_of(&state, &claims, org.key).await;
    Ok(page(&claims, &theme, &fresh, "Entry", body))
}

/// `GET /embed/s/{session}/export?format=…&<filters>`: the view's entries, for a token with the
/// `export` permission, recorded as the viewer's export.
async fn export(
    State(state): State<AppState>,
    Path(session_token): Path<String>,
    client: Client,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let now = state.clock.now();
    let claims = session(&state, &session_token, now)?;
    if !claims.may(Permission::Export) {
        return Err(EmbedError::Refused("This view may not export."));
    }
    let org = organization(&state, &claims).await?;
    let params = claims.filters.apply(&pairs(query));
    let By { actor, context, .. } = viewer_by(&claims, &client);
    // A refused parameter or a failure before the first byte is the API's JSON error, as the
    // console's export answers it.
    Ok(
        match crate::app::download::stream(&state, org.key, &params, actor, context).await {
            Ok(response) => response,
            Err(e) => e.into_response(),
        },
    )
}

/// Who the viewer is, for what they do: a user named as the token names them, from the key that
/// minted it.
fn viewer_by(claims: &Claims, client: &Client) -> By {
    let actor = stele_core::Actor {
        kind: stele_core::ActorType::User,
        id: Some(claims.viewer.id.clone()),
        name: claims.viewer.name.clone(),
        email: claims.viewer.email.clone(),
        href: None,
        metadata: Default::default(),
        original_type: None,
    };
    let mut context = client.context();
    context.api_key_id = Some(claims.minted_by.clone());
    By::new(actor, context)
}

const STREAMS_REFUSED: &str = "This view may not manage log streams.";

/// The stream pages of a session whose token has the `streams` permission
/// (`crate::console::settings::streams`, the console's own pages, framed for the iframe); each
/// change is recorded as the viewer's.
async fn streams_door(
    state: &AppState,
    session_token: &str,
    client: &Client,
) -> Result<StreamsDoor> {
    let now = state.clock.now();
    let claims = session(state, session_token, now)?;
    if !claims.may(Permission::Streams) {
        return Err(EmbedError::Refused(STREAMS_REFUSED));
    }
    let org = organization(state, &claims).await?;
    let theme = theme_of(state, &claims, org.key).await;
    let fresh = viewer::sign(&state.viewer_tokens, &claims.session(now));
    let by = viewer_by(&claims, client);
    let base_path = format!("{}/streams", base(&fresh));
    Ok(StreamsDoor {
        org: org.key,
        by,
        base: base_path,
        hidden: html! {},
        pause_reason: "paused in the embedded log streams page",
        frame: Box::new(move |title, notice, body| {
            let body = html! {
                @match notice {
                    Some(Notice::Done(message)) => p.notice-done role="status" { (message) },
                    Some(Notice::Refused(message)) => p.error role="alert" { (message) },
                    None => {},
                }
                (body)
            };
            page_markup(&claims, &theme, &fresh, title, body)
        }),
    })
}

impl From<ConsoleError> for EmbedError {
    fn from(e: ConsoleError) -> Self {
        EmbedError::Failed(format!("{e:?}"))
    }
}

/// `GET /embed/s/{session}/streams`.
async fn streams_list(
    State(state): State<AppState>,
    Path(session_token): Path<String>,
    client: Client,
    Query(query): Query<DoneQuery>,
) -> Result<Response> {
    let door = streams_door(&state, &session_token, &client).await?;
    Ok(streams::list_page(&state, &door, query).await?)
}

/// `POST /embed/s/{session}/streams`: creates a stream; its secret is shown once.
async fn streams_create(
    State(state): State<AppState>,
    Path(session_token): Path<String>,
    client: Client,
    Form(form): Form<FormPairs>,
) -> Result<Response> {
    let door = streams_door(&state, &session_token, &client).await?;
    Ok(streams::create_stream(&state, &door, &form).await?)
}

/// `POST /embed/s/{session}/streams/{id}/pause`.
async fn streams_pause(
    State(state): State<AppState>,
    Path((session_token, id)): Path<(String, String)>,
    client: Client,
) -> Result<Response> {
    let door = streams_door(&state, &session_token, &client).await?;
    Ok(streams::pause_or_resume(&state, &door, &id, true).await?)
}

/// `POST /embed/s/{session}/streams/{id}/resume`.
async fn streams_resume(
    State(state): State<AppState>,
    Path((session_token, id)): Path<(String, String)>,
    client: Client,
) -> Result<Response> {
    let door = streams_door(&state, &session_token, &client).await?;
    Ok(streams::pause_or_resume(&state, &door, &id, false).await?)
}

/// `GET /embed/s/{session}/streams/{id}/edit`.
async fn streams_edit_page(
    State(state): State<AppState>,
    Path((session_token, id)): Path<(String, String)>,
    client: Client,
) -> Result<Response> {
    let door = streams_door(&state, &session_token, &client).await?;
    Ok(streams::edit_page(&state, &door, &id).await?)
}

/// `POST /embed/s/{session}/streams/{id}/edit`.
async fn streams_edit(
    State(state): State<AppState>,
    Path((session_token, id)): Path<(String, String)>,
    client: Client,
    Form(form): Form<FormPairs>,
) -> Result<Response> {
    let door = streams_door(&state, &session_token, &client).await?;
    Ok(streams::edit_stream(&state, &door, &id, &form).await?)
}

/// `GET /embed/s/{session}/streams/{id}/delete`: asks to confirm.
async fn streams_confirm_delete(
    State(state): State<AppState>,
    Path((session_token, id)): Path<(String, String)>,
    client: Client,
) -> Result<Response> {
    let door = streams_door(&state, &session_token, &client).await?;
    Ok(streams::confirm_delete_page(&state, &door, &id).await?)
}

/// `POST /embed/s/{session}/streams/{id}/delete`.
async fn streams_delete(
    State(state): State<AppState>,
    Path((session_token, id)): Path<(String, String)>,
    client: Client,
) -> Result<Response> {
    let door = streams_door(&state, &session_token, &client).await?;
    Ok(streams::delete_stream(&state, &door, &id).await?)
}

/// The theme a viewer sees: per field, the token's, else the organization's settings', else the
/// platform organization's. Both settings come from the settings cache, so a page pays no
/// database read for them. The theme is only looks: settings that cannot be read leave the
/// token's theme alone (logged) rather than failing the page.
async fn theme_of(state: &AppState, claims: &Claims, org: OrgKey) -> Theme {
    let settings_theme = async |key: OrgKey| match state.policies.get(key).await {
        // Checked again because it goes into a stylesheet unescaped: a value edited into the
        // database by hand, past the API's checks, must not become CSS.
        Ok(policy) => match viewer::check_theme("embed_theme", &policy.settings.embed_theme) {
            Ok(()) => policy.settings.embed_theme.clone(),
            Err(problem) => {
                tracing::error!(%problem, "embedded viewer: a stored theme is not valid; ignored");
                Theme::default()
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "embedded viewer: settings unreadable; theme defaults");
            Theme::default()
        }
    };
    let own = settings_theme(org).await;
    let platform = match state.directory.platform(state.store.as_ref()).await {
        Ok(platform) if platform.key != org => settings_theme(platform.key).await,
        Ok(_) => Theme::default(),
        Err(e) => {
            tracing::warn!(error = %e, "embedded viewer: no platform organization; theme defaults");
            Theme::default()
        }
    };
    claims.theme.or(&own).or(&platform)
}

/// `GET /embed/s/{session}/theme.css`: the viewer's theme ([`theme_of`]; values checked when the
/// token was minted or the settings saved).
async fn theme(State(state): State<AppState>, Path(session_token): Path<String>) -> Response {
    // An ended session still gets its look: the page asking for a new token is themed too.
    let Ok(claims) = viewer::verify(
        &state.viewer_tokens,
        &session_token,
        Kind::Session,
        Millis::MIN,
    ) else {
        return css(String::new());
    };
    let t = match organization(&state, &claims).await {
        Ok(org) => theme_of(&state, &claims, org.key).await,
        Err(_) => claims.theme.clone(),
    };
    let mut out = String::from(":root {\n");
    if let Some(accent) = &t.accent {
        out += &format!("  --accent: {accent};\n");
    }
    if let Some(font) = &t.font {
        out += &format!("  --font: {font};\n");
    }
    if let Some(radius) = t.radius {
        out += &format!("  --radius: {radius}px;\n");
    }
    out += "}\n";
    match t.mode.as_deref() {
        Some("dark") => out += "html { color-scheme: dark; }\n",
        Some("light") => out += "html { color-scheme: light; }\n",
        _ => out += "html { color-scheme: light dark; }\n",
    }
    css(out)
}

fn css(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], body).into_response()
}

/// The refresh handshake and the log page's own behaviour.
async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        EMBED_JS,
    )
        .into_response()
}

const EMBED_JS: &str = include_str!("assets/embed.js");

/// A page of the viewer in `theme` ([`theme_of`]): no console header, sized for an iframe.
fn page(claims: &Claims, theme: &Theme, session: &str, title: &str, body: Markup) -> Response {
    (
        StatusCode::OK,
        page_markup(claims, theme, session, title, body),
    )
        .into_response()
}

fn page_markup(claims: &Claims, theme: &Theme, session: &str, title: &str, body: Markup) -> Markup {
    let mode = theme.mode.as_deref().unwrap_or("auto");
    html! {
        (DOCTYPE)
        html lang="en" data-theme=(mode) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Audit log" }
                link rel="stylesheet" href="/console/assets/console.css";
                link rel="stylesheet" href=(format!("{}/theme.css", base(session)));
                script src="/console/assets/console.js" defer {}
                script src="/embed/assets/embed.js" defer {}
            }
            // A per-record view (one record's history, fixed by the token) is compact: no filter
            // bar or chart, as a record's log under the record in the vendor's page.
            body.embedded.compact[claims.filters.record().is_some()] {
                main.embedded-main {
                    // A viewer who may manage streams goes between the two views.
                    @if claims.may(Permission::Streams) {
                        nav.settings-tabs.embedded-tabs aria-label="Views" {
                            @for (path, label) in [("log", "Audit log"), ("streams", "Log streams")] {
                                @if title_is(title, path) {
                                    a.current href=(format!("{}/{path}", base(session))) aria-current="page" { (label) }
                                } @else {
                                    a href=(format!("{}/{path}", base(session))) { (label) }
                                }
                            }
                        }
                    }
                    (body)
                }
            }
        }
    }
}

/// Whether a page of this title belongs to the view at `path` (`log` or `streams`), for the tabs.
fn title_is(title: &str, path: &str) -> bool {
    let streams = title.to_ascii_lowercase().contains("stream");
    (path == "streams") == streams
}

/// The answer of a session that has ended (or a token that is not valid): a page that asks the
/// embedding page for a new token and reopens the same view with it.
fn ended(reason: &TokenError) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Session ended · Audit log" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/embed/assets/embed.js" defer {}
            }
            body.embedded data-stele-session="ended" {
                main.embedded-main {
                    section.notice {
                        h1 { "This view has ended" }
                        p { (reason.to_string()) ". Asking the page for a new one…" }
                    }
                }
            }
        }
    };
    (StatusCode::UNAUTHORIZED, markup).into_response()
}

fn notice(status: StatusCode, title: &str, message: &str) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Audit log" }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body.embedded {
                main.embedded-main {
                    section.notice { h1 { (title) } p { (message) } }
                }
            }
        }
    };
    (status, markup).into_response()
}

/// The query string as pairs.
fn pairs(query: Option<String>) -> Vec<(String, String)> {
    query
        .as_deref()
        .map(super::render::decode_query)
        .unwrap_or_default()
}

fn with_query(path: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// Headers of every embedded page: framing only by the allowed origins (the server's, and the
/// organization's own when the request carries its token), no referrer (the links carry the
/// session), nothing cached.
async fn embed_headers(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    let org_origins = organization_origins(&state, request.uri()).await;
    let mut response = next.run(request).await;
    let mut origins: Vec<&str> = state.embed_origins.iter().map(String::as_str).collect();
    for origin in &org_origins {
        if !origins.contains(&origin.as_str()) {
            origins.push(origin);
        }
    }
    let ancestors = if origins.is_empty() {
        "'none'".to_string()
    } else {
        origins.join(" ")
    };
    let policy = format!(
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
    );
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The origins the organization of the request's viewer token allows to frame its log (its
/// settings' `embed_origins`), read from the token in the path (a session's) or the query (an
/// opening token's), whether or not it is still valid: a refusal page is framed as its view was.
async fn organization_origins(state: &AppState, uri: &axum::http::Uri) -> Vec<String> {
    let token = match uri.path().strip_prefix("/embed/s/") {
        Some(rest) => rest.split('/').next().map(str::to_string),
        None => pairs(uri.query().map(str::to_string))
            .into_iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v),
    };
    let Some(token) = token else {
        return Vec::new();
    };
    let claims = viewer::verify(&state.viewer_tokens, &token, Kind::Session, Millis::MIN)
        .or_else(|_| viewer::verify(&state.viewer_tokens, &token, Kind::Open, Millis::MIN));
    let Ok(claims) = claims else {
        return Vec::new();
    };
    let Ok(Some(org)) = state
        .directory
        .resolve(state.store.as_ref(), &claims.org)
        .await
    else {
        return Vec::new();
    };
    match state.policies.get(org.key).await {
        Ok(policy) => policy.settings.embed_origins.clone(),
        Err(_) => Vec::new(),
    }
}
