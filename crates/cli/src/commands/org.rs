//! `stele org`: create, list and delete organizations. Creating and deleting are
//! `stele_service::organizations`'s, as over the API, and recorded the same way.

use stele_core::time::now_millis;
use stele_service::organizations;
use stele_service::trail::{By, activity};
use stele_store::NewOrganization;

use super::open::{find_org, open, open_existing};
use crate::DataDir;

pub async fn create(
    name: String,
    external_id: Option<String>,
    data: DataDir,
) -> anyhow::Result<()> {
    let store = open(&data).await?;
    let by = By::platform(
        activity::system_actor("stele org create"),
        activity::cli_context(),
    );
    let new = NewOrganization { name, external_id };
    let org = organizations::create(store.as_ref(), new, by, now_millis()).await?;
    match &org.external_id {
        Some(external_id) => println!(
            "created organization {} ({}, external id {external_id})",
            org.name, org.id
        ),
        None => println!("created organization {} ({})", org.name, org.id),
    }
    Ok(())
}

/// One line per organization: id, name, external id (or `-`); the platform's own is marked.
pub async fn list(data: DataDir) -> anyhow::Result<()> {
    for org in open_existing(&data).await?.list_orgs().await? {
        let external_id = org.external_id.as_deref().unwrap_or("-");
        let platform = if org.platform { "\t(platform)" } else { "" };
        println!("{}\t{}\t{external_id}{platform}", org.id, org.name);
    }
    Ok(())
}

pub async fn delete(org: String, confirm: String, data: DataDir) -> anyhow::Result<()> {
    let store = open_existing(&data).await?;
    let found = find_org(store.as_ref(), &org).await?;
    let by = By::platform(
        activity::system_actor("stele org delete"),
        activity::cli_context(),
    );
    let directory = organizations::Directory::new();
    let removed = organizations::delete(
        store.as_ref(),
        &directory,
        &found,
        Some(&confirm),
        by,
        now_millis(),
    )
    .await?;
    eprintln!(
        "deleted organization {} ({}) and its {removed} entries",
        found.name, found.id
    );
    Ok(())
}
