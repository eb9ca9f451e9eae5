//! Retention: finding the entries an organization's windows expire, removing them while keeping
//! their place in the chain, and claiming scheduled runs once across servers ([`Retention`],
//! with its types). The windows themselves are settings ([`crate::OrgSettings`]).

use async_trait::async_trait;
use serde::Serialize;
use stele_core::time::Millis;
use stele_core::{Entry, Seq};

use crate::{OrgKey, OrgSettings, Result};

#[async_trait]
pub trait Retention: Send + Sync {
    /// Entries that `cutoffs` expire, oldest occurrence first, at most `limit`, starting after
    /// `resume_after` (0 for the first batch), with the chain values an archive keeps.
    async fn expired_entries(
        &self,
        org: OrgKey,
        cutoffs: &Cutoffs,
        resume_after: i64,
        limit: usize,
    ) -> Result<ExpiredBatch>;

    /// Deletes the entries with these `seq`s that `cutoffs` expire (others are left alone), in
    /// short transactions (a backend whose writes exclude each other, such as SQLite, splits the
    /// batch so ingest is never held up for long; each part is atomic), keeping each one's place
    /// in the chain (its `seq` and hash) so that the chain, checkpoints and proofs of the entries
    /// that remain still verify. This is the only path that removes entries. Returns how many
    /// were removed per channel.
    async fn prune_entries(
        &self,
        org: OrgKey,
        cutoffs: &Cutoffs,
        seqs: &[Seq],
    ) -> Result<RemovedPerChannel>;

    /// Claims the scheduled job `name` for its run due at `due`: true for exactly one caller
    /// per due time, however many servers share the database.
    async fn claim_scheduled_run(&self, name: &str, due: Millis) -> Result<bool>;
}

/// One entry leaving the database by retention, with the chain values an archive needs to prove
/// it later without the database: the entry's hash is
/// `chain::entry_hash(prev_hash, org, seq, id, recorded_at, event_digest)` with the event digest
/// that `stele_core::seal::check(event, personal_digest, seal)` gives.
#[derive(Debug, Clone, PartialEq)]
pub struct RetiredEntry {
    /// The organization's public id (`org_…`), which the chain hashes.
    pub org_id: String,
    pub entry: Entry,
    /// The hash of the entry before it in the chain (`seq - 1`; the genesis hash for `seq` 1).
    pub prev_hash: stele_core::merkle::Hash,
    pub hash: stele_core::merkle::Hash,
    pub personal_digest: stele_core::merkle::Hash,
    /// What checks its erasable values (`stele_core::seal`).
    pub seal: stele_core::seal::Seal,
    pub erased: bool,
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

/// What [`Retention::prune_entries`] removed, per channel.
pub type RemovedPerChannel = std::collections::BTreeMap<String, u64>;
