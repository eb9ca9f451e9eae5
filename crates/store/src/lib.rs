//! The storage contract every Stele backend implements ([`Store`]), its error type, and the
//! conformance suite ([`conformance`]) that each backend runs against itself.
//!
//! Construction and migrations are not part of the trait: each backend has its own `open`, and the
//! server picks one from the database URL. Handlers only ever see `Arc<dyn Store>`.

pub mod chain_check;
pub mod conformance;
pub mod print_log;
pub mod record;
pub mod rows;
mod types;

pub use print_log::*;
pub use types::*;

use async_trait::async_trait;
use stele_core::Entry;
use stele_core::chain::Salt;
use stele_core::checkpoint::{PublicKey, SignedCheckpoint};
use stele_core::filter::{EventFilter, PageRequest};
use stele_core::merkle::Hash;
use stele_core::time::Millis;

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
    #[error("storage error: {0}")]
    Other(String),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // --- organizations and keys -------------------------------------------------------------

    async fn create_org(&self, name: &str) -> Result<Organization>;
    /// Finds an organization by its public id (`org_…`) or its name.
    async fn find_org(&self, id_or_name: &str) -> Result<Organization>;
    async fn list_orgs(&self) -> Result<Vec<Organization>>;

    async fn create_api_key(&self, org: OrgId, key: NewApiKey) -> Result<ApiKeyInfo>;
    /// Revokes a key by its public id (`key_…`). Revoking twice is not an error.
    async fn revoke_api_key(&self, key_id: &str) -> Result<ApiKeyInfo>;
    async fn list_api_keys(&self, org: OrgId) -> Result<Vec<ApiKeyInfo>>;
    /// The live (unrevoked) key whose secret hashes to `hash`, with its organization.
    async fn authenticate(&self, hash: &KeyHash) -> Result<Option<ApiKeyInfo>>;

    // --- the trail ---------------------------------------------------------------------------

    /// Commits the events durably, all or none, assigning ids and gap-free `seq` numbers.
    /// Returns only after the transaction is synced to disk.
    async fn append(&self, org: OrgId, request: AppendRequest) -> Result<AppendOutcome>;

    /// One page of entries, newest first.
    async fn list(&self, org: OrgId, page: &PageRequest) -> Result<Page>;

    /// The same page as stored rows, unparsed, and without counting the matches: for walking a
    /// whole result page by page (export), where the parsing is the encoder's (on its own
    /// thread, and only as far as its format needs) and a count would be paid again on every
    /// page for nothing. A backend may serve it from connections set up for scans (SQLite: a
    /// small page cache, apart from the interactive reads').
    async fn list_rows(&self, org: OrgId, page: &PageRequest) -> Result<rows::RowPage>;

    /// How many entries match, exact if counting is cheap, otherwise a lower bound (`false`).
    /// This is the count [`Store::list`] returns with each page.
    async fn count(&self, org: OrgId, filter: &EventFilter) -> Result<(u64, bool)>;

    async fn get(&self, org: OrgId, id: &str) -> Result<Option<Entry>>;

    /// Entries sharing a correlation id, newest first, at most `limit`.
    async fn correlated(
        &self,
        org: OrgId,
        correlation_id: &str,
        limit: usize,
    ) -> Result<Vec<Entry>>;

    async fn facets(&self, org: OrgId) -> Result<Facets>;

    // --- integrity -----------------------------------------------------------------------------

    /// Signed checkpoints, newest first, at most `limit`.
    async fn checkpoints(&self, org: OrgId, limit: usize) -> Result<Vec<SignedCheckpoint>>;

    /// The key ids (`SignedCheckpoint::key_id`) that signed each organization's newest
    /// checkpoint, each once, sorted. Empty before the first checkpoint. A server checks it at
    /// startup: servers sharing one database must share one signing key, or `verify` fails.
    async fn checkpoint_key_ids(&self) -> Result<Vec<String>>;

    /// Records `key_id` as the key that signs this database's checkpoints, unless one is recorded
    /// already, and returns the recorded one. A server compares it with its own key at startup:
    /// two servers that start at once on an empty database with different keys both find no
    /// checkpoint, but only one of them can claim the database.
    async fn claim_signing_key(&self, key_id: &str) -> Result<String>;

    /// Signs a checkpoint now for every organization with entries since its last one; returns
    /// how many were made. Without a signing key, none are.
    async fn checkpoint_now(&self) -> Result<usize>;

    /// Called once the server has stopped taking requests: signs the final checkpoints and
    /// leaves the storage tidy for the next start (SQLite folds its write-ahead log away).
    async fn shutdown(&self) -> Result<()>;

    /// Replaces the person's identity with the pseudonym in every entry that names them (as actor
    /// id or email) and records the erasure, in one transaction. The chain still verifies.
    async fn erase_actor(&self, org: OrgId, erasure: Erasure) -> Result<ErasureOutcome>;

    /// The signed checkpoint at exactly this `seq`, if one was made there.
    async fn checkpoint_at(&self, org: OrgId, seq: i64) -> Result<Option<SignedCheckpoint>>;

    /// The entry hashes of `seq` 1 to `up_to` in order: the leaves of the Merkle tree.
    async fn chain_hashes(&self, org: OrgId, up_to: i64) -> Result<Vec<Hash>>;

    /// The salted digest standing in for an entry's personal fields, and the salt (gone once the
    /// entry was erased).
    async fn personal_digest(&self, org: OrgId, seq: i64) -> Result<Option<(Hash, Option<Salt>)>>;

    /// Recomputes the organization's chain from its entries and checks every checkpoint (their
    /// signatures with `key`, when given). Stops at the first problem.
    async fn verify(&self, org: OrgId, key: Option<&PublicKey>) -> Result<VerifyReport>;

    // --- settings and retention ----------------------------------------------------------------

    /// The organization's settings ([`OrgSettings::default`] until some are stored).
    async fn settings(&self, org: OrgId) -> Result<OrgSettings>;
    async fn put_settings(&self, org: OrgId, settings: &OrgSettings) -> Result<()>;

    /// Entries that `cutoffs` expire, oldest occurrence first, at most `limit`, starting after
    /// `resume_after` (0 for the first batch), with the chain values an archive keeps.
    async fn expired_entries(
        &self,
        org: OrgId,
        cutoffs: &Cutoffs,
        resume_after: i64,
        limit: usize,
    ) -> Result<ExpiredBatch>;

    /// Deletes the entries with these `seq`s that `cutoffs` expire (others are left alone), in
    /// short transactions (a backend whose writes exclude each other, such as SQLite, splits the
    /// batch so ingest is never held up for long; each part is atomic), keeping each one's place in the chain (its `seq` and hash) so
    /// that the chain, checkpoints and proofs of the entries that remain still verify. This is
    /// the only path that removes entries. Returns how many were removed per channel.
    async fn prune_entries(
        &self,
        org: OrgId,
        cutoffs: &Cutoffs,
        seqs: &[i64],
    ) -> Result<RemovedPerChannel>;

    /// Claims the scheduled job `name` for its run due at `due`: true for exactly one caller
    /// per due time, however many servers share the database.
    async fn claim_scheduled_run(&self, name: &str, due: Millis) -> Result<bool>;

    // --- export jobs -----------------------------------------------------------------------------
    //
    // Export jobs (`POST /v1/exports`) keep their state here, so that any server sharing the
    // database can answer a poll. The file itself lives in the data directory of the server that
    // wrote it; the store only knows about it.

    /// Records a new pending job for the organization and returns it with its `exp_…` id.
    async fn create_export_job(&self, org: OrgId, job: NewExportJob) -> Result<ExportJob>;

    /// The organization's job with this id; another organization's job is `None`.
    async fn export_job(&self, org: OrgId, id: &str) -> Result<Option<ExportJob>>;

    /// The runner's sign of life for a pending job. False when the job is no longer pending
    /// (a sweep declared it interrupted, say): the runner should stop.
    async fn touch_export_job(&self, id: &str, now: Millis) -> Result<bool>;

    /// Ends a pending job as ready or failed. False when it was no longer pending, and then
    /// nothing changed.
    async fn finish_export_job(&self, id: &str, outcome: ExportJobOutcome) -> Result<bool>;

    /// Records a download link of the job: only the SHA-256 of its token is stored.
    async fn add_export_link(&self, id: &str, token_hash: [u8; 32], now: Millis) -> Result<()>;

    /// The job with this id, if `token_hash` is one of its links (downloads carry no API key).
    async fn export_job_by_link(&self, id: &str, token_hash: [u8; 32])
    -> Result<Option<ExportJob>>;

    /// Expires ready jobs past their window, fails pending jobs whose runner went quiet, and
    /// forgets jobs that ended long ago (see [`ExportSweep`]).
    async fn sweep_export_jobs(&self, sweep: ExportSweep) -> Result<ExportSweepOutcome>;

    /// Ids of every job, of any organization, whose file may still be needed at `now`: pending
    /// jobs, and ready ones within their window. A server removes every other export file.
    async fn live_export_job_ids(&self, now: Millis) -> Result<Vec<String>>;

    // --- members and sessions --------------------------------------------------------------------
    //
    // Members sign in to the web console. The server hashes passwords (Argon2id) and session
    // tokens (SHA-256); the store keeps only the hashes. An email belongs to one member across
    // Stele (compared by [`email_key`]), because signing in names no organization; everything
    // else is per organization, and no organization sees another's members.

    /// Adds a member to the organization and returns it with its `mem_…` id. `Conflict` when a
    /// member (of any organization) has the same email.
    async fn create_member(&self, org: OrgId, member: NewMember) -> Result<Member>;

    /// The organization's member with this id; another organization's member is `None`.
    async fn member(&self, org: OrgId, id: &str) -> Result<Option<Member>>;

    /// The member with this email (compared by [`email_key`]), whatever their organization: how
    /// sign-in finds an account.
    async fn member_by_email(&self, email: &str) -> Result<Option<Member>>;

    /// The organization's members, oldest first.
    async fn list_members(&self, org: OrgId) -> Result<Vec<Member>>;

    /// Changes a member's role or disabled flag; `NotFound` when the organization has no member
    /// with this id.
    async fn update_member(&self, org: OrgId, id: &str, update: MemberUpdate) -> Result<Member>;

    /// Starts a session. `NotFound` when no member has the id.
    async fn create_session(&self, session: NewSession) -> Result<()>;

    /// The session whose token hashes to `token_hash`, if it is live at `now`: not revoked, not
    /// expired (`now < expires_at`), and its member not disabled.
    async fn session(&self, token_hash: &SessionHash, now: Millis) -> Result<Option<Session>>;

    /// Records that the session was used at `now` (`last_seen_at` only moves forward).
    async fn touch_session(&self, token_hash: &SessionHash, now: Millis) -> Result<()>;

    /// Ends the session (sign-out). True when this call revoked it; revoking twice, or a token
    /// that names no session, is not an error (false).
    async fn revoke_session(&self, token_hash: &SessionHash, now: Millis) -> Result<bool>;

    /// Deletes sessions that expired or were revoked before `ended_before`; returns how many.
    async fn forget_sessions(&self, ended_before: Millis) -> Result<u64>;

    // --- the print log ---------------------------------------------------------------------------
    //
    // An editable operational log, apart from the trail (see [`print_log`]). Each change commits
    // in one transaction with the audit entries its [`PrintAudit`] builds; a store error means
    // neither happened. Rows are looked up by the organization and the id together, so another
    // organization's id is `NotFound` (or `None`), never its row.

    /// Adds a row with the organization's next id and returns it.
    async fn record_print(
        &self,
        org: OrgId,
        fields: PrintFields,
        audit: PrintAudit,
    ) -> Result<Print>;

    /// The organization's row with this id.
    async fn print(&self, org: OrgId, id: i64) -> Result<Option<Print>>;

    /// The rows `filter` matches, newest first (`created_at`, then id, descending), `limit` of
    /// them after skipping `offset`, with the number of matches in all.
    async fn list_prints(
        &self,
        org: OrgId,
        filter: &PrintFilter,
        limit: u32,
        offset: u64,
    ) -> Result<PrintPage>;

    /// Counts and sums over the rows `filter` matches, from one consistent view of the log.
    async fn print_stats(&self, org: OrgId, filter: &PrintFilter) -> Result<PrintStats>;

    /// Changes a row's status and/or failure reason and returns it as it was and as it is.
    /// When that changes nothing, nothing is written (and no audit entry). `NotFound` when the
    /// organization has no row with this id.
    async fn classify_print(
        &self,
        org: OrgId,
        id: i64,
        classification: Classification,
        audit: PrintAudit,
    ) -> Result<(Print, Print)>;

    /// Removes one row and returns it. `NotFound` when the organization has no row with this id.
    async fn delete_print(&self, org: OrgId, id: i64, audit: PrintAudit) -> Result<Print>;

    /// Removes every row of the organization's log and returns how many went. Nothing else is
    /// touched: not the trail, not the id counter (ids are never reused).
    async fn clear_prints(&self, org: OrgId, audit: PrintAudit) -> Result<u64>;
}
