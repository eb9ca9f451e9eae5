//! `stele org`: create and list organizations.

use super::open::{open, open_existing};
use crate::DataDir;

pub async fn create(name: String, data: DataDir) -> anyhow::Result<()> {
    let org = open(&data).await?.create_org(&name).await?;
    println!("created organization {} ({})", org.name, org.id);
    Ok(())
}

pub async fn list(data: DataDir) -> anyhow::Result<()> {
    for org in open_existing(&data).await?.list_orgs().await? {
        println!("{}\t{}", org.id, org.name);
    }
    Ok(())
}
