//! Tenancy: the organizations a store holds, the API keys that act for them, and each
//! organization's settings ([`Tenancy`], with its types).
//!
//! Every other part of the contract takes an organization's [`OrgKey`], the store's internal key;
//! only the public id (`org_…`) and the name are ever shown.

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;
use stele_core::time::Millis;

use crate::{OrgKey, Result, StoreError};

#[async_trait]
pub trait Tenancy: Send + Sync {
    /// Creates an organization; a name or an external id already taken is a `Conflict` naming it.
    async fn create_organization(&self, new: &NewOrganization) -> Result<Organization>;
    /// Creates an organization with a name alone (the CLI's `org create`, tests).
    async fn create_org(&self, name: &str) -> Result<Organization> {
        self.create_organization(&NewOrganization {
            name: name.to_string(),
            external_id: None,
        })
        .await
    }
    /// Finds an organization by its public id (`org_…`), its external id or its name, in that
    /// order of preference (the CLI's `--org`).
    async fn find_org(&self, id_or_name: &str) -> Result<Organization>;
    /// The tenant organization a request names: by public id or external id, never by name, and
    /// never the platform's own organization. `None` when there is none.
    async fn resolve_org(&self, reference: &str) -> Result<Option<Organization>>;
    /// Every organization, the platform's own included, oldest first.
    async fn list_orgs(&self) -> Result<Vec<Organization>>;
    /// One page of tenant organizations, oldest first (the organizations API). `NotFound` when
    /// `after` names no organization (a deleted one still holds its place): starting over instead
    /// would send a client paging with a mistyped cursor round in circles.
    async fn page_orgs(&self, request: &OrgPageRequest) -> Result<Vec<Organization>>;
    /// Renames an organization or changes its external id.
    async fn update_org(&self, org: OrgKey, update: &OrgUpdate) -> Result<Organization>;
    /// The platform's own organization, whose trail records what is done to organizations and
    /// which platform keys belong to; made on first use.
    async fn platform_org(&self) -> Result<Organization>;
    /// Deletes an organization and everything it holds: its trail (entries, pruned entries,
    /// checkpoints, chain), keys, members and sessions, settings, export jobs, print log. It is
    /// marked deleted first, so that no request names it and its keys and members stop working at
    /// once; its data then goes in batches (other writes go on between them); its row stays as
    /// a tombstone. Calling it again after an interruption finishes the job. Returns how many
    /// entries were removed. `NotFound` for no such organization; `Conflict` for the platform's.
    async fn delete_org(&self, org: OrgKey) -> Result<u64>;
    /// Organizations whose deletion began but did not finish (the server finishes them).
    async fn unfinished_deletions(&self) -> Result<Vec<OrgKey>>;

    async fn create_api_key(&self, org: OrgKey, key: NewApiKey) -> Result<ApiKeyInfo>;
    /// Revokes a key by its public id (`key_…`). Revoking twice is not an error; the answer says
    /// whether this call was the one that revoked it.
    async fn revoke_api_key(&self, key_id: &str) -> Result<RevokedKey>;
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
    /// The platform's own id for this tenant, unique, by which requests may name it.
    pub external_id: Option<String>,
    pub created_at: Millis,
    /// Whether this is the platform's own organization ([`Tenancy::platform_org`]).
    #[serde(skip)]
    pub platform: bool,
}

/// An organization to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganization {
    pub name: String,
    pub external_id: Option<String>,
}

/// What an update changes: `None` leaves a field as it is; `external_id: Some(None)` removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgUpdate {
    pub name: Option<String>,
    pub external_id: Option<Option<String>>,
}

/// A page of the organizations list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgPageRequest {
    /// Continue after this organization (its public id).
    pub after: Option<String>,
    pub limit: usize,
    /// Only the organization with this external id.
    pub external_id: Option<String>,
}

/// The name the platform's own organization gets when it is made: `platform`, or `platform-2`,
/// `platform-3`, … if an organization already has that name (`taken` says).
pub fn platform_org_name(mut taken: impl FnMut(&str) -> Result<bool>) -> Result<String> {
    let mut name = "platform".to_string();
    for n in 2.. {
        if !taken(&name)? {
            break;
        }
        name = format!("platform-{n}");
    }
    Ok(name)
}

/// A uniqueness conflict on creating or updating an organization, said in a person's words: which
/// of the name or the external id is taken. The backend's error text names the column or its
/// constraint (`orgs.external_id`, `orgs_external_id_key`). Other errors pass through.
pub fn org_conflict(error: StoreError, name: &str, external_id: Option<&str>) -> StoreError {
    match error {
        StoreError::Conflict(text) if text.contains("external_id") => {
            StoreError::Conflict(format!(
                "an organization with the external id `{}` already exists",
                external_id.unwrap_or_default()
            ))
        }
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("an organization named `{name}` already exists"))
        }
        other => other,
    }
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
    /// Manage organizations, their keys and members (platform keys).
    #[serde(rename = "organizations")]
    Organizations,
    /// Mint viewer tokens for the embedded audit log.
    #[serde(rename = "viewer")]
    Viewer,
}

