//! The shared storage conformance suite, run against a fresh SQLite file per test.

use std::sync::Arc;

use stele_core::checkpoint::SigningKey;
use stele_store::Store;
use stele_store_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

/// A store on a file in a directory of its own, and the directory, removed when it is dropped.
fn store_in_temp_dir(options: SqliteOptions) -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteOptions {
        signing_key: Some(SigningKey::from_seed(
            stele_store::conformance::TEST_SIGNING_SEED,
        )),
        ..options
    };
    let store = SqliteStore::open_with(&dir.path().join("stele.db"), options).expect("open store");
    (Arc::new(store), dir)
}

stele_store::conformance_suite!(async { store_in_temp_dir(SqliteOptions::default()) });

/// The retention case again with every entry pruned in a transaction of its own, so that one
/// batch spans many slices (the writer's queue runs between them).
#[tokio::test]
async fn retention_prunes_a_batch_in_many_slices() {
    let (store, _dir) = store_in_temp_dir(SqliteOptions {
        prune_slice: std::time::Duration::ZERO,
        ..SqliteOptions::default()
    });
    stele_store::conformance::retention_prunes_expired_entries_and_the_chain_still_verifies(store)
        .await;
}
