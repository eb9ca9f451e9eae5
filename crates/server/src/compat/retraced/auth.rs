//! Who calls Retraced's publisher API: `Authorization: token=KEY` (the JavaScript client) or
//! `Token token=KEY` (the Go client and the viewer-token call), with a Stele **platform** key,
//! on a path whose `{projectId}` is the platform's id (`stele org list` shows it as the platform
//! organization; the first start prints it). Retraced answers any other key or project with a bare
//! `401 Unauthorized`, and so does this door: a project is one Stele server's platform, and its
//! groups are the platform's organizations.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::extract::{FromRequestParts, Path};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use stele_service::access::api_keys;
use stele_store::{ApiKeyInfo, Scope};

use super::error::{Result, RetracedError};
use crate::api::auth::IngestKey;
use crate::app::client_ip;
use crate::app::state::AppState;

/// A platform key on its own project's path.
pub struct RetracedKey {
    pub key: ApiKeyInfo,
    pub client_ip: Option<IpAddr>,
}

impl FromRequestParts<AppState> for RetracedKey {
    type Rejection = RetracedError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        // Two credentials are refused, not read by the first (as on the native API).
        if parts.headers.get_all(AUTHORIZATION).iter().nth(1).is_some() {
            return Err(RetracedError::Unauthorized);
        }
        let secret = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(token_of)
            .ok_or(RetracedError::Unauthorized)?;
        let key = state
            .store
            .authenticate(&api_keys::hash(secret))
            .await?
            .ok_or(RetracedError::Unauthorized)?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| RetracedError::Unauthorized)?;
        let platform = state.directory.platform(state.store.as_ref()).await?;
        let project = params.get("project_id").map(String::as_str);
        // An organization's key belongs to one group, not to the project: Retraced's tokens are
        // the project's.
        if !key.platform || key.org != platform.key || project != Some(platform.id.as_str()) {
            return Err(RetracedError::Unauthorized);
        }
        Ok(RetracedKey {
            key,
            client_ip: client_ip::client_ip(parts, &state.proxies),
        })
    }
}

impl RetracedKey {
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.key.has_scope(scope) {
            Ok(())
        } else {
            Err(RetracedError::Forbidden(format!(
                "this API key lacks the `{}` scope",
                scope.as_str()
            )))
        }
    }

    /// The key as the native ingest path takes it: a platform key whose every event names its
    /// organization (the event's group).
    pub fn ingest(self) -> IngestKey {
        IngestKey {
            key: self.key,
            client_ip: self.client_ip,
            acts_for_tenant: false,
            pending_organization: None,
        }
    }
}

/// The key in an `Authorization` header, as Retraced's server reads it: whatever follows
/// `token=` (so `token=KEY`, `Token token=KEY` and `Token token="KEY"` are all the key).
fn token_of(header: &str) -> Option<&str> {
    let (_, key) = header.split_once("token=")?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_header_forms_name_the_key() {
        assert_eq!(token_of("token=sk_1"), Some("sk_1"));
        assert_eq!(token_of("Token token=sk_1"), Some("sk_1"));
        assert_eq!(token_of("Token token=\"sk_1\""), Some("sk_1"));
        assert_eq!(token_of("Bearer sk_1"), None);
        assert_eq!(token_of("token="), None);
    }
}
