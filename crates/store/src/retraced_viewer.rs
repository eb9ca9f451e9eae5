//! What Retraced's embedded viewer keeps per organization (the Retraced door,
//! `stele_service::retraced`): its saved exports (a name and the search they render) and the
//! API tokens its token screen manages (only a hash of each secret is kept). Configuration, not
//! part of the record: none of the trail's guards apply, and both go with their organization.

use async_trait::async_trait;
use stele_core::time::Millis;

use crate::{OrgKey, Result};

#[async_trait]
pub trait RetracedViewer: Send + Sync {
    /// Stores a saved export of the organization (its id is the caller's, fresh and random).
    async fn create_saved_export(&self, org: OrgKey, export: SavedExport) -> Result<()>;

    /// The organization's saved exports, newest first, at most `limit`.
    async fn saved_exports(&self, org: OrgKey, limit: usize) -> Result<Vec<SavedExport>>;

    /// The organization's saved export with this id; another organization's is `None`.
    async fn saved_export(&self, org: OrgKey, id: &str) -> Result<Option<SavedExport>>;

    /// Stores an API token of the organization (its id and secret are the caller's).
    async fn create_viewer_api_token(&self, org: OrgKey, token: NewViewerApiToken) -> Result<()>;

    /// The organization's API tokens, oldest first.
    async fn viewer_api_tokens(&self, org: OrgKey) -> Result<Vec<ViewerApiToken>>;

    /// Renames the organization's token; false when it has none with this id.
    async fn rename_viewer_api_token(
        &self,
        org: OrgKey,
        id: &str,
        display_name: &str,
    ) -> Result<bool>;

    /// Removes the organization's token; false when it has none with this id.
    async fn delete_viewer_api_token(&self, org: OrgKey, id: &str) -> Result<bool>;
}

/// A saved export: the search it renders, under a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedExport {
    pub id: String,
    pub name: String,
    /// The search text in Retraced's language, crud letters and range included.
    pub query: String,
    pub created_at: Millis,
}

/// An API token to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewViewerApiToken {
    pub id: String,
    pub display_name: String,
    /// SHA-256 of the secret, which is shown once and never stored.
    pub secret_hash: [u8; 32],
    pub created_at: Millis,
}

/// A stored API token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerApiToken {
    pub id: String,
    pub display_name: String,
    pub created_at: Millis,
}
