//! The routes Retraced's embedded viewer (`@retracedhq/logs-viewer` 2.x) calls, under
//! `/auditlog/viewer/v1` (its `host` prop), from a page on any origin:
//!
//! | route | what |
//! |---|---|
//! | `POST /viewersession` `{"token"}` | a session for a viewer token: `{"project_id", "token"}` |
//! | `POST /graphql[?skipViewLogEvent=true]` | the search ([`super::graphql`]), recorded as `audit.log.view` unless skipped |
//! | `GET /project/{pid}/exports?limit=` | the organization's saved exports, newest first |
//! | `POST /project/{pid}/export` | saves an export (`{"exportBody", "name"}`) → 201 `{id, name}` |
//! | `GET /project/{pid}/export/{id}/rendered` | its CSV (Stele's export CSV), as a download |
//! | `GET /project/{pid}/eitapi_tokens`, `POST …/eitapi_token`, `PUT`/`DELETE …/eitapi_token/{id}` | the organization's API tokens |
//!
//! **Sessions.** The viewer token is a Stele viewer token (`svt_…`, minted by the publisher's
//! `viewertoken` route or `POST /v1/viewer-tokens`); the session token is a viewer session token
//! of the same claims, sent back verbatim as `Authorization` (no scheme). As Retraced's, the
//! session dies with the token it came from: it keeps the opening token's deadline (five minutes
//! after a Retraced viewer token was minted) and is not renewed by use, and the opening token
//! may be exchanged again until then (the viewer exchanges it twice on mount). A request with an
//! ended or unknown session is answered `401 {"status": 401, "type": "Error", "error": "Invalid
//! token"}`: JSON with neither `errors` nor search results, which the viewer takes as the end of
//! its session and calls its `refreshToken` prop (Retraced answers the same body with a 500; a
//! 4xx says what it is).
//!
//! **Scope.** Everything reads and writes the token's organization only, within its fixed
//! filters; `{pid}` must be the platform's id (the `project_id` the session answered).
//!
//! **CORS.** As Retraced's `cors()`: any origin, any method the viewer uses, the headers it asks
//! for, no credentials, and `Content-Disposition` exposed (the CSV's file name). Any origin is
//! safe here because nothing rides on ambient credentials: every request carries its session in
//! `Authorization`, which a page can only have been handed by the platform's backend.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::Json;
use axum::Router;
use axum::body::Bytes;

use super::error::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use stele_core::event::Context;
use stele_service::access::viewer::{self, Claims, Kind, Permission};
use stele_service::retraced::{self, ExportBody, Reader, RequestError};
use stele_store::Organization;
use tower_http::cors::{AllowHeaders, Any, CorsLayer};

use super::error::RetracedError;
use super::graphql::{self, SearchSchema, SearchScope};
use crate::app::client_ip;
use crate::app::state::AppState;

/// Where the viewer's routes are: its `host` prop is `<stele>/auditlog/viewer/v1`.
pub const VIEWER: &str = "/auditlog/viewer/v1";

static SCHEMA: LazyLock<SearchSchema> = LazyLock::new(graphql::schema);

/// The search schema, built once for every door that searches.
pub fn schema() -> &'static SearchSchema {
    &SCHEMA
}

/// The viewer's routes, with Retraced's CORS.
pub fn router() -> Router<AppState> {
    let project = format!("{VIEWER}/project/{{project_id}}");
    Router::new()
        .route(&format!("{VIEWER}/viewersession"), post(create_session))
        .route(&format!("{VIEWER}/graphql"), post(search))
        .route(&format!("{project}/exports"), get(list_exports))
        .route(&format!("{project}/export"), post(create_export))
        .route(
            &format!("{project}/export/{{id}}/rendered"),
            get(render_export),
        )
        .route(&format!("{project}/eitapi_tokens"), get(list_tokens))
        .route(&format!("{project}/eitapi_token"), post(create_token))
        .route(
            &format!("{project}/eitapi_token/{{id}}"),
            put(rename_token).delete(delete_token),
        )
        .layer(cors())
}

fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([header::CONTENT_DISPOSITION])
}

/// The answer to a request whose session has ended, or that has none (module docs).
fn session_ended() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"status": 401, "type": "Error", "error": "Invalid token"})),
    )
        .into_response()
}

/// Who a request comes from, for the entries it records.
fn context_of(parts: &Parts, state: &AppState) -> Context {
    let user_agent = parts
        .headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(512).collect());
    Context {
        ip: client_ip::client_ip(parts, &state.proxies).map(|ip| ip.to_string()),
        user_agent,
        source: Some("web".into()),
        ..Context::default()
    }
}

