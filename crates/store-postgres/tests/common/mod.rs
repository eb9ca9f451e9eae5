//! Store helpers for this crate's tests; the database part is `stele_store_postgres::testing`.

#![allow(dead_code)]

use stele_core::checkpoint::SigningKey;
use stele_store_postgres::{PgOptions, PgStore, redact_url};

pub use stele_store_postgres::testing::*;

/// Options with the conformance suite's signing key.
pub fn test_options() -> PgOptions {
    PgOptions {
        signing_key: Some(SigningKey::from_seed(
            stele_store::conformance::TEST_SIGNING_SEED,
        )),
        ..PgOptions::default()
    }
}

/// A store on a database of its own; keep the [`TestDatabase`] alive as long as the store.
pub async fn fresh_store() -> (PgStore, TestDatabase, String) {
    let (database, url) = TestDatabase::create().await;
    let store = PgStore::connect(&url, test_options())
        .await
        .unwrap_or_else(|e| panic!("opening the store on {}: {e}", redact_url(&url)));
    (store, database, url)
}

/// A plain client on a test database, for looking under the store.
pub async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
}
