//! Organizations as a platform manages them: creating one ([`create`]), renaming it or changing
//! its external id ([`update`]), each checked the same way from every door and recorded both in
//! the organization's own trail and in the platform's (`organization.create`,
//! `organization.update`, channel `security`); deleting one with all it holds ([`delete`],
//! recorded in the platform's trail); and finding the organization a request names
//! ([`Directory`]), by its id or its external id, without a database read on the hot path.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use stele_core::time::Millis;
use stele_store::{NewOrganization, OrgUpdate, Organization, Store, StoreError};

use crate::trail::{self, By, activity};

/// The longest name and external id, in characters.
pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_EXTERNAL_ID_CHARS: usize = 256;

/// Why an organization could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    /// A field is not acceptable: the field (`name`, `external_id`) and why.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The name or the external id belongs to another organization.
    #[error("{0}")]
    Taken(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for OrgError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(message) => OrgError::Taken(message),
            other => OrgError::Store(other),
        }
    }
}

/// A name: 1 to 256 characters of one line.
pub fn check_name(name: &str) -> Result<String, OrgError> {
    let name = name.trim();
    let invalid = |message: &str| OrgError::Invalid {
        field: "name",
        message: message.into(),
    };
    if name.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid("must be at most 256 characters long"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("must be one line of text"));
    }
    Ok(name.to_string())
}

/// An external id: 1 to 256 characters, none of them whitespace or control characters (it is
/// sent in a header and in URLs), and not of the form of an organization id (`org_` and 32 hex
/// digits), which names organizations in the same places: such a reference that names no
/// organization is a mistake (or a deleted organization's id), never a new tenant.
pub fn check_external_id(external_id: &str) -> Result<String, OrgError> {
    let checked = check_reference(external_id)?;
    if stele_store::is_org_id(&checked) {
        return Err(OrgError::Invalid {
            field: "external_id",
            message: "must not have the form of an organization id (org_ and 32 hex digits)".into(),
        });
    }
    Ok(checked)
}

/// What any reference to an organization (its id or its external id) must be, as sent in a
/// header, a path or an event: 1 to 256 characters, no whitespace or control characters.
pub fn check_reference(reference: &str) -> Result<String, OrgError> {
    let invalid = |message: &str| OrgError::Invalid {
        field: "external_id",
        message: message.into(),
    };
    if reference.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if reference.chars().count() > MAX_EXTERNAL_ID_CHARS {
        return Err(invalid("must be at most 256 characters long"));
    }
    if reference
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid("must not contain spaces or control characters"));
    }
    Ok(reference.to_string())
}

/// Creates an organization and records it in its own trail and in the platform's.
pub async fn create(
    store: &dyn Store,
    new: NewOrganization,
    by: By,
    now: Millis,
) -> Result<Organization, OrgError> {
    let new = NewOrganization {
        name: check_name(&new.name)?,
        external_id: new
            .external_id
            .as_deref()
            .map(check_external_id)
            .transpose()?,
    };
    let org = store.create_organization(&new).await?;
    let event = activity::organization_created(by.actor, by.context, &org, now);
    record_twice(store, &org, event).await?;
    Ok(org)
}

/// Renames an organization or changes its external id, and records the change in its own trail
/// and in the platform's. Changing nothing records nothing.
pub async fn update(
    store: &dyn Store,
    org: &Organization,
    update: OrgUpdate,
    by: By,
    now: Millis,
) -> Result<Organization, OrgError> {
    let update = OrgUpdate {
        name: update.name.as_deref().map(check_name).transpose()?,
        external_id: match update.external_id {
            Some(Some(external_id)) => Some(Some(check_external_id(&external_id)?)),
            other => other,
        },
    };
    let unchanged = update.name.as_ref().is_none_or(|n| *n == org.name)
        && update
            .external_id
            .as_ref()
            .is_none_or(|e| *e == org.external_id);
    if unchanged {
        return Ok(org.clone());
    }
    let new = store.update_org(org.key, &update).await?;
    let event = activity::organization_updated(by.actor, by.context, org, &new, now);
    record_twice(store, &new, event).await?;
    Ok(new)
}

/// Deletes an organization with everything it holds (its trail, keys, members, settings, export
/// jobs, print log) and records it in the platform's trail with how many entries went. The
/// caller names the organization's id a second time (`confirm`), so that no slip deletes a
/// tenant: a mismatch is `Invalid` on `confirm`.
pub async fn delete(
    store: &dyn Store,
    directory: &Directory,
    org: &Organization,
    confirm: Option<&str>,
    by: By,
    now: Millis,
) -> Result<u64, OrgError> {
    if confirm != Some(org.id.as_str()) {
        return Err(OrgError::Invalid {
            field: "confirm",
            message: format!(
                "deleting an organization removes all its data; confirm with its id ({})",
                org.id
            ),
        });
    }
    let removed = store.delete_org(org.key).await?;
    directory.forget(org);
    let platform = directory.platform(store).await?;
    let event = activity::organization_deleted(by.actor, by.context, org, removed, now);
    trail::record(store, platform.key, event).await?;
    Ok(removed)
}

/// Finishes the deletions an interrupted server (or command) left half done.
pub async fn finish_deletions(store: &dyn Store) -> Result<usize, StoreError> {
    let unfinished = store.unfinished_deletions().await?;
    for org in &unfinished {
        store.delete_org(*org).await?;
    }
    Ok(unfinished.len())
}

/// Records an entry about `org` in its trail and in the platform's.
async fn record_twice(
    store: &dyn Store,
    org: &Organization,
    event: stele_core::NewEvent,
) -> Result<(), StoreError> {
    let platform = store.platform_org().await?;
    trail::record(store, org.key, event.clone()).await?;
    if platform.key != org.key {
        trail::record(store, platform.key, event).await?;
    }
    Ok(())
}

