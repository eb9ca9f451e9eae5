//! `/v1/organizations`: a platform manages its tenant organizations and their API keys over HTTP
//! (docs/platforms.md). Every route takes a platform key with the `organizations` scope; an
//! organization is named in the path by its id (`org_…`) or its external id.
//!
//! - `POST /v1/organizations` `{name, external_id?}` → 201, the organization.
//! - `GET /v1/organizations?limit=&after=&external_id=` → `{organizations, next_cursor}`,
//!   oldest first.
//! - `GET /v1/organizations/{org}`, `PATCH /v1/organizations/{org}` `{name?, external_id?}`
//!   (`external_id: null` removes it), `DELETE /v1/organizations/{org}?confirm={org id}` (all its
//!   data goes; recorded in the platform's trail).
//! - `POST /v1/organizations/{org}/keys` `{name, scopes}` → 201, the key with its secret (shown
//!   this once); `GET …/keys`; `DELETE …/keys/{key_id}` revokes it.
//! - `POST /v1/organizations/{org}/members` `{email, name?, role}` → 201, the member and a one-time
//!   link for them to set their password (never a password in the request); `GET …/members`;
//!   `PATCH …/members/{id}` `{role?, disabled?}`; `DELETE …/members/{id}`;
//!   `POST …/members/{id}/password-link` → a new link.
//!
//! Everything done here is recorded in the organization's trail and in the platform's own, with
//! the platform key as actor.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use stele_core::time::Millis;
use stele_core::time::format_rfc3339;
use stele_store::{
    ApiKeyInfo, Member, NewOrganization, OrgPageRequest, OrgUpdate, Organization, Scope, StoreError,
};

use super::{Params, params};
use crate::api::auth::{Authenticated, org_error};
use crate::api::error::{ApiError, Result};
use crate::api::openapi::schemas;
use crate::app::state::AppState;
use stele_service::access::api_keys::{self, Revoked};
use stele_service::access::members::{self, AddMember, AddMemberError, LinkIssuer};
use stele_service::access::roles::Role;
use stele_service::organizations;
use stele_service::trail::By;

/// A page of the list holds this many organizations unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;

/// An organization as the API shows it.
pub fn organization_json(org: &Organization) -> Value {
    json!({
        "object": "organization",
        "id": org.id,
        "name": org.name,
        "external_id": org.external_id,
        "created_at": format_rfc3339(org.created_at),
    })
}

fn key_json(key: &ApiKeyInfo) -> Value {
    json!({
        "object": "api_key",
        "id": key.id,
        "organization_id": key.org_id,
        "name": key.name,
        "scopes": key.scopes,
        "prefix": key.prefix,
        "created_at": format_rfc3339(key.created_at),
        "revoked_at": key.revoked_at.map(format_rfc3339),
    })
}

/// The caller: a platform key with the `organizations` scope.
fn platform_manager(auth: &Authenticated) -> Result<By> {
    if !auth.key.platform {
        return Err(ApiError::Forbidden(
            "managing organizations takes a platform key (stele key create --platform)".into(),
        ));
    }
    auth.require(Scope::Organizations)?;
    let (actor, context) = auth.actor();
    Ok(By::platform(actor, context))
}

/// The organization the path names.
async fn named(state: &AppState, reference: &str) -> Result<Organization> {
    state
        .directory
        .resolve(state.store.as_ref(), reference)
        .await?
        .ok_or(ApiError::NotFound(
            "no organization has this id or external id",
        ))
}

