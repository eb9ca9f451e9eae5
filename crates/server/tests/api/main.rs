//! HTTP integration tests: each test starts the real server on port 0 over its own SQLite
//! directory and drives it with an HTTP client.

mod helpers;

mod errors;
mod ingest;
mod integrity;
mod search;
mod tenancy;
