//! API key authentication: `Authorization: Bearer <key>`, or `X-API-Key: <key>` as clients of
//! the print log API send it (docs/print-log.md), resolves to the key's organization and scopes.
//! Every handler that touches data takes an [`Authenticated`] (or, on ingest, an [`IngestKey`]) and
//! checks its scope, so no request can reach another organization's data.
//!
//! A platform key belongs to the platform's own organization and acts for the tenant organization
//! its request names in the `Stele-Organization` header (an id `org_…` or an external id); the
//! extractors put that organization in the key's place (`key.org`, `key.org_id`), so every
//! handler serves it as it would serve an organization key's. Without the header a platform key
//! reads the platform's own trail; on ingest, whose events never go there, each event must then
//! name its organization itself (`organization`, checked by `api::events`). An organization key
//! may send the header only to name its own organization.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::HeaderName;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use stele_core::{Actor, Context};
use stele_store::{ApiKeyInfo, OrgKey, Scope};

use super::AppState;
use super::error::ApiError;
use stele_service::access::api_keys;
use stele_service::access::org_policy::Attempt;
use stele_service::access::viewer::{self, Claims, Permission as ViewerPermission};
use stele_service::organizations::{OrgError, check_external_id};

use crate::app::client_ip;
use crate::app::request_log::note_caller;

/// The header Bambuddy's API clients send their key in.
const API_KEY_HEADER: &str = "x-api-key";

/// The header a platform key names the organization it acts for in.
pub const ORGANIZATION_HEADER: &str = "stele-organization";
/// How errors name that header.
const ORGANIZATION_FIELD: &str = "Stele-Organization";

/// An API key on an endpoint that reads the trail or changes the organization: every endpoint
/// but ingest. The organization's IP allowlist applies (a refusal is a 403 `ip_not_allowed`, and
/// is recorded); [`IngestKey`] is the one way around it.
pub struct Authenticated {
    pub key: ApiKeyInfo,
    /// The client's address (`crate::app::client_ip::client_ip`).
    pub client_ip: Option<IpAddr>,
}

impl Authenticated {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        require(&self.key, scope)
    }

    /// The key as the actor of an entry Stele records about this request, and the request's
    /// context (the key's id, source `api`, the client's address).
    pub fn actor(&self) -> (Actor, Context) {
        actor_of(&self.key, self.client_ip)
    }
}

/// An API key on an ingest endpoint. The IP allowlist does not apply: it guards reading the trail,
/// and applications send their events from wherever they run.
pub struct IngestKey {
    pub key: ApiKeyInfo,
    /// The client's address (`crate::app::client_ip::client_ip`).
    pub client_ip: Option<IpAddr>,
    /// Whether `key.org` is a tenant organization the events may go to: always for an
    /// organization's key; for a platform key, when the request named one in the
    /// `Stele-Organization` header. Otherwise `key.org` is the platform's own organization, whose
    /// trail takes no sent events, and every event must name its organization.
    pub acts_for_tenant: bool,
    /// The header's reference when no organization has it yet and the server creates
    /// organizations on ingest: the handler creates it once every event is known to be good (so
    /// a refused batch creates nothing), and the events that name none go there.
    pub pending_organization: Option<String>,
}

impl IngestKey {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        require(&self.key, scope)
    }

    /// The key as the actor of an entry Stele records about this request (an organization it
    /// creates), and the request's context.
    pub fn actor(&self) -> (Actor, Context) {
        actor_of(&self.key, self.client_ip)
    }
}

fn require(key: &ApiKeyInfo, scope: Scope) -> Result<(), ApiError> {
    if key.has_scope(scope) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "this API key lacks the `{}` scope",
            scope.as_str()
        )))
    }
}

fn actor_of(key: &ApiKeyInfo, ip: Option<IpAddr>) -> (Actor, Context) {
    let (actor, mut context) = api_keys::actor_of(key);
    context.ip = ip.map(|ip| ip.to_string());
    (actor, context)
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client_ip = client_ip::client_ip(parts, &state.proxies);
        let key = acting_for(parts, state, api_key(parts, state).await?).await?;
        admit(
            state,
            key,
            client_ip,
            parts.method.as_str(),
            parts.uri.path(),
        )
        .await
    }
}

/// The key, acting for its organization, as the organization's IP allowlist admits it (a refusal
/// is recorded by the policy).
pub(crate) async fn admit(
    state: &AppState,
    key: ApiKeyInfo,
    client_ip: Option<IpAddr>,
    method: &str,
    path: &str,
) -> Result<Authenticated, ApiError> {
    let (actor, context) = actor_of(&key, client_ip);
    state
        .policies
        .admit(
            key.org,
            client_ip,
            Attempt {
                actor,
                context,
                method,
                path,
            },
        )
        .await?;
    Ok(Authenticated { key, client_ip })
}

