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

/// Every HTTP test on the embedded SQLite database.
#[path = "."]
mod sqlite {
    pub const BACKEND: super::Backend = super::Backend::Sqlite;

    #[path = "helpers.rs"]
    mod helpers;

    #[path = "errors.rs"]
    mod errors;
    #[path = "export.rs"]
    mod export;
    #[path = "export_jobs.rs"]
    mod export_jobs;
    #[path = "ingest.rs"]
    mod ingest;
    #[path = "integrity.rs"]
    mod integrity;
    #[path = "policy.rs"]
    mod policy;
    #[path = "print_log.rs"]
    mod print_log;
    #[path = "retention.rs"]
    mod retention;
    #[path = "search.rs"]
    mod search;
    #[path = "tenancy.rs"]
    mod tenancy;
}

/// Every HTTP test on PostgreSQL.
#[path = "."]
mod postgres {
    pub const BACKEND: super::Backend = super::Backend::Postgres;

    #[path = "helpers.rs"]
    mod helpers;

    #[path = "errors.rs"]
    mod errors;
    #[path = "export.rs"]
    mod export;
    #[path = "export_jobs.rs"]
    mod export_jobs;
    #[path = "ingest.rs"]
    mod ingest;
    #[path = "integrity.rs"]
    mod integrity;
    #[path = "policy.rs"]
    mod policy;
    #[path = "print_log.rs"]
    mod print_log;
    #[path = "retention.rs"]
    mod retention;
    #[path = "search.rs"]
    mod search;
    #[path = "tenancy.rs"]
    mod tenancy;
}
