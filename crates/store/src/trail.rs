//! The trail: appending entries (with idempotency), reading them back page by page, as rows
//! for an export, by correlation id and as facets, and erasing a person from them ([`Trail`],
//! with its types).

use async_trait::async_trait;
use serde::Serialize;
use stele_core::chain::SealedEvent;
use stele_core::filter::{Cursor, CursorDirection, EventFilter};
use stele_core::params::PageRequest;
use stele_core::{Entry, Seq};

use crate::{OrgKey, Result, rows};

#[async_trait]
pub trait Trail: Send + Sync {
    /// Commits the events durably, all or none, assigning ids and gap-free `seq` numbers.
    /// Returns only after the transaction is synced to disk.
    ///
    /// `org` is the organization the request is made for: its `Idempotency-Key` is recorded
    /// there, and every event without a target of its own ([`PreparedEvent::for_org`]) joins its
    /// trail. Events with a target join that organization's trail, in the same transaction, each
    /// organization's `seq` and chain kept on their own. A request naming an organization that
    /// does not exist is refused whole (`NotFound`).
    async fn append(&self, org: OrgKey, request: AppendRequest) -> Result<AppendOutcome>;

    /// One page of entries, newest first.
    async fn list(&self, org: OrgKey, page: &PageRequest) -> Result<Page>;

    /// The same page as stored rows, unparsed, and without counting the matches: for walking a
    /// whole result page by page (export), where the parsing is the encoder's (on its own
    /// thread, and only as far as its format needs) and a count would be paid again on every
    /// page for nothing. A backend may serve it from connections set up for scans (SQLite: a
    /// small page cache, apart from the interactive reads').
    async fn list_rows(&self, org: OrgKey, page: &PageRequest) -> Result<rows::RowPage>;

    /// How many entries match, exact if counting is cheap, otherwise a lower bound (`false`).
    /// This is the count [`Trail::list`] returns with each page.
    async fn count(&self, org: OrgKey, filter: &EventFilter) -> Result<(u64, bool)>;

    async fn get(&self, org: OrgKey, id: &str) -> Result<Option<Entry>>;

    /// Entries sharing a correlation id, newest first, at most `limit`.
    async fn correlated(
        &self,
        org: OrgKey,
        correlation_id: &str,
        limit: usize,
    ) -> Result<Vec<Entry>>;

    async fn facets(&self, org: OrgKey) -> Result<Facets>;

    /// Replaces the person with the pseudonym in every entry that mentions them
    /// (`stele_core::erase::erase_person`), reseals those entries and records the erasure, in
    /// one transaction; then removes what is left of the old values from the database's files
    /// (the clean-up the outcome times). The chain still verifies.
    async fn erase_person(&self, org: OrgKey, erasure: Erasure) -> Result<ErasureOutcome>;

    /// Replaces the named fields of one entry with `[REDACTED]`
    /// (`stele_core::erase::redact_fields`), reseals it and records the redaction, in one
    /// transaction, then cleans up as an erasure does. `NotFound` when the organization has no
    /// such entry; `Invalid` naming a path the entry does not hold.
    async fn redact(&self, org: OrgKey, redaction: Redaction) -> Result<RedactionOutcome>;
}

/// A request to record events, with what idempotency needs.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// Validated events, sealed and prepared by the caller ([`PreparedEvent`]) so that the
    /// writer only has to link them into the chain and write them. Each joins the trail of the
    /// organization the request is appended for, or of its own target (a platform's batch that
    /// spans organizations): one request, one transaction, whatever the organizations.
    pub events: Vec<PreparedEvent>,
    /// The `Idempotency-Key` header: a retry of the whole request returns the original receipts.
    /// Recorded under the organization the request is appended for, whatever its events'
    /// targets.
    pub idempotency_key: Option<String>,
    /// A digest of the request body, so a key reused for a different request is refused.
    pub fingerprint: [u8; 32],
}