/// How long the directory trusts what it looked up: a rename or a new external id made by
/// another server (or the CLI) is seen within this time; this server's own changes at once.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// Finds the tenant organization a request names (its id `org_…` or its external id), keeping
/// what it found for a while so that naming an organization costs no database read per request.
/// It also knows the platform's own organization.
#[derive(Default)]
pub struct Directory {
    found: Mutex<HashMap<String, (Organization, Instant)>>,
    platform: OnceLock<Organization>,
}

impl Directory {
    pub fn new() -> Directory {
        Directory::default()
    }

    /// The tenant organization `reference` names, if any.
    pub async fn resolve(
        &self,
        store: &dyn Store,
        reference: &str,
    ) -> Result<Option<Organization>, StoreError> {
        if let Some(org) = self.cached(reference) {
            return Ok(Some(org));
        }
        let found = store.resolve_org(reference).await?;
        if let Some(org) = &found {
            self.remember(reference, org);
        }
        Ok(found)
    }

    /// [`resolve`](Directory::resolve), creating the organization when none has this reference
    /// and `create` allows it (the platform's auto-create setting): its name and external id are
    /// the reference. Recorded as any creation is.
    pub async fn resolve_or_create(
        &self,
        store: &dyn Store,
        reference: &str,
        create: bool,
        by: By,
        now: Millis,
    ) -> Result<Option<Organization>, OrgError> {
        if let Some(org) = self.resolve(store, reference).await? {
            return Ok(Some(org));
        }
        if !create {
            return Ok(None);
        }
        let external_id = check_external_id(reference)?;
        let mut name = external_id.clone();
        for n in 2.. {
            let new = NewOrganization {
                name: name.clone(),
                external_id: Some(external_id.clone()),
            };
            match self::create(store, new, by.clone(), now).await {
                Ok(org) => {
                    self.remember(reference, &org);
                    return Ok(Some(org));
                }
                // Another request made it meanwhile: use that one.
                Err(OrgError::Taken(_)) if store.resolve_org(reference).await?.is_some() => {
                    return Ok(self.resolve(store, reference).await?);
                }
                // The name belongs to another organization: try the next.
                Err(OrgError::Taken(_)) if n < 100 => name = format!("{external_id}-{n}"),
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    /// The platform's own organization.
    pub async fn platform(&self, store: &dyn Store) -> Result<Organization, StoreError> {
        if let Some(org) = self.platform.get() {
            return Ok(org.clone());
        }
        let org = store.platform_org().await?;
        Ok(self.platform.get_or_init(|| org).clone())
    }

    /// Forgets what is known of an organization (after this server changed it).
    pub fn forget(&self, org: &Organization) {
        let mut found = self.found.lock().expect("directory lock");
        found.retain(|_, (o, _)| o.key != org.key);
    }

    fn cached(&self, reference: &str) -> Option<Organization> {
        let found = self.found.lock().expect("directory lock");
        found
            .get(reference)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(org, _)| org.clone())
    }

    fn remember(&self, reference: &str, org: &Organization) {
        let mut found = self.found.lock().expect("directory lock");
        // A bound on what a flood of made-up references could make it hold.
        if found.len() >= 100_000 {
            found.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        found.insert(reference.to_string(), (org.clone(), Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use stele_store::{NewOrganization, OrgUpdate, Tenancy};
    use stele_store_sqlite::SqliteStore;

    use super::*;

    #[test]
    fn an_external_id_never_has_the_form_of_an_organization_id() {
        let id_like = "org_01a246bd964e7697ba53412241afbebb";
        assert!(check_reference(id_like).is_ok());
        assert!(matches!(
            check_external_id(id_like),
            Err(OrgError::Invalid {
                field: "external_id",
                ..
            })
        ));
        // Only the exact form: other texts that start the same way are anyone's.
        for fine in [
            "org_",
            "org_42",
            "org_01A246BD964E7697BA53412241AFBEBB",
            "org-acme",
        ] {
            assert_eq!(check_external_id(fine).unwrap(), fine);
        }
    }

    /// The directory answers a name it has seen from memory: a change made behind its back (by
    /// another server, say) is not seen until it forgets, which is what "no database read per
    /// request" looks like from outside.
    #[tokio::test]
    async fn a_resolved_name_is_answered_from_memory_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("stele.db")).unwrap();
        let acme = store
            .create_organization(&NewOrganization {
                name: "Acme".into(),
                external_id: Some("tenant-42".into()),
            })
            .await
            .unwrap();
        let directory = Directory::new();
        for reference in ["tenant-42", acme.id.as_str()] {
            let found = directory.resolve(&store, reference).await.unwrap().unwrap();
            assert_eq!((found.key, found.name.as_str()), (acme.key, "Acme"));
        }

        let rename = OrgUpdate {
            name: Some("Acme Renamed".into()),
            external_id: None,
        };
        store.update_org(acme.key, &rename).await.unwrap();
        for reference in ["tenant-42", acme.id.as_str()] {
            let found = directory.resolve(&store, reference).await.unwrap().unwrap();
            assert_eq!(found.name, "Acme", "{reference} was read again");
        }

        directory.forget(&acme);
        let found = directory
            .resolve(&store, "tenant-42")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.name, "Acme Renamed");
        // A name no organization has is not remembered: creating it later is seen at once.
        assert!(
            directory
                .resolve(&store, "tenant-43")
                .await
                .unwrap()
                .is_none()
        );
        store
            .update_org(
                acme.key,
                &OrgUpdate {
                    name: None,
                    external_id: Some(Some("tenant-43".into())),
                },
            )
            .await
            .unwrap();
        let found = directory
            .resolve(&store, "tenant-43")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.key, acme.key);
    }
}
