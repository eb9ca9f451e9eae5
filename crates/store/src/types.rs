use std::fmt;

use serde::Serialize;
use stele_core::Entry;
use stele_core::chain::SealedEvent;
use stele_core::filter::{Cursor, CursorDirection, PageRequest};
use stele_core::time::Millis;

/// A store's internal organization key. The public id (`org_…`) is what people see.
pub type OrgId = i64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    #[serde(skip)]
    pub key: OrgId,
    pub id: String,
    pub name: String,
    pub created_at: Millis,
}

/// What an API key may do. `admin` implies every other scope.
///
/// The print log's scopes carry the console's permission names (`printlog.update.own`, …), so
/// a key and a member are granted the print log in the same words. A key's "own" prints are
/// those whose `created_by_username` is the key's name (docs/print-log.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Scope {
    #[serde(rename = "ingest")]
    Ingest,
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "export")]
    Export,
    #[serde(rename = "admin")]
    Admin,
    /// Reclassify the print log rows the key owns.
    #[serde(rename = "printlog.update.own")]
    PrintlogUpdateOwn,
    /// Reclassify any print log row.
    #[serde(rename = "printlog.update.all")]
    PrintlogUpdateAll,
    /// Delete the print log rows the key owns.
    #[serde(rename = "printlog.delete.own")]
    PrintlogDeleteOwn,
    /// Delete any print log row, and clear the log.
    #[serde(rename = "printlog.delete.all")]
    PrintlogDeleteAll,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::Ingest,
        Scope::Read,
        Scope::Export,
        Scope::Admin,
        Scope::PrintlogUpdateOwn,
        Scope::PrintlogUpdateAll,
        Scope::PrintlogDeleteOwn,
        Scope::PrintlogDeleteAll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Export => "export",
            Scope::Admin => "admin",
            Scope::PrintlogUpdateOwn => "printlog.update.own",
            Scope::PrintlogUpdateAll => "printlog.update.all",
            Scope::PrintlogDeleteOwn => "printlog.delete.own",
            Scope::PrintlogDeleteAll => "printlog.delete.all",
        }
    }

    /// Parses `ingest,read,export,admin` (and the print log's scopes).
    pub fn parse_list(s: &str) -> Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let scope = Scope::ALL
                .into_iter()
                .find(|x| x.as_str() == part)
                .ok_or_else(|| {
                    format!(
                        "unknown scope `{part}`; use {}",
                        Scope::ALL.map(Scope::as_str).join(", ")
                    )
                })?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            return Err("no scope given".into());
        }
        scopes.sort();
        Ok(scopes)
    }

    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// SHA-256 of an API key's secret. Keys are long random strings, so a fast hash is the right
