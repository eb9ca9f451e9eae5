//! `POST /v1/viewer-tokens`: a short-lived token that opens one organization's audit log inside
//! another product's page (docs/platforms.md). A platform key with the `viewer` scope mints one for
//! the organization its request names (the `Stele-Organization` header, or `organization` in the
//! body); an organization's key with `viewer` (or `admin`) for its own.
//!
//! ```json
//! {"viewer": {"id": "u_7", "name": "Kim", "email": "kim@example.com"},
//!  "permissions": ["read", "export"],
//!  "filters": {"entity_type": "License", "entity_id": "L-1"},
//!  "theme": {"mode": "dark", "accent": "#0a7", "font": "Inter, sans-serif", "radius": 6},
//!  "ttl_seconds": 300, "session_seconds": 3600}
//! → 201 {"token": "svt_…", "url": "https://audit.example.com/embed/log?token=svt_…",
//!        "expires_at": "…", "session_ends_at": "…"}
//! ```
//!
//! Minting is recorded in the organization's trail (and in the platform's, for a platform key).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use stele_core::time::format_rfc3339;
use stele_store::Scope;

use crate::api::auth::Authenticated;
use crate::api::error::{ApiError, Result};
use crate::api::openapi::schemas;
use crate::app::state::AppState;
use stele_service::access::viewer::{self, FixedFilters, MintRequest, Permission, Theme, Viewer};
use stele_service::trail::By;

/// The body as sent; unknown fields are refused (a typo must not widen what a viewer sees).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    organization: Option<String>,
    viewer: Viewer,
    #[serde(default)]
    permissions: Vec<Permission>,
    #[serde(default)]
    filters: FixedFilters,
    #[serde(default)]
    theme: Theme,
    ttl_seconds: Option<u64>,
    session_seconds: Option<u64>,
}

#[utoipa::path(
    post, path = "/v1/viewer-tokens", tag = "viewer tokens", operation_id = "createViewerToken",
    summary = "Open the log inside your product",
    description = "A short-lived token for the embedded audit log of one organization, for one viewer, with fixed filters. Needs the `viewer` scope.",
    request_body = schemas::ViewerTokenRequest,
    responses(
        (status = 201, description = "A token that opens the organization's log inside another product", body = schemas::ViewerToken),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    // Too large is the body limit's 413 in this door's own shape, not axum's text.
    let body = body.map_err(ApiError::from)?;
    auth.require(Scope::Viewer)?;
    let body: Body = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!("the body is not a viewer token request: {e}"),
        )
    })?;
    // Managing streams can send the whole trail anywhere: the minting key must be an admin's.
    if body.permissions.contains(&Permission::Streams) {
        auth.require(Scope::Admin)?;
    }
    let store = state.store.as_ref();
    let platform = state.directory.platform(store).await?;
    let org = match body.organization.as_deref() {
        Some(reference) => {
            let named = state
                .directory
                .resolve(store, reference)
                .await?
                .ok_or_else(|| ApiError::NotFoundField {
                    field: "organization",
                    message: format!("no organization has the id or external id `{reference}`"),
                })?;
            if !auth.key.platform && named.key != auth.key.org {
                return Err(ApiError::Forbidden(
                    "an organization's key mints viewer tokens for its own organization only"
                        .into(),
                ));
            }
            named
        }
        None if auth.key.org == platform.key => {
            return Err(ApiError::field(
                "organization_required",
                "organization",
                "a platform key names the organization: `organization` in the body or the \
                 Stele-Organization header",
            ));
        }
        None => store.find_org(&auth.key.org_id).await?,
    };
    let request = MintRequest {
        viewer: body.viewer,
        permissions: body.permissions,
        filters: body.filters,
        theme: body.theme,
        ttl_seconds: body.ttl_seconds,
        session_seconds: body.session_seconds,
    };
    let (actor, context) = auth.actor();
    let by = if auth.key.platform {
        By::platform(actor, context)
    } else {
        By::new(actor, context)
    };
    let minted = viewer::mint(
        store,
        &state.viewer_tokens,
        &org,
        &auth.key.id,
        request,
        by,
        state.clock.now(),
    )
    .await;
    let (token, claims) = minted.map_err(|e| match e {
        viewer::MintError::Invalid(p) => ApiError::field("invalid_body", &p.field, p.message),
        viewer::MintError::Store(e) => e.into(),
    })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "url": format!("{}/embed/log?token={token}", state.public_url),
            "expires_at": format_rfc3339(claims.expires_at),
            "session_ends_at": format_rfc3339(claims.session_ends_at),
        })),
    ))
}
