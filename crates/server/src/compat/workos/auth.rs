//! Who calls the WorkOS door: `Authorization: Bearer <key>` with a Stele API key, normally a
//! platform key (the WorkOS environment's key). WorkOS names the organization in the request's
//! body (`organization_id`, `organization`) or path (`/organizations/{id}/…`), not in a header,
//! so the extractor only finds the key; the handler names the organization with
//! [`WorkosKey::for_organization`], which applies the same rules and the same IP allowlist as the
//! native API's `Stele-Organization` header (`crate::api::auth`).

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use stele_store::{ApiKeyInfo, Scope};

use super::error::WorkosError;
use crate::api::auth::{self, Authenticated};
use crate::api::error::ApiError;
use crate::app::client_ip;
use crate::app::state::AppState;

/// The request's key, not yet acting for any organization.
pub struct WorkosKey {
    key: ApiKeyInfo,
    client_ip: Option<IpAddr>,
    method: String,
    path: String,
}

impl FromRequestParts<AppState> for WorkosKey {
    type Rejection = WorkosError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WorkosError> {
        Ok(WorkosKey {
            key: auth::api_key(parts, state).await?,
            client_ip: client_ip::client_ip(parts, &state.proxies),
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
        })
    }
}

impl WorkosKey {
    /// The key's scope check, before anything is looked up (a key without it learns nothing).
    pub fn require(&self, scope: Scope) -> Result<(), WorkosError> {
        if self.key.has_scope(scope) {
            Ok(())
        } else {
            Err(WorkosError::Forbidden {
                message: format!("this API key lacks the `{}` scope", scope.as_str()),
                code: "forbidden",
            })
        }
    }

    /// The key acting for the organization `reference` names (an id `org_…` or an external id),
    /// admitted by its IP allowlist: a platform key for any tenant, an organization's key for its
    /// own. An unknown organization is WorkOS's 404 (`Organization not found: 'x'.`).
    pub async fn for_organization(
        self,
        state: &AppState,
        reference: &str,
        field: &'static str,
    ) -> Result<Authenticated, WorkosError> {
        let request = (self.method.as_str(), self.path.as_str());
        auth::authenticate_for(state, self.key, self.client_ip, reference, field, request)
            .await
            .map_err(|e| match e {
                ApiError::NotFoundField { .. } => WorkosError::not_found("Organization", reference),
                other => other.into(),
            })
    }

    /// A platform key acting for the platform itself (what WorkOS calls the environment: action
    /// schemas belong to it), admitted by the platform organization's IP allowlist. An
    /// organization's key is refused: what it defined would apply to every organization.
    pub async fn for_platform(self, state: &AppState) -> Result<Authenticated, WorkosError> {
        if !self.key.platform {
            return Err(WorkosError::Forbidden {
                message: "action schemas belong to the platform: use a platform key".into(),
                code: "forbidden",
            });
        }
        let request = (self.method.as_str(), self.path.as_str());
        Ok(auth::admit(state, self.key, self.client_ip, request.0, request.1).await?)
    }
}
