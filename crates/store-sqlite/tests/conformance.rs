//! The shared storage conformance suite, run against a fresh SQLite file per test.

use std::sync::Arc;

use stele_core::checkpoint::SigningKey;
use stele_store::Store;
use stele_store_sqlite::{SqliteOptions, SqliteStore};

async fn fresh_store() -> Arc<dyn Store> {
    // The directory must outlive the store; leaking it keeps the file for the test's lifetime
    // and the OS temp cleaner removes it later.
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let options = SqliteOptions {
        signing_key: Some(SigningKey::from_seed(
            stele_store::conformance::TEST_SIGNING_SEED,
        )),
        ..SqliteOptions::default()
    };
    Arc::new(SqliteStore::open_with(&dir.join("stele.db"), options).expect("open store"))
}

stele_store::conformance_suite!(fresh_store());

/// The retention case again with every entry pruned in a transaction of its own, so that one
/// batch spans many slices (the writer's queue runs between them).
#[tokio::test]
async fn retention_prunes_a_batch_in_many_slices() {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let options = SqliteOptions {
        signing_key: Some(SigningKey::from_seed(
            stele_store::conformance::TEST_SIGNING_SEED,
        )),
        prune_slice: std::time::Duration::ZERO,
        ..SqliteOptions::default()
    };
    let store = Arc::new(SqliteStore::open_with(&dir.join("stele.db"), options).expect("open"));
    stele_store::conformance::retention_prunes_expired_entries_and_the_chain_still_verifies(store)
        .await;
}
