//! The HTTP integration tests of `tests/api`, run against PostgreSQL: each test gets a fresh
//! database on the local server (`STELE_TEST_POSTGRES_URL` to use another), dropped afterwards.
//! Without a reachable PostgreSQL these tests fail; they never skip.

#[path = "../api/helpers.rs"]
mod helpers;

pub const BACKEND: helpers::Backend = helpers::Backend::Postgres;

#[path = "../api/errors.rs"]
mod errors;
#[path = "../api/export.rs"]
mod export;
#[path = "../api/export_jobs.rs"]
mod export_jobs;
#[path = "../api/ingest.rs"]
mod ingest;
#[path = "../api/integrity.rs"]
mod integrity;
#[path = "../api/policy.rs"]
mod policy;
#[path = "../api/print_log.rs"]
mod print_log;
#[path = "../api/retention.rs"]
mod retention;
#[path = "../api/search.rs"]
mod search;
#[path = "../api/tenancy.rs"]
mod tenancy;