/// A live viewer session: its claims, its organization, and the request's context.
pub struct Session {
    claims: Claims,
    org: Organization,
    context: Context,
}

impl Session {
    fn reader(&self) -> Reader {
        let mut context = self.context.clone();
        context.api_key_id = Some(self.claims.minted_by.clone());
        Reader::viewer(&self.claims.viewer, context)
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim())
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v))
            .ok_or_else(session_ended)?;
        let now = state.clock.now();
        let claims = viewer::verify(&state.viewer_tokens, token, Kind::Session, now)
            .map_err(|_| session_ended())?;
        let org = state
            .directory
            .resolve(state.store.as_ref(), &claims.org)
            .await
            .map_err(|e| RetracedError::from(e).into_response())?
            // The organization is gone: so is the session.
            .ok_or_else(session_ended)?;
        Ok(Session {
            claims,
            org,
            context: context_of(parts, state),
        })
    }
}

/// `{project_id}` of a path, checked against the platform's id (the session's project).
async fn check_project(state: &AppState, project: &str) -> Result<(), RetracedError> {
    let platform = state.directory.platform(state.store.as_ref()).await?;
    if platform.id == project {
        Ok(())
    } else {
        Err(RetracedError::NotFound(format!(
            "project not found: '{project}'"
        )))
    }
}

fn request_error(e: RequestError) -> RetracedError {
    match e {
        RequestError::Invalid { field, message } => {
            RetracedError::bad_request(format!("{field}: {message}"))
        }
        RequestError::NotFound => RetracedError::NotFound("Not found".into()),
        RequestError::Store(e) => e.into(),
    }
}

/// The body as a JSON object, or Retraced's 400.
fn json_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, RetracedError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(RetracedError::bad_request("the body must be a JSON object")),
    }
}

/// `POST /viewersession {"token"}`: exchanges a viewer token for a session (module docs).
async fn create_session(
    State(state): State<AppState>,
    Body(body): Body,
) -> Result<Json<Value>, Response> {
    let body = json_object(&body).map_err(IntoResponse::into_response)?;
    let token = body
        .get("token")
        .and_then(Value::as_str)
        .ok_or_else(session_ended)?;
    let now = state.clock.now();
    let opening = viewer::verify(&state.viewer_tokens, token, Kind::Open, now)
        .map_err(|_| session_ended())?;
    let platform = state
        .directory
        .platform(state.store.as_ref())
        .await
        .map_err(|e| RetracedError::from(e).into_response())?;
    // The opening token's own deadline, not renewed by use: the session dies with its token.
    let session = Claims {
        kind: Kind::Session,
        ..opening
    };
    Ok(Json(json!({
        "project_id": platform.id,
        "token": viewer::sign(&state.viewer_tokens, &session),
    })))
}

/// `POST /graphql[?skipViewLogEvent=true]`: the search, in the session's organization.
async fn search(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<HashMap<String, String>>,
    Body(body): Body,
) -> Response {
    let skip = query
        .get("skipViewLogEvent")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let scope = SearchScope {
        store: state.store.clone(),
        recorded_as: (!skip).then(|| session.reader()),
        org: session.org,
        project: None,
        fixed: session.claims.filters,
        now: state.clock.now(),
    };
    graphql::execute(&SCHEMA, &body, scope).await
}

/// `GET /project/{pid}/exports?limit=`: the organization's saved exports, newest first.
async fn list_exports(
    State(state): State<AppState>,
    session: Session,
    Path(project): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, RetracedError> {
    check_project(&state, &project).await?;
    let limit = match query
        .get("limit")
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
    {
        None => None,
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| RetracedError::bad_request("limit: must be a whole number"))?,
        ),
    };
    let exports = retraced::saved_exports(state.store.as_ref(), &session.org, limit).await?;
    Ok(Json(Value::Array(
        exports
            .into_iter()
            .map(|e| {
                json!({
                    "id": e.id,
                    "name": e.name,
                    "query": e.query,
                    "created": retraced::view::retraced_time(e.created_at),
                })
            })
            .collect(),
    )))
}

/// A time of the export body: milliseconds, or ISO text (what the viewer's date picker gives).
fn body_time(value: Option<&Value>, field: &str) -> Result<Option<i64>, RetracedError> {
    let bad = || RetracedError::bad_request(format!("exportBody.{field}: must be a time"));
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) => {
            stele_core::time::parse_range_bound(s.trim(), stele_core::time::DayBound::Start)
                .map(Some)
                .ok_or_else(bad)
        }
        Some(_) => Err(bad()),
    }
}