/// tool (a password hash would only slow every request); the secret itself is never stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(..)")
    }
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub hash: KeyHash,
    /// The first characters of the secret, kept to help people tell keys apart.
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyInfo {
    pub id: String,
    #[serde(skip)]
    pub org: OrgId,
    pub org_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub prefix: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

impl ApiKeyInfo {
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

/// A request to record events, with what idempotency needs.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// Validated events, sealed (salted personal digest and event digest computed) by the caller
    /// so that the writer only has to link them into the chain.
    pub events: Vec<SealedEvent>,
    /// The `Idempotency-Key` header: a retry of the whole request returns the original receipts.
    pub idempotency_key: Option<String>,
    /// A digest of the request body, so a key reused for a different request is refused.
    pub fingerprint: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Receipt {
    pub id: String,
    pub seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    pub receipts: Vec<Receipt>,
    /// True when every receipt came from an earlier request (nothing new was written).
    pub replayed: bool,
}

/// Idempotency records are kept at least this long (the issue asks for 24 hours).
pub const IDEMPOTENCY_RETENTION_MS: Millis = 48 * 3600 * 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Continues towards older entries.
    pub next_cursor: Option<Cursor>,
    /// Continues towards newer entries.
    pub prev_cursor: Option<Cursor>,
    pub total: u64,
    /// False when `total` is a lower bound (counting further would have slowed the page).
    pub total_exact: bool,
}

impl Page {
    /// Builds a page from the entries a store read in walking order (newest first for an older
    /// walk or the first page, oldest first for a newer walk), up to `limit + 1` of them: the
    /// extra one only says that more exist in that direction.
    pub fn from_window(
        mut entries: Vec<Entry>,
        request: &PageRequest,
        total: u64,
        total_exact: bool,
    ) -> Page {
        let direction = request
            .cursor
            .map_or(CursorDirection::Older, |c| c.direction);
        let more = entries.len() > request.limit;
        entries.truncate(request.limit);
        if direction == CursorDirection::Newer {
            entries.reverse();
        }
        let at = |e: &Entry, direction| Cursor {
            direction,
            occurred_at: e.event.occurred_at,
            seq: e.seq,
        };
        // Walking older from a cursor, newer entries exist (we came from them), and vice versa.
        let (older_exists, newer_exists) = match direction {
            CursorDirection::Older => (more, request.cursor.is_some()),
            CursorDirection::Newer => (true, more),
        };
        Page {
            next_cursor: entries
                .last()
                .filter(|_| older_exists)
                .map(|e| at(e, CursorDirection::Older)),
            prev_cursor: entries
                .first()
                .filter(|_| newer_exists)
                .map(|e| at(e, CursorDirection::Newer)),
            entries,
            total,
            total_exact,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Facets {
    pub actions: Vec<String>,
    pub detailed_actions: Vec<String>,
    pub entity_types: Vec<String>,
    pub channels: Vec<String>,
    pub actor_types: Vec<String>,
}

/// The outcome of recomputing an organization's chain and checking its checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub org_id: String,
    pub ok: bool,
    /// Entries checked.
    pub entries: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// Checkpoints whose signature and content were checked.
    pub checkpoints: u64,
    /// Entries removed by retention: only their place in the chain (`seq` and hash) is left.
    pub pruned_entries: u64,
    /// Every entry up to this `seq` was pruned: the chain's present part starts after it.
    pub pruned_up_to_seq: Option<i64>,
    /// The first checkpoint at or after `pruned_up_to_seq`: its signature and its agreement with
    /// the entries after the pruned part vouch for the hashes the pruned entries left behind.
    pub anchor_checkpoint_seq: Option<i64>,
    /// The first problem, in `seq` order.
    pub problem: Option<IntegrityProblem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntegrityProblem {
    pub seq: i64,
    pub kind: ProblemKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The entry's content no longer matches its hash.
    Changed,
    /// An entry the chain expects is not there.
    Missing,
    /// The entry belongs at another position in the chain.
    Reordered,
    /// A checkpoint's signature does not verify with the public key.
    BadSignature,
    /// A correctly signed checkpoint disagrees with the recomputed chain.
    CheckpointMismatch,
}

/// A request to erase one person's identity from an organization's entries (GDPR).
#[derive(Debug, Clone)]
pub struct Erasure {
    /// The actor id or email to erase.
    pub actor: String,
    pub pseudonym: String,
    /// The entry that records the erasure (see `stele_core::chain::erasure_record`).
    pub record: stele_core::NewEvent,
    pub salt: stele_core::chain::Salt,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureOutcome {
    /// Entries whose personal fields were replaced.
    pub erased_entries: u64,
    pub pseudonym: String,
    /// The entry recording the erasure.
    pub record: Receipt,
}

/// One entry leaving the database by retention, with the chain values an archive needs to prove
/// it later without the database: the entry's hash is
/// `chain::entry_hash(prev_hash, org, seq, id, recorded_at, chain::event_digest(event, personal_digest))`,
/// and while `salt` is kept, `Personal::of(event).digest(salt) == personal_digest`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetiredEntry {
    /// The organization's public id (`org_…`), which the chain hashes.
    pub org_id: String,
    pub entry: Entry,
    /// The hash of the entry before it in the chain (`seq - 1`; the genesis hash for `seq` 1).
    pub prev_hash: stele_core::merkle::Hash,
    pub hash: stele_core::merkle::Hash,
    pub personal_digest: stele_core::merkle::Hash,
    /// Gone once the entry's personal fields were erased.
    pub salt: Option<stele_core::chain::Salt>,
    pub erased: bool,
}

/// An organization's settings. Stored as one JSON document per organization, so that a setting
/// added later needs no migration: each field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OrgSettings {
    /// How many days entries are kept; `None` keeps them forever.
    #[serde(default = "default_retention_days")]
    pub retention_days: Option<u32>,
    /// Per-channel windows overriding `retention_days` (`None` keeps that channel forever).
    #[serde(default)]
    pub channel_retention_days: std::collections::BTreeMap<String, Option<u32>>,
    /// Whether events sent to the ingest endpoints are recorded. Off, they are answered but not
    /// stored; Stele's own entries (sign-ins, settings changes, exports) are recorded regardless.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// The networks (CIDR, or single addresses) the read APIs and the console accept requests
    /// from, in canonical form (`stele_server::net::Cidr`); empty accepts every address.
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
}

fn default_enabled() -> bool {
    true
}

/// Entries are kept a year unless an organization says otherwise.
pub const DEFAULT_RETENTION_DAYS: u32 = 365;
/// No organization may keep entries for less than this.
pub const MIN_RETENTION_DAYS: u32 = 30;
/// The longest finite window (a hundred years); longer is "keep forever".
pub const MAX_RETENTION_DAYS: u32 = 36_500;

fn default_retention_days() -> Option<u32> {
    Some(DEFAULT_RETENTION_DAYS)
}

impl Default for OrgSettings {
    fn default() -> Self {
        OrgSettings {
            retention_days: default_retention_days(),
            channel_retention_days: Default::default(),
            enabled: default_enabled(),
            ip_allowlist: Vec::new(),
        }
    }
}

/// Which entries a retention run removes: those that occurred before the cutoff of their channel.
/// `None` keeps a channel forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cutoffs {
    pub default: Option<Millis>,
    pub channels: std::collections::BTreeMap<String, Option<Millis>>,
}

const DAY_MS: Millis = 24 * 3600 * 1000;

impl Cutoffs {
    /// The cutoffs of `settings` at `now`.
    pub fn at(settings: &OrgSettings, now: Millis) -> Cutoffs {
        let cutoff = |days: Option<u32>| days.map(|d| now - Millis::from(d) * DAY_MS);
        Cutoffs {
            default: cutoff(settings.retention_days),
            channels: settings
                .channel_retention_days
                .iter()
                .map(|(channel, days)| (channel.clone(), cutoff(*days)))
                .collect(),
        }
    }

    pub fn for_channel(&self, channel: &str) -> Option<Millis> {
        match self.channels.get(channel) {
            Some(cutoff) => *cutoff,
            None => self.default,
        }
    }

    pub fn expires(&self, channel: &str, occurred_at: Millis) -> bool {
        self.for_channel(channel).is_some_and(|c| occurred_at < c)
    }

    /// The latest cutoff of any channel: nothing that occurred at or after it expires.
    pub fn latest(&self) -> Option<Millis> {
        self.channels
            .values()
            .chain(std::iter::once(&self.default))
            .flatten()
            .copied()
            .max()
    }
}

/// One batch of entries a retention run may remove, oldest occurrence first.
#[derive(Debug, Clone, Default)]
pub struct ExpiredBatch {
    pub entries: Vec<RetiredEntry>,
    /// Where the next batch starts (an opaque position in the store's occurrence order).
    pub resume_after: i64,
}

/// What [`crate::Store::prune_entries`] removed, per channel.
pub type RemovedPerChannel = std::collections::BTreeMap<String, u64>;

// --- export jobs ---------------------------------------------------------------------------------

/// Where an export job stands. `Expired` is stored by the sweep once the download window has
/// passed; until then a `Ready` job whose `expires_at` is past is expired all the same
/// ([`ExportJob::state_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportJobState {
    /// Created, running or waiting to run.
    Pending,
    /// The file is written and can be downloaded until `expires_at`.
    Ready,
    /// The job failed (`error` says why); no file is kept.
    Error,
    /// The download window passed and the file was (or is being) removed.
    Expired,
}

impl ExportJobState {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportJobState::Pending => "pending",
            ExportJobState::Ready => "ready",
            ExportJobState::Error => "error",
            ExportJobState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<ExportJobState> {
        [
            ExportJobState::Pending,
            ExportJobState::Ready,
            ExportJobState::Error,
            ExportJobState::Expired,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }
}

/// The error a pending job gets when the process running it stopped beating (see
/// [`ExportSweep::stale_before`]).
pub const EXPORT_INTERRUPTED: &str =
    "interrupted: the server running this export stopped before it finished; create a new export";

/// A new export job, as the server asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExportJob {
    /// `csv`, `json` or `ndjson`.
    pub format: String,
    /// The effective filters as a JSON object (text), as the export file and entry show them.
    pub filters: String,
    /// Which server process runs the job (its address and a random suffix), for operators.
    pub runner: String,
    /// Also the job's first heartbeat.
    pub created_at: Millis,
}

/// An export job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportJob {
    /// `exp_…`, assigned by the store.
    pub id: String,
    pub org: OrgId,
    pub format: String,
    pub filters: String,
    pub runner: String,
    pub state: ExportJobState,
    pub created_at: Millis,
    /// When the runner last said it is still working on the job.
    pub heartbeat_at: Millis,
    pub finished_at: Option<Millis>,
    /// Entries in the file (ready jobs).
    pub entries: Option<u64>,
    /// The file's size in bytes (ready jobs).
    pub bytes: Option<u64>,
    /// The end of the download window (ready jobs).
    pub expires_at: Option<Millis>,
    /// Why the job failed (error jobs).
    pub error: Option<String>,
}

