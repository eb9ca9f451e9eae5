//! Log streams: an organization's trail delivered, entry by entry in `seq` order, to a receiver of
//! its own (a webhook, a syslog server, a NATS subject), with the delivery's place (the cursor)
//! kept here, so a restart resumes where it stopped ([`Streams`], with its types).
//!
//! The store keeps what a stream is (its `spec`, JSON text that `stele_service::streams` reads
//! and checks), where its delivery stands, and which server process delivers it (a lease, so that
//! several servers on one database deliver each stream from exactly one of them at a time). It
//! knows nothing of transports.

use async_trait::async_trait;
use serde::Serialize;
use stele_core::time::Millis;
use stele_core::{Entry, Seq};

use crate::{OrgKey, Result};

#[async_trait]
pub trait Streams: Send + Sync {
    /// Records a new active stream for the organization and returns it with its `str_…` id.
    async fn create_stream(&self, org: OrgKey, new: NewStream) -> Result<Stream>;

    /// The organization's streams, oldest first.
    async fn streams(&self, org: OrgKey) -> Result<Vec<Stream>>;

    /// The organization's stream with this id; another organization's stream is `None`.
    async fn stream(&self, org: OrgKey, id: &str) -> Result<Option<Stream>>;

    /// Changes a stream's configuration, state, cursor or secret version, and returns it as it
    /// is after. Every change moves its `revision` on, so that a delivery read under the old
    /// configuration cannot record its result over the new one ([`Streams::record_delivery`]).
    /// `NotFound` when the organization has no such stream.
    async fn change_stream(&self, org: OrgKey, id: &str, change: StreamChange) -> Result<Stream>;

    /// Deletes a stream; false when the organization had no such stream.
    async fn delete_stream(&self, org: OrgKey, id: &str) -> Result<bool>;

    /// Takes the lease of every active stream (of an organization not being deleted) that no
    /// other process holds (its lease free, or expired at `claim.now`), until `claim.until`, and
    /// renews `claim.owner`'s own leases that end before `claim.renew_before` (the others are
    /// left alone, so that a claim every second does not write every row). Returns every active
    /// stream `claim.owner` holds. Two processes claiming at once never both get one stream.
    async fn claim_streams(&self, claim: StreamClaim) -> Result<Vec<Stream>>;

    /// Gives up every lease `owner` holds (a server shutting down), so another process takes
    /// its streams over at once instead of when the leases expire.
    async fn release_streams(&self, owner: &str) -> Result<()>;

    /// Records how one delivery went, if `owner` still holds the stream's lease and the stream's
    /// revision is still `revision` (no configuration change, pause or rewind since the delivery
    /// read it); false, and nothing changed, otherwise.
    async fn record_delivery(
        &self,
        id: &str,
        owner: &str,
        revision: u64,
        report: DeliveryReport,
    ) -> Result<bool>;

    /// The organization's entries after `after`, in `seq` order, at most `limit`: what a stream
    /// delivers next. Entries removed by retention are not there (their `seq`s are skipped).
    async fn entries_after(&self, org: OrgKey, after: Seq, limit: usize) -> Result<Vec<Entry>>;

    /// [`Streams::entries_after`] for several organizations at once, each `(org, after, limit)`
    /// answered in its place: what a platform-wide stream's batch reads, in one read rather than
    /// one per organization.
    async fn entries_after_each(&self, wants: Vec<(OrgKey, Seq, usize)>)
    -> Result<Vec<Vec<Entry>>>;

    /// The `seq` of the organization's newest entry (0 before the first): where a stream that
    /// starts "from now" starts, and what its lag is counted against.
    async fn head_seq(&self, org: OrgKey) -> Result<Seq>;

    /// Where a platform-wide stream stands in each organization not being deleted, in the order
    /// of their keys: the organization's newest `seq` and the stream's cursor there (0 where it
    /// has delivered nothing yet). One read for every organization, so that the delivery finds
    /// the few that have new entries without asking each. Empty for an organization's stream.
    async fn stream_progress(&self, id: &str) -> Result<Vec<OrgProgress>>;

    /// When the oldest entry a platform-wide stream has yet to deliver was recorded, over every
    /// organization (what its lag in seconds is counted from); `None` when none waits. One
    /// statement, however many organizations are behind.
    async fn stream_oldest_waiting(&self, id: &str) -> Result<Option<Millis>>;
}

/// Whether a stream delivers. A stream that keeps failing is still `Active` (it retries, with
/// [`Stream::failures`] counting); `Paused` is a person's decision, or the receiver's refusal
/// (a 4xx other than 408 and 429), which retrying cannot fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    Active,
    Paused,
}

