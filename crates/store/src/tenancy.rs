//! Tenancy: the organizations a store holds, the API keys that act for them, and each
//! organization's settings ([`Tenancy`], with its types).
//!
//! Every other part of the contract takes an organization's [`OrgKey`], the store's internal key;
//! only the public id (`org_…`) and the name are ever shown.

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;
use stele_core::time::Millis;

use crate::{OrgKey, Result};

#[async_trait]
pub trait Tenancy: Send + Sync {
    async fn create_org(&self, name: &str) -> Result<Organization>;
    /// Finds an organization by its public id (`org_…`) or its name.
    async fn find_org(&self, id_or_name: &str) -> Result<Organization>;
    async fn list_orgs(&self) -> Result<Vec<Organization>>;

    async fn create_api_key(&self, org: OrgKey, key: NewApiKey) -> Result<ApiKeyInfo>;
    /// Revokes a key by its public id (`key_…`). Revoking twice is not an error.
    async fn revoke_api_key(&self, key_id: &str) -> Result<ApiKeyInfo>;
    async fn list_api_keys(&self, org: OrgKey) -> Result<Vec<ApiKeyInfo>>;
    /// The live (unrevoked) key whose secret hashes to `hash`, with its organization.
    async fn authenticate(&self, hash: &KeyHash) -> Result<Option<ApiKeyInfo>>;

    /// The organization's settings ([`OrgSettings::default`] until some are stored).
    async fn settings(&self, org: OrgKey) -> Result<OrgSettings>;
    async fn put_settings(&self, org: OrgKey, settings: &OrgSettings) -> Result<()>;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    #[serde(skip)]
    pub key: OrgKey,
    pub id: String,
    pub name: String,
    pub created_at: Millis,
}

/// What an API key may do. `admin` implies every other scope.
///
/// The print log's scopes carry the console's permission names (`printlog.update.own`, …), so
/// a key and a member are granted the print log in the same words. A key's "own" prints are
/// those whose `created_by_username` is the key's name (docs/print-log.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Scope {
    #[serde(rename = "ingest")]
    Ingest,
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "export")]
    Export,
    #[serde(rename = "admin")]
    Admin,
    /// Reclassify the print log rows the key owns.
    #[serde(rename = "printlog.update.own")]
    PrintlogUpdateOwn,
    /// Reclassify any print log row.
    #[serde(rename = "printlog.update.all")]
    PrintlogUpdateAll,
    /// Delete the print log rows the key owns.
    #[serde(rename = "printlog.delete.own")]
    PrintlogDeleteOwn,
    /// Delete any print log row, and clear the log.
    #[serde(rename = "printlog.delete.all")]
    PrintlogDeleteAll,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::Ingest,
        Scope::Read,
        Scope::Export,
        Scope::Admin,
        Scope::PrintlogUpdateOwn,
        Scope::PrintlogUpdateAll,
        Scope::PrintlogDeleteOwn,
        Scope::PrintlogDeleteAll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Export => "export",
            Scope::Admin => "admin",
            Scope::PrintlogUpdateOwn => "printlog.update.own",
            Scope::PrintlogUpdateAll => "printlog.update.all",
            Scope::PrintlogDeleteOwn => "printlog.delete.own",
            Scope::PrintlogDeleteAll => "printlog.delete.all",
        }
    }

    /// Parses `ingest,read,export,admin` (and the print log's scopes).
    pub fn parse_list(s: &str) -> Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let scope = Scope::ALL
                .into_iter()
                .find(|x| x.as_str() == part)
                .ok_or_else(|| {
                    format!(
                        "unknown scope `{part}`; use {}",
                        Scope::ALL.map(Scope::as_str).join(", ")
                    )
                })?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            return Err("no scope given".into());
        }
        scopes.sort();
        Ok(scopes)
    }

    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// SHA-256 of an API key's secret. Keys are long random strings, so a fast hash is the right
/// tool (a password hash would only slow every request); the secret itself is never stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(..)")
    }
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub hash: KeyHash,
    /// The first characters of the secret, kept to help people tell keys apart.
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyInfo {
    pub id: String,
    #[serde(skip)]
    pub org: OrgKey,
    pub org_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub prefix: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

impl ApiKeyInfo {
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

/// An organization's settings. Stored as one JSON document per organization, so that a setting
/// added later needs no migration: each field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OrgSettings {
    /// How many days entries are kept; `None` keeps them forever.
    #[serde(default = "default_retention_days")]
    pub retention_days: Option<u32>,
    /// Per-channel windows overriding `retention_days` (`None` keeps that channel forever).
    #[serde(default)]
    pub channel_retention_days: std::collections::BTreeMap<String, Option<u32>>,
    /// Whether events sent to the ingest endpoints are recorded. Off, they are answered but not
    /// stored; Stele's own entries (sign-ins, settings changes, exports) are recorded regardless.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// The networks (CIDR, or single addresses) the read APIs and the console accept requests
    /// from, in canonical form (`stele_server::net::Cidr`); empty accepts every address.
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
}

fn default_enabled() -> bool {
    true
}

/// Entries are kept a year unless an organization says otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 365;
/// No organization may keep entries for less than this.
pub const MIN_RETENTION_DAYS: u32 = 30;
/// The longest finite window (a hundred years); longer is "keep forever".
pub const MAX_RETENTION_DAYS: u32 = 36_500;

fn default_retention_days() -> Option<u32> {
    Some(DEFAULT_RETENTION_DAYS)
}

impl Default for OrgSettings {
    fn default() -> Self {
        OrgSettings {
            retention_days: default_retention_days(),
            channel_retention_days: Default::default(),
            enabled: default_enabled(),
            ip_allowlist: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_stored_before_a_field_existed_read_with_its_default() {
        let old: OrgSettings =
            serde_json::from_str(r#"{"retention_days": 90, "channel_retention_days": {}}"#)
                .unwrap();
        assert_eq!(
            old,
            OrgSettings {
                retention_days: Some(90),
                ..OrgSettings::default()
            }
        );
        assert!(old.enabled, "recording stays on");
        assert!(old.ip_allowlist.is_empty(), "every address allowed");
    }
}
