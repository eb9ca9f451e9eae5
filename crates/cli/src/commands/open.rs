//! Opening the store for an operator command, and finding an organization in it.

use std::sync::Arc;

use stele_server::Config;
use stele_store::Store;

use crate::DataDir;

/// Opens the configured database for an operator command (no signing key: the running server
/// signs checkpoints).
pub(crate) async fn open(data: &DataDir) -> anyhow::Result<Arc<dyn Store>> {
    open_with_key(data, None).await
}

/// Opens the store with the checkpoint signing key, for a command that signs checkpoints.
pub(crate) async fn open_with_key(
    data: &DataDir,
    key: Option<stele_core::checkpoint::SigningKey>,
) -> anyhow::Result<Arc<dyn Store>> {
    stele_server::app::backend::open(
        data.database_url.as_ref(),
        &data.data_dir,
        key,
        stele_server::app::backend::StoreTuning::default(),
    )
    .await
}

/// Like [`open`], but refuses to create an embedded database: an operator command pointed at a
/// mistyped directory must fail, not report on an empty new database.
pub(crate) async fn open_existing(data: &DataDir) -> anyhow::Result<Arc<dyn Store>> {
    open_existing_with_key(data, None).await
}

pub(crate) async fn open_existing_with_key(
    data: &DataDir,
    key: Option<stele_core::checkpoint::SigningKey>,
) -> anyhow::Result<Arc<dyn Store>> {
    if data.database_url.is_none() {
        let path = Config {
            data_dir: data.data_dir.clone(),
            ..Config::default()
        }
        .database_path();
        anyhow::ensure!(
            path.exists(),
            "no Stele database at {} (check --data-dir / STELE_DATA_DIR)",
            path.display()
        );
    }
    open_with_key(data, key).await
}

pub(crate) async fn find_org(
    store: &dyn Store,
    id_or_name: &str,
) -> anyhow::Result<stele_store::Organization> {
    store.find_org(id_or_name).await.map_err(|e| match e {
        stele_store::StoreError::NotFound => anyhow::anyhow!("no organization `{id_or_name}`"),
        other => other.into(),
    })
}