/// A JSON object body, read whatever the Content-Type says (`curl -d`).
fn object(body: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

/// Refuses keys the resource does not know, naming the first.
fn only(map: &Map<String, Value>, known: &[&str]) -> Result<()> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(key) => Err(ApiError::field(
            "invalid_body",
            key,
            format!("unknown field; known fields are {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A string field: `Ok(None)` when absent, and `null` too where `nullable`.
fn text(map: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::field("invalid_body", field, "must be a string")),
    }
}

#[utoipa::path(
    post, path = "/v1/organizations", tag = "organizations", operation_id = "createOrganization",
    summary = "Create an organization",
    description = "Platform keys with the `organizations` scope; recorded in the platform's trail and the organization's.",
    request_body = schemas::OrganizationRequest,
    responses(
        (status = 201, description = "The organization", body = schemas::Organization),
        (status = 409, description = "The external id is taken", body = schemas::Error),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    // Too large is the body limit's 413 in this door's own shape, not axum's text.
    let body = body.map_err(ApiError::from)?;
    let by = platform_manager(&auth)?;
    let map = object(&body)?;
    only(&map, &["name", "external_id"])?;
    let new = NewOrganization {
        name: text(&map, "name")?
            .ok_or_else(|| ApiError::field("invalid_body", "name", "is required"))?,
        external_id: text(&map, "external_id")?,
    };
    let org = organizations::create(state.store.as_ref(), new, by, state.clock.now())
        .await
        .map_err(org_error)?;
    Ok((StatusCode::CREATED, Json(organization_json(&org))))
}

#[utoipa::path(
    get, path = "/v1/organizations", tag = "organizations", operation_id = "listOrganizations",
    summary = "List organizations",
    description = "Platform keys with the `organizations` scope.",
    responses(
        (status = 200, description = "Organizations, oldest first", body = schemas::Organizations),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    query: Params,
) -> Result<Json<Value>> {
    platform_manager(&auth)?;
    let mut request = OrgPageRequest {
        after: None,
        limit: DEFAULT_LIMIT,
        external_id: None,
    };
    for (key, value) in params(query)? {
        match key.as_str() {
            "limit" => {
                request.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::field(
                            "invalid_parameter",
                            "limit",
                            format!("must be a whole number from 1 to {MAX_LIMIT}"),
                        )
                    })?
            }
            "after" => request.after = Some(value),
            "external_id" => request.external_id = Some(value),
            other => {
                return Err(ApiError::field(
                    "invalid_parameter",
                    other,
                    "unknown parameter; known parameters are limit, after, external_id",
                ));
            }
        }
    }
    // One more than asked says whether there is a next page.
    let limit = request.limit;
    request.limit += 1;
    let mut orgs = state.store.page_orgs(&request).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::field(
            "invalid_parameter",
            "after",
            "names no organization: use a next_cursor as given",
        ),
        other => other.into(),
    })?;
    let more = orgs.len() > limit;
    orgs.truncate(limit);
    let next_cursor = more.then(|| orgs.last().map(|o| o.id.clone())).flatten();
    Ok(Json(json!({
        "organizations": orgs.iter().map(organization_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

#[utoipa::path(
    get, path = "/v1/organizations/{org}", tag = "organizations", operation_id = "getOrganization",
    summary = "Read an organization",
    description = "By id (`org_…`) or external id.",
    responses(
        (status = 200, description = "The organization", body = schemas::Organization),
        (status = 404, description = "No such organization", body = schemas::Error),
    ),
)]
pub async fn show(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(reference): Path<String>,
) -> Result<Json<Value>> {
    platform_manager(&auth)?;
    let org = named(&state, &reference).await?;
    Ok(Json(organization_json(&org)))
}

#[utoipa::path(
    patch, path = "/v1/organizations/{org}", tag = "organizations", operation_id = "updateOrganization",
    summary = "Rename an organization",
    description = "Changes its name or external id.",
    request_body = schemas::OrganizationRequest,
    responses(
        (status = 200, description = "The organization as changed", body = schemas::Organization),
        (status = 404, description = "No such organization", body = schemas::Error),
        (status = 409, description = "The external id is taken", body = schemas::Error),
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(reference): Path<String>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    // Too large is the body limit's 413 in this door's own shape, not axum's text.
    let body = body.map_err(ApiError::from)?;
    let by = platform_manager(&auth)?;
    let org = named(&state, &reference).await?;
    let map = object(&body)?;
    only(&map, &["name", "external_id"])?;
    if map.get("name").is_some_and(Value::is_null) {
        return Err(ApiError::field("invalid_body", "name", "must be a string"));
    }
    let update = OrgUpdate {
        name: text(&map, "name")?,
        external_id: match map.get("external_id") {
            None => None,
            Some(_) => Some(text(&map, "external_id")?),
        },
    };
    let store = state.store.as_ref();
    let new = organizations::update(store, &org, update, by, state.clock.now())
        .await
        .map_err(org_error)?;
    state.directory.forget(&org);
    Ok(Json(organization_json(&new)))
}

#[utoipa::path(
    delete, path = "/v1/organizations/{org}", tag = "organizations", operation_id = "deleteOrganization",
    summary = "Delete an organization",
    description = "The organization and its whole trail; `confirm` must repeat its id. Not undone.",
    responses(
        (status = 200, description = "The organization and its entries are gone", body = schemas::DeletedOrganization),
        (status = 404, description = "No such organization", body = schemas::Error),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(reference): Path<String>,
    query: Params,
) -> Result<Json<Value>> {
    let by = platform_manager(&auth)?;
    let org = named(&state, &reference).await?;
    let params = params(query)?;
    let confirm = params
        .iter()
        .find(|(k, _)| k == "confirm")
        .map(|(_, v)| v.as_str());
    let removed = organizations::delete(
        state.store.as_ref(),
        &state.directory,
        &org,
        confirm,
        by,
        state.clock.now(),
    )
    .await
    .map_err(org_error)?;
    // Its export files go with the next sweep; run one now.
    state.exports.sweep().await;
    let mut body = organization_json(&org);
    body["deleted"] = json!(true);
    body["entries_removed"] = json!(removed);
    Ok(Json(body))
}

#[utoipa::path(
    post, path = "/v1/organizations/{org}/keys", tag = "organizations", operation_id = "createApiKey",
    summary = "Create an API key",
    description = "The secret is in this answer only; Stele stores its hash.",
    request_body = schemas::ApiKeyRequest,
    responses(
        (status = 201, description = "The key, with its secret shown this once", body = schemas::CreatedApiKey),
        (status = 404, description = "No such organization", body = schemas::Error),
    ),
)]
pub async fn create_key(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(reference): Path<String>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    // Too large is the body limit's 413 in this door's own shape, not axum's text.
    let body = body.map_err(ApiError::from)?;
    let by = platform_manager(&auth)?;
    let org = named(&state, &reference).await?;
    let map = object(&body)?;
    only(&map, &["name", "scopes"])?;
    let name = text(&map, "name")?.unwrap_or_else(|| "api key".into());
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::field(
            "invalid_body",
            "name",
            "must be one line of 1 to 100 characters",
        ));
    }
    let scopes = match map.get("scopes") {
        None => vec![Scope::Ingest],
        Some(Value::Array(items)) => {
            let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            let names = names.ok_or_else(|| {
                ApiError::field("invalid_body", "scopes", "must be an array of scope names")
            })?;
            Scope::parse_list(&names.join(","))
                .and_then(|scopes| Scope::check_for(&scopes, false).map(|()| scopes))
                .map_err(|e| ApiError::field("invalid_body", "scopes", e))?
        }
        Some(_) => {
            return Err(ApiError::field(
                "invalid_body",
                "scopes",
                "must be an array of scope names",
            ));
        }
    };
    let now = state.clock.now();
    let created =
        api_keys::create(state.store.as_ref(), org.key, name.trim(), scopes, by, now).await?;
    let mut body = key_json(&created.info);
    body["secret"] = json!(created.secret);
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(
    get, path = "/v1/organizations/{org}/keys", tag = "organizations", operation_id = "listApiKeys",
    summary = "List an organization's keys",
    description = "Never their secrets.",
    responses(
        (status = 200, description = "The organization's keys (never their secrets)", body = schemas::ApiKeys),
        (status = 404, description = "No such organization", body = schemas::Error),
    ),
)]
pub async fn list_keys(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(reference): Path<String>,
) -> Result<Json<Value>> {
    platform_manager(&auth)?;
    let org = named(&state, &reference).await?;
    let keys = state.store.list_api_keys(org.key).await?;
    Ok(Json(json!({
        "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
    })))
}

