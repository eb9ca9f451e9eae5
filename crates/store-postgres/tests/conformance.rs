//! The shared storage conformance suite, run against a fresh PostgreSQL database per test
//! (`common/mod.rs`: created for the test, dropped with it, and a clear failure, never a skip,
//! when the server cannot be reached).

mod common;

use std::sync::Arc;

use stele_store::Store;

/// A store on a database of its own, and the database, dropped with the guard.
async fn fresh_store() -> (Arc<dyn Store>, common::TestDatabase) {
    let (store, database, _) = common::fresh_store().await;
    (Arc::new(store), database)
}

stele_store::conformance_suite!(fresh_store());
