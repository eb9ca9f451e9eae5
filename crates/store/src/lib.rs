//! The storage contract every Stele backend implements ([`Store`]), its error type, and the
//! conformance suite (`conformance`, behind the `testsuite` feature) that each backend runs
//! against itself.
//!
//! The contract is split by concern, one trait and its types per module: [`tenancy`]
//! (organizations, API keys, settings), [`trail`] (appending and reading entries, erasure),
//! [`integrity`] (checkpoints, proofs, verification), [`retention`], [`export_jobs`],
//! [`members`] (and sessions), [`print_log`], [`action_schemas`], [`retraced_viewer`] and
//! [`streams`] (log streams' configuration, cursors and leases). [`Store`] is all of them
//! together.
//!
//! Construction and migrations are not part of the contract: each backend has its own `open`, and
//! the server picks one from the database URL. Handlers only ever see `Arc<dyn Store>`.

pub mod action_schemas;
pub mod chain_check;
/// Test-only code: a backend enables `testsuite` in its `[dev-dependencies]`, so no product
/// library carries it (this crate's own tests use its fixtures too).
#[cfg(any(test, feature = "testsuite"))]
pub mod conformance;
pub mod export_jobs;
pub mod idempotency;
pub mod ids;
pub mod integrity;
pub mod members;
pub mod metrics;
pub mod print_log;
pub mod proofs;
pub mod record;
pub mod retention;
pub mod retraced_viewer;
pub mod rewrite;
pub mod rows;
pub mod streams;
pub mod tenancy;
pub mod trail;

pub use action_schemas::*;
pub use export_jobs::*;
pub use idempotency::IDEMPOTENCY_RETENTION_MS;
pub use ids::{OrgKey, PrintId, is_org_id};
pub use integrity::*;
pub use members::*;
pub use print_log::*;
pub use retention::*;
pub use retraced_viewer::*;
pub use streams::*;
pub use tenancy::*;
pub use trail::*;

/// The traits of the contract, for callers to bring their methods into scope:
/// `use stele_store::prelude::*;`.
pub mod prelude {
    pub use crate::{
        ActionSchemas, ExportJobs, Integrity, Members, PrintLog, Retention, RetracedViewer, Store,
        Streams, Tenancy, Trail,
    };
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong in a store, in terms a handler can map to a status without knowing the
/// backend. Driver errors become `Other` with their text kept for the log, never for the client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated: a duplicate name, or an idempotency key replayed with a
    /// different request.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or is shutting down; the caller may retry.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// An erasure or redaction committed (and is recorded), but a transaction older than it still
    /// runs, so the database's files still hold the old values: the message says what is left
    /// and who finishes it.
    #[error("clean-up pending: {0}")]
    CleanupPending(String),
    #[error("storage error: {0}")]
    Other(String),
}

/// The whole storage contract, one trait per concern. Callers hold `Arc<dyn Store>`; to call a
/// method, bring its trait into scope (`use stele_store::prelude::*;`). Every type that
/// implements all the parts is a `Store`.
pub trait Store:
    Tenancy
    + Trail
    + Integrity
    + Retention
    + ExportJobs
    + PrintLog
    + Members
    + ActionSchemas
    + RetracedViewer
    + Streams
    + 'static
{
}

impl<T> Store for T where
    T: Tenancy
        + Trail
        + Integrity
        + Retention
        + ExportJobs
        + PrintLog
        + Members
        + ActionSchemas
        + RetracedViewer
        + Streams
        + 'static
{
}