#[utoipa::path(
    delete, path = "/v1/organizations/{org}/keys/{key_id}", tag = "organizations", operation_id = "revokeApiKey",
    summary = "Revoke an API key",
    description = "It stops working at once, on every server sharing the database.",
    responses(
        (status = 200, description = "The key, revoked", body = schemas::ApiKey),
        (status = 404, description = "No such key in the organization", body = schemas::Error),
    ),
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    auth: Authenticated,
    Path((reference, key_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let by = platform_manager(&auth)?;
    let org = named(&state, &reference).await?;
    // Only a key of the organization the path names: never one of another's.
    let keys = state.store.list_api_keys(org.key).await?;
    if !keys.iter().any(|k| k.id == key_id) {
        return Err(ApiError::NotFound(
            "this organization has no key with this id",
        ));
    }
    let now = state.clock.now();
    let info = match api_keys::revoke(state.store.as_ref(), &key_id, by, now).await? {
        Revoked::Now { info, .. } | Revoked::Already(info) => info,
    };
    Ok(Json(key_json(&info)))
}

fn member_json(member: &Member) -> Value {
    json!({
        "object": "member",
        "id": member.id,
        "organization_id": member.org_id,
        "email": member.email,
        "name": member.name,
        "role": member.role,
        "disabled": member.disabled,
        "has_password": member.password_hash != members::NO_PASSWORD_YET,
        "created_at": format_rfc3339(member.created_at),
    })
}

/// Where a password-set link opens: the console's page, under the public URL.
fn password_link_json(state: &AppState, token: &str, expires_at: Millis) -> Value {
    json!({
        "password_set_url": format!(
            "{}{}?token={token}",
            state.public_url,
            crate::console::password_page::SET_PASSWORD_PATH
        ),
        "password_set_expires_at": format_rfc3339(expires_at),
    })
}

fn role_of(map: &Map<String, Value>) -> Result<Option<Role>> {
    match text(map, "role")? {
        None => Ok(None),
        Some(name) => Role::parse(&name).map(Some).ok_or_else(|| {
            ApiError::field(
                "invalid_body",
                "role",
                format!("unknown role; use one of {}", Role::names()),
            )
        }),
    }
}

#[utoipa::path(
    post, path = "/v1/organizations/{org}/members", tag = "organizations", operation_id = "addMember",
    summary = "Add a console member",
    description = "With a link to set a password, unless the person already signs in elsewhere.",
    request_body = schemas::MemberRequest,
    responses(
        (status = 201, description = "The member", body = schemas::AddedMember),
        (status = 404, description = "No such organization", body = schemas::Error),
        (status = 409, description = "Already a member", body = schemas::Error),
    ),
)]
pub async fn add_member(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(reference): Path<String>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    // Too large is the body limit's 413 in this door's own shape, not axum's text.
    let body = body.map_err(ApiError::from)?;
    let by = platform_manager(&auth)?;
    let org = named(&state, &reference).await?;
    let map = object(&body)?;
    only(&map, &["email", "name", "role"])?;
    let email = text(&map, "email")?
        .ok_or_else(|| ApiError::field("invalid_body", "email", "is required"))?;
    let role =
        role_of(&map)?.ok_or_else(|| ApiError::field("invalid_body", "role", "is required"))?;
    let name = text(&map, "name")?;
    let store = state.store.as_ref();
    let now = state.clock.now();
    let request = AddMember {
        email: &email,
        name: name.as_deref(),
        role,
        password: None,
    };
    let added = members::add(store, org.key, request, by.clone(), now)
        .await
        .map_err(|e| match e {
            AddMemberError::Invalid(message) => {
                let field = if message.starts_with("the name") {
                    "name"
                } else {
                    "email"
                };
                ApiError::field("invalid_body", field, message)
            }
            AddMemberError::EmailTaken(_) | AddMemberError::AwaitingPassword(_) => {
                ApiError::Conflict(e.to_string())
            }
            AddMemberError::Store(e) => e.into(),
        })?;
    let member = added.member;
    let mut body = member_json(&member);
    body["existing_account"] = Value::Bool(added.existing_account);
    // A person of another organization signs in with the password they have; a link here would
    // let this organization change it (and `password_link` refuses one).
    if !added.existing_account {
        let (token, expires_at) = members::password_link(
            store,
            &state.password_links,
            &member,
            LinkIssuer::Organization,
            by,
            now,
        )
        .await?;
        body["password_link"] = password_link_json(&state, &token, expires_at);
    }
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(
    get, path = "/v1/organizations/{org}/members", tag = "organizations", operation_id = "listMembers",
    summary = "List console members",
    description = "The people who sign in to the organization's web console.",
    responses(
        (status = 200, description = "The organization's console members", body = schemas::Members),
        (status = 404, description = "No such organization", body = schemas::Error),
    ),
)]
pub async fn list_members(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(reference): Path<String>,
) -> Result<Json<Value>> {
    platform_manager(&auth)?;
    let org = named(&state, &reference).await?;
    let members = state.store.list_members(org.key).await?;
    Ok(Json(json!({
        "members": members.iter().map(member_json).collect::<Vec<_>>(),
    })))
}

