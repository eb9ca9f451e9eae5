//! API key authentication: `Authorization: Bearer <key>`, or `X-API-Key: <key>` as clients of
//! the print log API send it (seeds/003), resolves to the key's organization and scopes. Every
//! handler that touches data takes an [`Authenticated`] and checks its scope, so no request can
//! reach another organization's data.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use stele_store::{ApiKeyInfo, Scope};

use super::AppState;
use super::error::ApiError;
use crate::keys;

/// The header Bambuddy's API clients send their key in.
const API_KEY_HEADER: &str = "x-api-key";

pub struct Authenticated {
    pub key: ApiKeyInfo,
}

impl Authenticated {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.key.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this API key lacks the `{}` scope",
                scope.as_str()
            )))
        }
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = match parts.headers.get(API_KEY_HEADER) {
            // A client that names its key this way means it, whatever else it sends (a proxy
            // may add an Authorization header of its own).
            Some(value) => value
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .ok_or(ApiError::Unauthorized(
                    "the X-API-Key header must hold the key",
                ))?,
            None => parts
                .headers
                .get(AUTHORIZATION)
                .ok_or(ApiError::Unauthorized(
                    "missing `Authorization: Bearer <key>` (or `X-API-Key: <key>`) header",
                ))?
                .to_str()
                .ok()
                .and_then(|h| {
                    h.strip_prefix("Bearer ")
                        .or_else(|| h.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .ok_or(ApiError::Unauthorized(
                    "the Authorization header must be `Bearer <key>`",
                ))?,
        };
        let key = state
            .store
            .authenticate(&keys::hash(secret))
            .await?
            .ok_or(ApiError::Unauthorized("unknown or revoked API key"))?;
        Ok(Authenticated { key })
    }
}
