//! `POST /portal/generate_link` (`viewer` scope): WorkOS's Admin Portal link, for the
//! `audit_logs` intent only. The link opens Stele's embedded audit log of the organization
//! (`/embed/log?token=…`, `crate::console::embed`) with a viewer token minted by the same use case
//! as `POST /v1/viewer-tokens`: five minutes to open it (WorkOS's link lifetime), then a session
//! of the default length; the viewer may read and export, sees every entry of the organization,
//! and is recorded as `admin-portal` ("Admin Portal link"), since WorkOS names no person.
//!
//! The `log_streams` intent opens the organization's log streams instead
//! (`/embed/streams?token=…`): the same pages as the console's Settings → Log streams, for the
//! customer's IT admin, who can create, change, pause and delete streams there (and read the
//! log beside them). A stream sends the whole trail wherever it points, so that link needs a key
//! with the `admin` scope.
//!
//! `return_url` and `success_url` are checked (absolute http(s) URLs) but lead nowhere: the
//! embedded pages have no "back" or "done" step to send people to them. The other intents
//! (`sso`, `dsync`, `domain_verification`, …) are WorkOS features Stele does not have: a 422
//! naming `intent`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::{Value, json};
use stele_store::Scope;

use super::auth::WorkosKey;
use super::error::{Requirement, Result, WorkosError, json_object};
use crate::api::error::ApiError;
use crate::app::state::AppState;
use stele_service::access::viewer::{self, FixedFilters, MintRequest, Permission, Theme, Viewer};
use stele_service::trail::By;

/// The intents Stele serves: the embedded log, and the organization's log streams.
pub const AUDIT_LOGS_INTENT: &str = "audit_logs";
pub const LOG_STREAMS_INTENT: &str = "log_streams";
/// How long the link may wait to be opened: WorkOS's five minutes.
pub const LINK_TTL_SECONDS: u64 = 5 * 60;
/// Who the viewer is, as the entries of their viewing name them.
pub const PORTAL_VIEWER_ID: &str = "admin-portal";
const PORTAL_VIEWER_NAME: &str = "Admin Portal link";

const FIELDS: [&str; 4] = ["intent", "organization", "return_url", "success_url"];

/// `POST /portal/generate_link` → `201 {"link": "https://…/embed/log?token=svt_…"}` (or
/// `…/embed/streams?token=…` for `log_streams`).
pub async fn generate_link(
    State(state): State<AppState>,
    key: WorkosKey,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>)> {
    key.require(Scope::Viewer)?;
    let body = json_object(&body.map_err(ApiError::from)?)?;
    if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(WorkosError::field(
            "invalid_request_body",
            unknown,
            format!(
                "is not a field of a portal link request ({})",
                FIELDS.join(", ")
            ),
        ));
    }
    let text = |field: &str| -> Result<Option<String>> {
        match body.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(_) => Err(WorkosError::requirement(Requirement::invalid(
                field,
                "must be a non-empty string",
            ))),
        }
    };
    let streams = match text("intent")?.as_deref() {
        Some(AUDIT_LOGS_INTENT) => false,
        Some(LOG_STREAMS_INTENT) => {
            key.require(Scope::Admin)?;
            true
        }
        None => {
            return Err(WorkosError::requirement(Requirement::required(
                "intent",
                "is required: audit_logs or log_streams",
            )));
        }
        Some(other) => {
            return Err(WorkosError::requirement(Requirement::invalid(
                "intent",
                format!("must be audit_logs or log_streams: Stele has no `{other}` portal"),
            )));
        }
    };
    for field in ["return_url", "success_url"] {
        if let Some(url) = text(field)?
            && !is_web_url(&url)
        {
            return Err(WorkosError::requirement(Requirement::invalid(
                field,
                "must be an absolute http or https URL",
            )));
        }
    }
    let reference = text("organization")?.ok_or_else(|| {
        WorkosError::requirement(Requirement::required(
            "organization",
            "is required: the organization's id or external id",
        ))
    })?;
    let auth = key
        .for_organization(&state, &reference, "organization")
        .await?;
    let store = state.store.as_ref();
    let org = state
        .directory
        .resolve(store, &auth.key.org_id)
        .await?
        .ok_or_else(|| WorkosError::not_found("Organization", &reference))?;
    let request = MintRequest {
        viewer: Viewer {
            id: PORTAL_VIEWER_ID.into(),
            name: Some(PORTAL_VIEWER_NAME.into()),
            email: None,
        },
        permissions: if streams {
            vec![Permission::Read, Permission::Export, Permission::Streams]
        } else {
            vec![Permission::Read, Permission::Export]
        },
        filters: FixedFilters::default(),
        theme: Theme::default(),
        ttl_seconds: Some(LINK_TTL_SECONDS),
        session_seconds: None,
    };
    let (actor, context) = auth.actor();
    let by = if auth.key.platform {
        By::platform(actor, context)
    } else {
        By::new(actor, context)
    };
    let (token, _) = viewer::mint(
        store,
        &state.viewer_tokens,
        &org,
        &auth.key.id,
        request,
        by,
        state.clock.now(),
    )
    .await
    .map_err(|e| match e {
        // The request is fixed here: a refusal would be this module's mistake.
        viewer::MintError::Invalid(p) => WorkosError::Internal(format!("portal viewer token: {p}")),
        viewer::MintError::Store(e) => e.into(),
    })?;
    let page = if streams { "streams" } else { "log" };
    Ok((
        StatusCode::CREATED,
        Json(json!({"link": format!("{}/embed/{page}?token={token}", state.public_url)})),
    ))
}

/// Whether `url` is an absolute http(s) URL with a host.
fn is_web_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_urls_are_absolute_web_urls() {
        assert!(is_web_url("https://app.test/back"));
        assert!(is_web_url("http://127.0.0.1:3000"));
        for bad in [
            "",
            "/back",
            "app.test",
            "javascript:alert(1)",
            "https://",
            "https://a b",
        ] {
            assert!(!is_web_url(bad), "{bad}");
        }
    }
}