impl ExportJob {
    /// The state at `now`: a ready job past its window is expired even before the sweep says so.
    pub fn state_at(&self, now: Millis) -> ExportJobState {
        match (self.state, self.expires_at) {
            (ExportJobState::Ready, Some(expires)) if expires <= now => ExportJobState::Expired,
            (state, _) => state,
        }
    }
}

/// How a job ended, as its runner reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportJobOutcome {
    Ready {
        entries: u64,
        bytes: u64,
        finished_at: Millis,
        expires_at: Millis,
    },
    Failed {
        message: String,
        finished_at: Millis,
    },
}

/// What one sweep of the export jobs does, with its times given by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSweep {
    /// Ready jobs whose `expires_at` is at or before this become expired.
    pub now: Millis,
    /// Pending jobs whose last heartbeat is before this become errors ([`EXPORT_INTERRUPTED`]).
    pub stale_before: Millis,
    /// Failed and expired jobs that ended before this are deleted, with their links.
    pub forget_before: Millis,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSweepOutcome {
    pub expired: u64,
    pub interrupted: u64,
    pub forgotten: u64,
}

// --- members and sessions ------------------------------------------------------------------------

/// What makes two member emails the same: trimmed and lowercased (Unicode), so `Ada@Example.com`
/// and `ada@example.com` are one account. Both backends keep this key with a unique index, so
/// they agree on what a duplicate is, and sign-in looks members up by it.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A member to add to an organization.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMember {
    /// As given (shown as typed); unique across Stele by [`email_key`].
    pub email: String,
    pub name: Option<String>,
    /// The role's name (`owner`, `admin`, …). The server knows what each role allows; the store
    /// keeps the name.
    pub role: String,
    /// The password's Argon2id hash as a PHC string (`$argon2id$v=19$…`), made by the server.
    /// The store never sees a password.
    pub password_hash: String,
    pub created_at: Millis,
}

