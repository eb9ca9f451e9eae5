//! `stele key`: create, list and revoke an organization's API keys. Creating and revoking are
//! `stele_service::access::api_keys`'s, as in the console.

use stele_core::time::now_millis;
use stele_service::access::api_keys;
use stele_service::trail::{By, activity};
use stele_store::Scope;

use super::open::{find_org, open_existing};
use crate::DataDir;

/// `org` is `None` for a platform key (`--platform`), which belongs to the platform's own
/// organization.
pub async fn create(
    org: Option<String>,
    platform: bool,
    scopes: String,
    name: String,
    data: DataDir,
) -> anyhow::Result<()> {
    let scopes = Scope::parse_list(&scopes)
        .and_then(|scopes| Scope::check_for(&scopes, platform).map(|()| scopes))
        .map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
    let store = open_existing(&data).await?;
    let org = match org {
        Some(org) if !platform => find_org(store.as_ref(), &org).await?,
        _ => store.platform_org().await?,
    };
    let now = now_millis();
    // The operator's doing: in the platform's trail too.
    let by = By::platform(
        activity::system_actor("stele key create"),
        activity::cli_context(),
    );
    let created = api_keys::create(store.as_ref(), org.key, &name, scopes, by, now).await?;
    eprintln!(
        "recorded as entry seq {} of {}",
        created.recorded.seq, org.name
    );
    eprintln!(
        "created key {} for {} with scopes {}; it is shown once:",
        created.info.id,
        org.name,
        Scope::join(&created.info.scopes)
    );
    println!("{}", created.secret);
    Ok(())
}

pub async fn list(org: String, data: DataDir) -> anyhow::Result<()> {
    let store = open_existing(&data).await?;
    let org = find_org(store.as_ref(), &org).await?;
    for k in store.list_api_keys(org.key).await? {
        let state = if k.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        };
        println!(
            "{}\t{}…\t{}\t{}\t{}",
            k.id,
            k.prefix,
            Scope::join(&k.scopes),
            state,
            k.name
        );
    }
    Ok(())
}

pub async fn revoke(key_id: String, data: DataDir) -> anyhow::Result<()> {
    let store = open_existing(&data).await?;
    let now = now_millis();
    let by = By::platform(
        activity::system_actor("stele key revoke"),
        activity::cli_context(),
    );
    let revoked = api_keys::revoke(store.as_ref(), &key_id, by, now)
        .await
        .map_err(|e| match e {
            stele_store::StoreError::NotFound => anyhow::anyhow!("no key with id {key_id}"),
            other => other.into(),
        })?;
    match revoked {
        api_keys::Revoked::Already(info) => println!("{} was revoked already", info.id),
        api_keys::Revoked::Now { info, recorded } => {
            println!("revoked {}", info.id);
            eprintln!("recorded as entry seq {} of {}", recorded.seq, info.org_id);
        }
    }
    Ok(())
}