/// `POST /project/{pid}/export {"exportBody", "name"}`: saves an export → 201 `{id, name}`.
async fn create_export(
    State(state): State<AppState>,
    session: Session,
    Path(project): Path<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), RetracedError> {
    check_project(&state, &project).await?;
    if !session.claims.may(Permission::Export) {
        return Err(RetracedError::Forbidden(
            "this viewer may not export".into(),
        ));
    }
    let body = json_object(&body)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RetracedError::bad_request("name: is required"))?;
    let export_body = match body.get("exportBody") {
        Some(Value::Object(b)) => b.clone(),
        _ => return Err(RetracedError::bad_request("exportBody: is required")),
    };
    let flag = |k: &str| export_body.get(k).and_then(Value::as_bool).unwrap_or(false);
    let request = ExportBody {
        search_query: export_body
            .get("searchQuery")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        show_create: flag("showCreate"),
        show_read: flag("showRead"),
        show_update: flag("showUpdate"),
        show_delete: flag("showDelete"),
        start_time: body_time(export_body.get("startTime"), "startTime")?,
        end_time: body_time(export_body.get("endTime"), "endTime")?,
    };
    let saved = retraced::create_saved_export(
        state.store.as_ref(),
        &session.org,
        name,
        &request,
        state.clock.now(),
    )
    .await
    .map_err(request_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": saved.id, "name": saved.name})),
    ))
}

/// `GET /project/{pid}/export/{id}/rendered`: the saved export's entries as Stele's CSV, as a
/// download, recorded as the viewer's export.
async fn render_export(
    State(state): State<AppState>,
    session: Session,
    Path((project, id)): Path<(String, String)>,
) -> Result<Response, RetracedError> {
    check_project(&state, &project).await?;
    if !session.claims.may(Permission::Export) {
        return Err(RetracedError::Forbidden(
            "this viewer may not export".into(),
        ));
    }
    let (_, request) = retraced::saved_export_request(
        state.store.as_ref(),
        &session.org,
        &session.claims.filters,
        &id,
    )
    .await
    .map_err(request_error)?;
    let reader = session.reader();
    Ok(crate::app::download::stream_request(
        &state,
        session.org.key,
        request,
        reader.actor,
        reader.context,
    )
    .await?)
}

/// `GET /project/{pid}/eitapi_tokens`: `[{id, display_name}]`, oldest first.
async fn list_tokens(
    State(state): State<AppState>,
    session: Session,
    Path(project): Path<String>,
) -> Result<Json<Value>, RetracedError> {
    check_project(&state, &project).await?;
    let tokens = retraced::api_tokens(state.store.as_ref(), &session.org).await?;
    Ok(Json(Value::Array(
        tokens
            .into_iter()
            .map(|t| json!({"id": t.id, "display_name": t.display_name}))
            .collect(),
    )))
}

fn display_name(body: &Bytes) -> Result<String, RetracedError> {
    json_object(body)?
        .get("displayName")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| RetracedError::bad_request("displayName: is required"))
}

/// `POST /project/{pid}/eitapi_token {"displayName"}` → 201 `{id, display_name, token}`: the
/// secret `token` is shown this once.
async fn create_token(
    State(state): State<AppState>,
    session: Session,
    Path(project): Path<String>,
    Body(body): Body,
) -> Result<(StatusCode, Json<Value>), RetracedError> {
    check_project(&state, &project).await?;
    let name = display_name(&body)?;
    let (token, secret) = retraced::create_api_token(
        state.store.as_ref(),
        &session.org,
        &name,
        &session.reader(),
        state.clock.now(),
    )
    .await
    .map_err(request_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": token.id, "display_name": token.display_name, "token": secret})),
    ))
}

/// `PUT /project/{pid}/eitapi_token/{id} {"displayName"}`: renames the token.
async fn rename_token(
    State(state): State<AppState>,
    session: Session,
    Path((project, id)): Path<(String, String)>,
    Body(body): Body,
) -> Result<Json<Value>, RetracedError> {
    check_project(&state, &project).await?;
    let name = display_name(&body)?;
    let token = retraced::rename_api_token(
        state.store.as_ref(),
        &session.org,
        &id,
        &name,
        &session.reader(),
        state.clock.now(),
    )
    .await
    .map_err(request_error)?;
    Ok(Json(
        json!({"id": token.id, "display_name": token.display_name}),
    ))
}

/// `DELETE /project/{pid}/eitapi_token/{id}` → 204.
async fn delete_token(
    State(state): State<AppState>,
    session: Session,
    Path((project, id)): Path<(String, String)>,
) -> Result<StatusCode, RetracedError> {
    check_project(&state, &project).await?;
    retraced::delete_api_token(
        state.store.as_ref(),
        &session.org,
        &id,
        &session.reader(),
        state.clock.now(),
    )
    .await
    .map_err(request_error)?;
    Ok(StatusCode::NO_CONTENT)
}
