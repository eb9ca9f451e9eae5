//! Action schemas: versioned JSON documents that describe what an action's events carry (the
//! WorkOS Audit Logs door's `POST /audit_logs/actions/{action}/schemas`). The store keeps them
//! as opaque text per organization (the platform's own, for WorkOS, whose schemas belong to the
//! environment) and numbers the versions; what a document means and how an event is checked
//! against it is `stele_service::action_schemas`.

use async_trait::async_trait;
use stele_core::time::Millis;

use crate::{OrgKey, Result};

#[async_trait]
pub trait ActionSchemas: Send + Sync {
    /// Stores a new version of the action's schema for the organization and returns it: version
    /// 1 for the action's first, else one more than its latest. Concurrent calls for one action
    /// get distinct versions.
    async fn create_action_schema(
        &self,
        org: OrgKey,
        schema: NewActionSchema,
    ) -> Result<ActionSchema>;

    /// Every version of the action's schema for the organization, oldest first. Versions are
    /// few (each is a deliberate change of what an action carries), so they come whole.
    async fn action_schemas(&self, org: OrgKey, action: &str) -> Result<Vec<ActionSchema>>;

    /// One version of the action's schema, or its latest when `version` is `None`; `None` when
    /// there is no such version (or none at all).
    async fn action_schema(
        &self,
        org: OrgKey,
        action: &str,
        version: Option<u32>,
    ) -> Result<Option<ActionSchema>>;
}

/// A schema to store; the store assigns the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewActionSchema {
    pub action: String,
    /// The schema document as JSON text, already checked by the caller.
    pub document: String,
    pub created_at: Millis,
}

/// A stored version of an action's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionSchema {
    pub action: String,
    /// 1, 2, 3, … per action and organization, never reused.
    pub version: u32,
    pub document: String,
    pub created_at: Millis,
}