#[utoipa::path(
    patch, path = "/v1/organizations/{org}/members/{id}", tag = "organizations", operation_id = "updateMember",
    summary = "Change a member",
    description = "Their role, or disable them.",
    request_body = schemas::MemberRequest,
    responses(
        (status = 200, description = "The member as changed", body = schemas::Member),
        (status = 404, description = "No such member", body = schemas::Error),
    ),
)]
pub async fn update_member(
    State(state): State<AppState>,
    auth: Authenticated,
    Path((reference, id)): Path<(String, String)>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    // Too large is the body limit's 413 in this door's own shape, not axum's text.
    let body = body.map_err(ApiError::from)?;
    let by = platform_manager(&auth)?;
    let org = named(&state, &reference).await?;
    let map = object(&body)?;
    only(&map, &["role", "disabled"])?;
    let role = role_of(&map)?;
    let disabled = match map.get("disabled") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(ApiError::field(
                "invalid_body",
                "disabled",
                "must be true or false",
            ));
        }
    };
    let store = state.store.as_ref();
    let now = state.clock.now();
    let mut member = store
        .member(org.key, &id)
        .await?
        .ok_or(StoreError::NotFound)
        .map_err(no_such_member)?;
    if let Some(role) = role {
        member = members::change_role(store, org.key, &id, role, by.clone(), now)
            .await
            .map_err(no_such_member)?;
    }
    if let Some(disabled) = disabled {
        member = members::set_disabled(store, org.key, &id, disabled, by, now)
            .await
            .map_err(no_such_member)?;
    }
    Ok(Json(member_json(&member)))
}