/// An event as the writer takes it: sealed for the chain (salted personal digest, event digest)
/// and its stored `body` and `personal` columns already written as JSON text. All of that is done
/// on the caller's task (an HTTP request's, in parallel with others), so the single writer only
/// links the event into the chain and writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedEvent {
    pub sealed: SealedEvent,
    body: String,
    personal: String,
    /// The organization whose trail the event joins, when not the request's (see
    /// [`PreparedEvent::for_org`]).
    target: Option<OrgKey>,
}

impl PreparedEvent {
    pub fn new(sealed: SealedEvent) -> PreparedEvent {
        let (body, personal) = crate::record::stored_text(&sealed.event);
        PreparedEvent {
            sealed,
            body,
            personal,
            target: None,
        }
    }

    /// The event joins `org`'s trail instead of the trail of the organization its request is
    /// appended for. Its own idempotency key is then `org`'s, and its receipt says `org`.
    /// Nothing of the target is stored in the entry or its digest: the organization is where
    /// the entry is, not what it says.
    pub fn for_org(mut self, org: OrgKey) -> PreparedEvent {
        self.target = Some(org);
        self
    }

    /// The organization whose trail the event joins, when its request is appended for `home`.
    pub fn org_or(&self, home: OrgKey) -> OrgKey {
        self.target.unwrap_or(home)
    }

    /// The event's own target, if it has one ([`PreparedEvent::for_org`]).
    pub fn target(&self) -> Option<OrgKey> {
        self.target
    }

    /// The `body` column ([`crate::record::Body`] as JSON).
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The `personal` column (`Personal` as JSON).
    pub fn personal(&self) -> &str {
        &self.personal
    }
}

impl From<SealedEvent> for PreparedEvent {
    fn from(sealed: SealedEvent) -> PreparedEvent {
        PreparedEvent::new(sealed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub id: String,
    pub seq: Seq,
    /// The organization whose trail the entry joined, for an event that had a target of its own
    /// ([`PreparedEvent::for_org`]); `None` for the organization the request was appended for.
    /// Never serialized: it is the store's internal key, and a receipt is what clients are
    /// shown (the idempotency records keep it through [`crate::idempotency::encode_receipts`]).
    #[serde(skip)]
    pub org: Option<OrgKey>,
}

impl Receipt {
    /// The receipt of an entry in the organization the request was appended for.
    pub fn new(id: String, seq: Seq) -> Receipt {
        Receipt { id, seq, org: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    pub receipts: Vec<Receipt>,
    /// True when every receipt came from an earlier request (nothing new was written).
    pub replayed: bool,
}

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

/// A request to erase one person from an organization's entries (GDPR).
#[derive(Debug, Clone)]
pub struct Erasure {
    pub person: stele_core::erase::Person,
    pub pseudonym: String,
    /// The entry that records the erasure (see `stele_core::chain::erasure_record`).
    pub record: stele_core::NewEvent,
    pub salt: stele_core::chain::Salt,
}

/// How long removing the old values from the database's files took, once it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cleanup {
    pub finished_at: stele_core::time::Millis,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasureOutcome {
    /// Entries that were rewritten.
    pub erased_entries: u64,
    pub pseudonym: String,
    pub cleanup: Cleanup,
    /// The entry recording the erasure.
    pub record: Receipt,
}

/// A request to redact fields of one entry.
#[derive(Debug, Clone)]
pub struct Redaction {
    /// The entry's id.
    pub id: String,
    /// The fields, as `stele_core::erase::redact_fields` takes them.
    pub fields: Vec<String>,
    /// The entry that records the redaction (see `stele_core::chain::redaction_record`); the
    /// store fills in the entry's `seq`.
    pub record: stele_core::NewEvent,
    pub salt: stele_core::chain::Salt,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedactionOutcome {
    /// The redacted entry's `seq`.
    pub seq: Seq,
    /// The entry recording the redaction.
    pub record: Receipt,
    pub cleanup: Cleanup,
}