/// An [`Authenticated`] for a door that names the organization in the request's path or body
/// instead of the `Stele-Organization` header (the WorkOS door's `organization_id`): `key` acting
/// for the organization `reference` names, as [`act_for`] allows, admitted by that
/// organization's IP allowlist as the extractor admits a request. `field` names where the request
/// named it.
pub(crate) async fn authenticate_for(
    state: &AppState,
    key: ApiKeyInfo,
    client_ip: Option<IpAddr>,
    reference: &str,
    field: &'static str,
    request: (&str, &str),
) -> Result<Authenticated, ApiError> {
    let key = act_for(state, key, reference, field).await?;
    let (method, path) = request;
    admit(state, key, client_ip, method, path).await
}

impl FromRequestParts<AppState> for IngestKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client_ip = client_ip::client_ip(parts, &state.proxies);
        let key = api_key(parts, state).await?;
        let named = header_reference(parts)?;
        let (key, pending_organization) = match acting_for(parts, state, key.clone()).await {
            Ok(key) => (key, None),
            // An organization the header names for the first time: made by the handler after
            // the events are checked, when the server allows it.
            Err(ApiError::NotFoundField { .. })
                if key.platform
                    && state.auto_create_organizations
                    // An organization id that names none is not a new tenant: the 404 stands.
                    && !named.as_deref().is_some_and(stele_store::is_org_id) =>
            {
                let reference = named;
                if let Some(reference) = &reference {
                    check_external_id(reference).map_err(|e| match e {
                        OrgError::Invalid { message, .. } => {
                            ApiError::field("invalid_header", ORGANIZATION_FIELD, message)
                        }
                        other => org_error(other),
                    })?;
                }
                (key, reference)
            }
            Err(e) => return Err(e),
        };
        // Not refused here: a platform key may name each event's organization in the body
        // instead, which only the handler reads (it names the events that name none).
        let acts_for_tenant = !key.platform
            || pending_organization.is_some()
            || state.directory.platform(state.store.as_ref()).await?.key != key.org;
        Ok(IngestKey {
            key,
            client_ip,
            acts_for_tenant,
            pending_organization,
        })
    }
}

/// Who reads the trail on the read endpoints a browser may call (`GET /v1/events`,
/// `/v1/events/{id}`, `/v1/facets`, `/v1/export`): an API key, or a viewer token
/// (`svt_…`, `POST /v1/viewer-tokens`) that a vendor's own page sends as its bearer token. A
/// viewer sees its organization within the token's fixed filters, reads, and exports only when
/// the token permits; it is no API key anywhere else. The IP allowlist applies to keys: a viewer
/// token is the grant of the platform or admin that minted it, for people wherever they are.
pub enum Reader {
    Key(Authenticated),
    Viewer { claims: Claims, org: OrgKey },
}

impl Reader {
    /// The organization read.
    pub fn org(&self) -> OrgKey {
        match self {
            Reader::Key(auth) => auth.key.org,
            Reader::Viewer { org, .. } => *org,
        }
    }

    /// `read` and `export` for a viewer as its token permits; nothing else.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        match self {
            Reader::Key(auth) => auth.require(scope),
            Reader::Viewer { claims, .. } => {
                let allowed = match scope {
                    Scope::Read => true,
                    Scope::Export => claims.may(ViewerPermission::Export),
                    _ => false,
                };
                if allowed {
                    Ok(())
                } else {
                    Err(ApiError::Forbidden(format!(
                        "this viewer token does not permit `{}`",
                        scope.as_str()
                    )))
                }
            }
        }
    }

    /// The query parameters with a viewer's fixed filters in force.
    pub fn params(&self, params: Vec<(String, String)>) -> Vec<(String, String)> {
        match self {
            Reader::Key(_) => params,
            Reader::Viewer { claims, .. } => claims.filters.apply(&params),
        }
    }

    /// Whether the reader may see this entry (a viewer: within its fixed filters).
    pub fn admits(&self, entry: &stele_core::Entry) -> bool {
        match self {
            Reader::Key(_) => true,
            Reader::Viewer { claims, .. } => claims.filters.admits(entry),
        }
    }

    /// Who the entries Stele records about this read name: the key, or the viewer (with the key
    /// that minted the token in the context).
    pub fn actor(&self) -> (Actor, Context) {
        match self {
            Reader::Key(auth) => auth.actor(),
            Reader::Viewer { claims, .. } => {
                let viewer = &claims.viewer;
                let actor = Actor {
                    kind: stele_core::ActorType::User,
                    id: Some(viewer.id.clone()),
                    name: viewer.name.clone(),
                    email: viewer.email.clone(),
                    href: None,
                    metadata: Default::default(),
                    original_type: None,
                };
                let context = Context {
                    api_key_id: Some(claims.minted_by.clone()),
                    source: Some("web".into()),
                    ..Context::default()
                };
                (actor, context)
            }
        }
    }
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).filter(|t| t.starts_with(viewer::TOKEN_PREFIX));
        let Some(token) = token else {
            return Ok(Reader::Key(
                Authenticated::from_request_parts(parts, state).await?,
            ));
        };
        let now = state.clock.now();
        // The minted token, or a page's session token: either is the viewer's while it lives.
        let claims = viewer::verify(&state.viewer_tokens, token, viewer::Kind::Open, now)
            .or_else(|_| viewer::verify(&state.viewer_tokens, token, viewer::Kind::Session, now))
            .map_err(|_| ApiError::Unauthorized("unknown or expired viewer token"))?;
        let org = state
            .directory
            .resolve(state.store.as_ref(), &claims.org)
            .await?
            .ok_or(ApiError::Unauthorized("unknown or expired viewer token"))?;
        note_caller(&org.id, None);
        Ok(Reader::Viewer {
            claims,
            org: org.key,
        })
    }
}