/// The path's member is not one of the path's organization's (another organization's member is
/// not found either).
fn no_such_member(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("this organization has no member with this id"),
        other => other.into(),
    }
}

#[utoipa::path(
    delete, path = "/v1/organizations/{org}/members/{id}", tag = "organizations", operation_id = "removeMember",
    summary = "Remove a console member",
    description = "They can no longer sign in to this organization.",
    responses(
        (status = 200, description = "The member, removed", body = schemas::Member),
        (status = 404, description = "No such member", body = schemas::Error),
    ),
)]
pub async fn remove_member(
    State(state): State<AppState>,
    auth: Authenticated,
    Path((reference, id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let by = platform_manager(&auth)?;
    let org = named(&state, &reference).await?;
    let now = state.clock.now();
    let member = members::remove(state.store.as_ref(), org.key, &id, by, now)
        .await
        .map_err(no_such_member)?;
    Ok(Json(member_json(&member)))
}

#[utoipa::path(
    post, path = "/v1/organizations/{org}/members/{id}/password-link", tag = "organizations", operation_id = "createPasswordLink",
    summary = "A password link",
    description = "A new link for the member to set a password; earlier links stop working.",
    responses(
        (status = 201, description = "A new link (earlier ones stop working)", body = schemas::PasswordLink),
        (status = 404, description = "No such member", body = schemas::Error),
    ),
)]
pub async fn member_password_link(
    State(state): State<AppState>,
    auth: Authenticated,
    Path((reference, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>)> {
    let by = platform_manager(&auth)?;
    let org = named(&state, &reference).await?;
    let store = state.store.as_ref();
    let member = store
        .member(org.key, &id)
        .await?
        .ok_or(StoreError::NotFound)
        .map_err(no_such_member)?;
    let now = state.clock.now();
    let (token, expires_at) = members::password_link(
        store,
        &state.password_links,
        &member,
        LinkIssuer::Organization,
        by,
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(password_link_json(&state, &token, expires_at)),
    ))
}