impl fmt::Debug for NewMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewMember")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &"..")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A member of an organization: someone who signs in to the console.
#[derive(Clone, PartialEq, Eq)]
pub struct Member {
    /// `mem_…`, assigned by the store.
    pub id: String,
    pub org: OrgId,
    /// The organization's public id (`org_…`) and name, for the console's header.
    pub org_id: String,
    pub org_name: String,
    pub email: String,
    pub name: Option<String>,
    pub role: String,
    pub password_hash: String,
    pub created_at: Millis,
    /// A disabled member cannot sign in, and their sessions stop working.
    pub disabled: bool,
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &"..")
            .field("created_at", &self.created_at)
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// A change to a member; `None` leaves that field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberUpdate {
    pub role: Option<String>,
    pub disabled: Option<bool>,
}

/// SHA-256 of a session token. The token (32 random bytes) lives only in the browser's cookie;
/// like an API key it is long and random, so a fast hash is the right tool.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionHash(pub [u8; 32]);

impl fmt::Debug for SessionHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionHash(..)")
    }
}

/// A session to start for a member who just signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub token_hash: SessionHash,
    /// The member's public id (`mem_…`).
    pub member_id: String,
    /// Also the first `last_seen_at`.
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// A live session with the member it signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub member: Member,
    pub created_at: Millis,
    pub expires_at: Millis,
    /// When the member last used it (kept current by [`crate::Store::touch_session`]).
    pub last_seen_at: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_stored_before_a_field_existed_read_with_its_default() {
        let old: OrgSettings =
            serde_json::from_str(r#"{"retention_days": 90, "channel_retention_days": {}}"#)
                .unwrap();
        assert_eq!(
            old,
            OrgSettings {
                retention_days: Some(90),
                ..OrgSettings::default()
            }
        );
        assert!(old.enabled, "recording stays on");
        assert!(old.ip_allowlist.is_empty(), "every address allowed");
    }
}
