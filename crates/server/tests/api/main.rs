//! HTTP integration tests: each test starts the real server on port 0 over its own SQLite
//! directory and drives it with an HTTP client.

mod helpers;

/// This binary runs every HTTP test on the embedded SQLite database; `api_postgres` runs the
/// same tests on PostgreSQL.
pub const BACKEND: helpers::Backend = helpers::Backend::Sqlite;

mod errors;
mod export;
mod export_jobs;
mod ingest;
mod integrity;
mod policy;
mod print_log;
mod retention;
mod search;
mod tenancy;