impl Scope {
    pub const ALL: [Scope; 10] = [
        Scope::Ingest,
        Scope::Read,
        Scope::Export,
        Scope::Admin,
        Scope::PrintlogUpdateOwn,
        Scope::PrintlogUpdateAll,
        Scope::PrintlogDeleteOwn,
        Scope::PrintlogDeleteAll,
        Scope::Organizations,
        Scope::Viewer,
    ];

    /// The scopes an organization's own key may hold: every one but `organizations`, which only a
    /// platform key can use.
    pub const FOR_ORGANIZATION: [Scope; 9] = [
        Scope::Ingest,
        Scope::Read,
        Scope::Export,
        Scope::Admin,
        Scope::PrintlogUpdateOwn,
        Scope::PrintlogUpdateAll,
        Scope::PrintlogDeleteOwn,
        Scope::PrintlogDeleteAll,
        Scope::Viewer,
    ];

    /// Whether a key of this kind (platform or organization) may hold every scope in `scopes`;
    /// the error names the first one it may not.
    pub fn check_for(scopes: &[Scope], platform: bool) -> Result<(), String> {
        match scopes
            .iter()
            .find(|s| !platform && !Scope::FOR_ORGANIZATION.contains(s))
        {
            Some(scope) => Err(format!(
                "`{}` is a platform key's scope; an organization's key cannot hold it",
                scope.as_str()
            )),
            None => Ok(()),
        }
    }

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
            Scope::Organizations => "organizations",
            Scope::Viewer => "viewer",
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

/// What [`Tenancy::revoke_api_key`] did: the key as it is now, and whether this call revoked it
/// (`false`: it was revoked before, by another request, server or the CLI). Decided by the
/// database's own update, not by comparing times, which two revocations within one millisecond
/// would tie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedKey {
    pub key: ApiKeyInfo,
    pub by_this_call: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyInfo {
    pub id: String,
    #[serde(skip)]
    pub org: OrgKey,
    pub org_id: String,
    /// A platform key: it belongs to the platform's organization and names the organization it
    /// acts for per request.
    pub platform: bool,
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
    /// The origins (`https://app.example.com`) whose pages may frame this organization's
    /// embedded audit log, besides those the server allows for every organization.
    #[serde(default)]
    pub embed_origins: Vec<String>,
    /// The embedded viewer's look for this organization's viewer tokens, field by field under
    /// what a token sets. In the platform organization's settings: the default of every
    /// organization (`stele_service::access::viewer` resolves token, organization, platform).
    #[serde(default)]
    pub embed_theme: EmbedTheme,
    /// What the ingest redacts from this organization's events (sensitive field names, and
    /// whether values that look like secrets are). Settings stored before the field existed
    /// read the default rules.
    #[serde(default)]
    pub redaction: stele_core::redact::RedactionRules,
}

/// The embedded viewer's look: each field optional, so that a token, an organization and the
/// platform can each set some and leave the rest to the next ([`EmbedTheme::or`]). Values are
/// checked where they come in (`stele_service::access::viewer::check_theme`) and so are safe to
/// write into a stylesheet as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EmbedTheme {
    /// `light`, `dark` or `auto` (the browser's preference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// A colour as `#rgb` or `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accent: Option<String>,
    /// A font family list: letters, digits, spaces, commas, hyphens and quotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub font: Option<String>,
    /// Corner radius in pixels, 0 to 24.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<u8>,
}

impl EmbedTheme {
    /// This theme, with each field it leaves unset taken from `fallback`.
    pub fn or(&self, fallback: &EmbedTheme) -> EmbedTheme {
        EmbedTheme {
            mode: self.mode.clone().or_else(|| fallback.mode.clone()),
            accent: self.accent.clone().or_else(|| fallback.accent.clone()),
            font: self.font.clone().or_else(|| fallback.font.clone()),
            radius: self.radius.or(fallback.radius),
        }
    }
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
            embed_origins: Vec::new(),
            embed_theme: EmbedTheme::default(),
            redaction: Default::default(),
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
        assert!(old.embed_origins.is_empty(), "no page may frame the viewer");
        assert_eq!(
            old.embed_theme,
            EmbedTheme::default(),
            "the page's own look"
        );
        assert_eq!(
            old.redaction,
            stele_core::redact::RedactionRules::default(),
            "the default redaction rules"
        );
    }

    #[test]
    fn a_theme_takes_each_field_it_leaves_unset_from_the_next() {
        let token = EmbedTheme {
            accent: Some("#0a7".into()),
            ..EmbedTheme::default()
        };
        let platform = EmbedTheme {
            mode: Some("dark".into()),
            accent: Some("#123456".into()),
            radius: Some(0),
            ..EmbedTheme::default()
        };
        assert_eq!(
            token.or(&platform),
            EmbedTheme {
                mode: Some("dark".into()),
                accent: Some("#0a7".into()),
                font: None,
                radius: Some(0),
            }
        );
        assert_eq!(EmbedTheme::default().or(&platform), platform);
    }
}