impl StreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Active => "active",
            StreamState::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Option<StreamState> {
        [StreamState::Active, StreamState::Paused]
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

/// A new stream, as the service asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStream {
    pub name: String,
    /// The stream's transport, target, filter and format, as JSON text (`stele_service::streams`).
    pub spec: String,
    pub start: StreamStart,
    pub created_at: Millis,
}

/// What a new stream delivers, and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStart {
    /// The entries of the organization it is created for, after this `seq` (the last counted as
    /// delivered: the organization's head for a stream "from now", or one before the first entry
    /// to back-fill).
    After(Seq),
    /// Every organization's entries (a platform's stream, [`Stream::platform_wide`]), each
    /// organization's with a cursor of its own: after its newest entry as the stream is created
    /// (`from_now`, the newest read in the same transaction, so no entry falls between), or from
    /// its first. Organizations made later are delivered from their first entry.
    EveryOrganization { from_now: bool },
}

/// Where a platform-wide stream stands in one organization ([`Streams::stream_progress`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgProgress {
    pub org: OrgKey,
    /// The organization's public id (`org_…`), which each delivered entry carries.
    pub org_id: String,
    /// The organization's newest `seq`.
    pub head: Seq,
    /// The last `seq` the stream delivered (or skipped by its filter) there.
    pub cursor: Seq,
}

impl OrgProgress {
    /// Entries after the cursor.
    pub fn behind(&self) -> u64 {
        (self.head.get() - self.cursor.get()).max(0) as u64
    }
}

/// A stream as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// `str_…`, assigned by the store.
    pub id: String,
    pub org: OrgKey,
    pub name: String,
    pub spec: String,
    pub state: StreamState,
    /// Why the stream is paused: a person paused it, or the receiver refused a delivery.
    pub paused_reason: Option<String>,
    /// Whether the stream delivers every organization's entries, not only its own
    /// organization's (a stream of the platform's own organization, [`StreamStart::EveryOrganization`]).
    /// Its cursors are then one per organization ([`Streams::stream_progress`]), and `cursor`
    /// is unused.
    pub platform_wide: bool,
    /// The last `seq` delivered (or skipped by the stream's filter): delivery goes on after it.
    pub cursor: Seq,
    /// Entries delivered since the stream was created.
    pub delivered: u64,
    /// Failed attempts since the last success (0: healthy).
    pub failures: u32,
    pub last_error: Option<String>,
    pub last_error_at: Option<Millis>,
    /// When entries were last delivered.
    pub last_delivery_at: Option<Millis>,
    /// No delivery is attempted before this (a back-off after a failure, or the receiver's
    /// `Retry-After`).
    pub retry_at: Option<Millis>,
    /// Which secret signs the stream's deliveries (secrets are derived, never stored: see
    /// `stele_service::streams`). Starts at 1; a rotation moves it on.
    pub secret_version: u32,
    /// Until when the previous secret's signature is sent beside the current one (a rotation's
    /// overlap, so a receiver can switch without losing a delivery).
    pub previous_secret_until: Option<Millis>,
    /// Moves on at every [`Streams::change_stream`].
    pub revision: u64,
    /// The process delivering the stream, and until when its lease runs.
    pub lease_owner: Option<String>,
    pub lease_until: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What [`Streams::change_stream`] changes: `None` leaves a part as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamChange {
    pub name: Option<String>,
    pub spec: Option<String>,
    /// A new state and its reason (for a pause). Resuming clears the failures and the back-off.
    pub state: Option<(StreamState, Option<String>)>,
    /// Moves the cursor (a back-fill from an earlier `seq`, or a skip ahead); a platform-wide
    /// stream's cursor in every organization.
    pub cursor: Option<Seq>,
    /// Rotates the secret: the version moves on, and the previous secret still signs until this
    /// time.
    pub rotate_secret: Option<Millis>,
    pub at: Millis,
}

/// A claim of stream leases ([`Streams::claim_streams`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamClaim {
    pub owner: String,
    /// Leases that end at or before this are free to take.
    pub now: Millis,
    /// The lease taken or renewed ends then.
    pub until: Millis,
    /// The owner's own leases that end before this are renewed.
    pub renew_before: Millis,
}

/// How one delivery went ([`Streams::record_delivery`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryReport {
    /// The receiver took every entry of each organization in `cursors` up to its `seq` there
    /// (`entries` of them were sent; the others the stream's filter skipped). An organization's
    /// stream names its own organization; a platform-wide stream's batch may name several, whose
    /// cursors then move together.
    Delivered {
        cursors: Vec<(OrgKey, Seq)>,
        entries: u64,
        at: Millis,
    },
    /// The attempt failed and will be retried at `retry_at`.
    Failed {
        error: String,
        at: Millis,
        retry_at: Millis,
    },
    /// The receiver refused in a way retrying cannot fix: the stream is paused with the reason.
    Refused { error: String, at: Millis },
}
