//! HTTP integration tests: each test starts the real server on port 0 over its own database
//! and drives it with an HTTP client. Every test is written once (a file per area) and runs on
//! both backends: module `sqlite` on the embedded database in a temporary directory, module
//! `postgres` on a fresh database of the local PostgreSQL server (`STELE_TEST_POSTGRES_URL` to
//! use another), dropped afterwards. Without a reachable PostgreSQL those tests fail; they never
//! skip.

// Each area file is compiled twice, once in each backend's module: that is the point.
#![allow(clippy::duplicate_mod)]

/// Which database a module's servers run on (each module sets its `BACKEND`).
#[allow(dead_code)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A module per backend holding every area's tests, compiled once for each.
macro_rules! suite {
    ($(#[$doc:meta])* $name:ident, $backend:ident) => {
        $(#[$doc])*
        #[path = "."]
        mod $name {
            pub const BACKEND: super::Backend = super::Backend::$backend;

            mod helpers;

            mod errors;
            mod export;
            mod export_jobs;
            mod ingest;
            mod integrity;
            mod isolation;
            mod limits;
            mod metrics;
            mod openapi;
            mod parameters;
            mod platform;
            mod policy;
            mod print_log;
            mod redaction;
            mod retention;
            mod retraced;
            mod retraced_viewer;
            mod search;
            mod streams;
            mod tenancy;
            mod viewer;
            mod workos;
        }
    };
}

suite!(
    /// Every HTTP test on the embedded SQLite database.
    sqlite,
    Sqlite
);
suite!(
    /// Every HTTP test on PostgreSQL.
    postgres,
    Postgres
);