/// The client's address alone, for an endpoint without an API key
/// (`crate::app::client_ip::client_ip`).
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip::client_ip(parts, &state.proxies)))
    }
}

/// The key as it acts for the organization the `Stele-Organization` header names (see the module
/// docs). On ingest, `creator` is who creates an organization the header names for the first time
/// (when the platform allows it).
async fn acting_for(
    parts: &Parts,
    state: &AppState,
    key: ApiKeyInfo,
) -> Result<ApiKeyInfo, ApiError> {
    let Some(reference) = header_reference(parts)? else {
        return Ok(key);
    };
    act_for(state, key, &reference, ORGANIZATION_FIELD).await
}

/// The key as it acts for the organization `reference` names (its id `org_…` or external id): a
/// platform key for any tenant, an organization key for its own alone (a 403 otherwise). An
/// unknown reference is a 404 naming `field`, where the request named it.
pub(crate) async fn act_for(
    state: &AppState,
    mut key: ApiKeyInfo,
    reference: &str,
    field: &'static str,
) -> Result<ApiKeyInfo, ApiError> {
    if !key.platform {
        // An organization key: a request may only name its own organization.
        if reference == key.org_id {
            return Ok(key);
        }
        let named = state
            .directory
            .resolve(state.store.as_ref(), reference)
            .await?;
        return match named {
            Some(org) if org.key == key.org => Ok(key),
            _ => Err(ApiError::Forbidden(format!(
                "this API key belongs to organization {}; only a platform key names another",
                key.org_id
            ))),
        };
    }
    let store = state.store.as_ref();
    let org = state.directory.resolve(store, reference).await?;
    let org = org.ok_or_else(|| ApiError::NotFoundField {
        field,
        message: format!("no organization has the id or external id `{reference}`"),
    })?;
    key.org = org.key;
    key.org_id = org.id;
    // The log line names the organization the key acts for.
    note_caller(&key.org_id, None);
    Ok(key)
}

/// The token of `Authorization: Bearer <token>` (or `bearer`), if the request sends one: an API
/// key, or a viewer token on the read endpoints ([`Reader`]).
pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    let header = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The `Stele-Organization` header's reference, if the request sends one.
fn header_reference(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(value) = parts.headers.get(ORGANIZATION_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| Some(r.to_string()))
        .ok_or_else(|| {
            ApiError::field(
                "invalid_header",
                ORGANIZATION_FIELD,
                "must hold an organization id (org_…) or external id",
            )
        })
}

/// An organization use case's refusal as the API answers it.
pub fn org_error(e: OrgError) -> ApiError {
    match e {
        OrgError::Invalid { field, message } => {
            ApiError::field("invalid_organization", field, message)
        }
        OrgError::Taken(message) => ApiError::Conflict(message),
        OrgError::Store(e) => e.into(),
    }
}

/// The key of `X-API-Key: <key>` or `Authorization: Bearer <key>`, if it is one of ours and not
/// revoked.
pub(crate) async fn api_key(parts: &Parts, state: &AppState) -> Result<ApiKeyInfo, ApiError> {
    // Two credentials are one too many: which one a proxy or a server honours differs, so a
    // request that sends two is refused rather than read by the first.
    for name in [AUTHORIZATION, HeaderName::from_static(API_KEY_HEADER)] {
        if parts.headers.get_all(&name).iter().nth(1).is_some() {
            return Err(ApiError::Unauthorized(
                "send one Authorization (or X-API-Key) header, not several",
            ));
        }
    }
    let secret = match parts.headers.get(API_KEY_HEADER) {
        // A client that names its key this way means it, whatever else it sends (a proxy may add
        // an Authorization header of its own).
        Some(value) => value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(ApiError::Unauthorized(
                "the X-API-Key header must hold the key",
            ))?,
        None if parts.headers.contains_key(AUTHORIZATION) => bearer(parts).ok_or(
            ApiError::Unauthorized("the Authorization header must be `Bearer <key>`"),
        )?,
        None => {
            return Err(ApiError::Unauthorized(
                "missing `Authorization: Bearer <key>` (or `X-API-Key: <key>`) header",
            ));
        }
    };
    let key = state
        .store
        .authenticate(&api_keys::hash(secret))
        .await?
        .ok_or(ApiError::Unauthorized("unknown or revoked API key"))?;
    note_caller(&key.org_id, Some(&key.id));
    Ok(key)
}
