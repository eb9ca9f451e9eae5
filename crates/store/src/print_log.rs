//! The print log's stored form and its part of the store contract ([`PrintLog`]): a flat,
//! editable table of print events (the Bambuddy-compatible API of docs/print-log.md).
//!
//! Unlike audit entries, print log rows are mutable and deletable: their users reclassify a
//! print's status and failure cause, remove one row, or clear the whole log. What keeps that
//! honest is the trail: every change of the print log commits in the same transaction as the
//! audit entries that describe it ([`PrintAudit`]), so a change is never reported done without
//! its entry, and an entry never describes a change that did not happen.
//!
//! Ids are integers per organization, handed out from a counter that only grows: each
//! organization's log starts at 1, an id is never reused after a delete or a clear (an audit entry
//! naming print 42 names one print forever), and another organization's id names nothing here.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use stele_core::chain::SealedEvent;
use stele_core::time::Millis;

use crate::{OrgKey, PrintId, Result};

/// The print log's part of the store. Each change commits in one transaction with the audit
/// entries its [`PrintAudit`] builds; a store error means neither happened. Rows are looked up by
/// the organization and the id together, so another organization's id is `NotFound` (or `None`),
/// never its row.
#[async_trait]
pub trait PrintLog: Send + Sync {
    /// Adds a row with the organization's next id and returns it.
    async fn record_print(
        &self,
        org: OrgKey,
        fields: PrintFields,
        audit: PrintAudit,
    ) -> Result<Print>;

    /// The organization's row with this id.
    async fn print(&self, org: OrgKey, id: PrintId) -> Result<Option<Print>>;

    /// The rows `filter` matches, newest first (`created_at`, then id, descending), `limit` of
    /// them after skipping `offset`, with the number of matches in all.
    async fn list_prints(
        &self,
        org: OrgKey,
        filter: &PrintFilter,
        limit: u32,
        offset: u64,
    ) -> Result<PrintPage>;

    /// Counts and sums over the rows `filter` matches, from one consistent view of the log.
    async fn print_stats(&self, org: OrgKey, filter: &PrintFilter) -> Result<PrintStats>;

    /// Changes a row's status and/or failure reason and returns it as it was and as it is.
    /// When that changes nothing, nothing is written (and no audit entry). `NotFound` when the
    /// organization has no row with this id.
    async fn classify_print(
        &self,
        org: OrgKey,
        id: PrintId,
        classification: Classification,
        audit: PrintAudit,
    ) -> Result<(Print, Print)>;

    /// Removes one row and returns it. `NotFound` when the organization has no row with this id.
    async fn delete_print(&self, org: OrgKey, id: PrintId, audit: PrintAudit) -> Result<Print>;

    /// Removes every row of the organization's log and returns how many went. Nothing else is
    /// touched: not the trail, not the id counter (ids are never reused).
    async fn clear_prints(&self, org: OrgKey, audit: PrintAudit) -> Result<u64>;
}

/// The result of a print, as the seed's status badges list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrintStatus {
    Completed,
    Failed,
    Stopped,
    Cancelled,
    Skipped,
}

impl PrintStatus {
    pub const ALL: [PrintStatus; 5] = [
        PrintStatus::Completed,
        PrintStatus::Failed,
        PrintStatus::Stopped,
        PrintStatus::Cancelled,
        PrintStatus::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PrintStatus::Completed => "completed",
            PrintStatus::Failed => "failed",
            PrintStatus::Stopped => "stopped",
            PrintStatus::Cancelled => "cancelled",
            PrintStatus::Skipped => "skipped",
        }
    }

    /// Exactly one of the names above: the vocabulary is enforced as written (no case folding).
    pub fn parse(s: &str) -> Option<PrintStatus> {
        PrintStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// `completed, failed, stopped, cancelled, skipped`, for messages.
    pub fn names() -> String {
        PrintStatus::ALL.map(PrintStatus::as_str).join(", ")
    }
}

impl fmt::Display for PrintStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a print failed: the seed's canonical failure-cause vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureReason {
    AdhesionFailure,
    SpaghettiDetached,
    LayerShift,
    CloggedNozzle,
    FilamentRunout,
    Warping,
    Stringing,
    UnderExtrusion,
    PowerFailure,
    UserCancelled,
    Other,
}

impl FailureReason {
    pub const ALL: [FailureReason; 11] = [
        FailureReason::AdhesionFailure,
        FailureReason::SpaghettiDetached,
        FailureReason::LayerShift,
        FailureReason::CloggedNozzle,
        FailureReason::FilamentRunout,
        FailureReason::Warping,
        FailureReason::Stringing,
        FailureReason::UnderExtrusion,
        FailureReason::PowerFailure,
        FailureReason::UserCancelled,
        FailureReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::AdhesionFailure => "adhesionFailure",
            FailureReason::SpaghettiDetached => "spaghettiDetached",
            FailureReason::LayerShift => "layerShift",
            FailureReason::CloggedNozzle => "cloggedNozzle",
            FailureReason::FilamentRunout => "filamentRunout",
            FailureReason::Warping => "warping",
            FailureReason::Stringing => "stringing",
            FailureReason::UnderExtrusion => "underExtrusion",
            FailureReason::PowerFailure => "powerFailure",
            FailureReason::UserCancelled => "userCancelled",
            FailureReason::Other => "other",
        }
    }

    /// Exactly one of the names above (`""`, which clears a cause in the API, is not a cause).
    pub fn parse(s: &str) -> Option<FailureReason> {
        FailureReason::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The names, comma-separated, for messages.
    pub fn names() -> String {
        FailureReason::ALL.map(FailureReason::as_str).join(", ")
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a print log row says about a print. The server validates it (lengths, ranges, no NUL
/// characters); the store keeps it as given.
#[derive(Debug, Clone, PartialEq)]
pub struct PrintFields {
    /// When the row was logged: what the list sorts by (newest first) and what `date_from` and
    /// `date_to` select.
    pub created_at: Millis,
    pub status: PrintStatus,
    pub failure_reason: Option<FailureReason>,
    pub print_name: Option<String>,
    pub printer_id: Option<i64>,
    pub printer_name: Option<String>,
    pub started_at: Option<Millis>,
    pub completed_at: Option<Millis>,
    pub duration_seconds: Option<i64>,
    pub filament_type: Option<String>,
    pub filament_color: Option<String>,
    pub filament_used_grams: Option<f64>,
    pub cost: Option<f64>,
    pub energy_kwh: Option<f64>,
    pub energy_cost: Option<f64>,
    /// Who started the print: the "own" in the OWN/ALL permissions.
    pub created_by_username: Option<String>,
    pub archive_id: Option<i64>,
    /// A reference to the print's thumbnail (a path or URL in the recording system).
    pub thumbnail_path: Option<String>,
}

/// A stored print log row: its id within the organization, and what was recorded (with the
/// status and failure reason as they are now).
#[derive(Debug, Clone, PartialEq)]
pub struct Print {
    pub id: PrintId,
    pub fields: PrintFields,
}

/// A change of classification; `None` leaves that field as it is. `failure_reason: Some(None)`
/// clears the cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Classification {
    pub status: Option<PrintStatus>,
    pub failure_reason: Option<Option<FailureReason>>,
}

/// Which rows a list or the stats cover. Every condition present must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrintFilter {
    /// A case-insensitive substring of the print name (Unicode lower-casing, as Rust's
    /// `str::to_lowercase`).
    pub search: Option<String>,
    pub printer_id: Option<i64>,
    /// Exactly this username.
    pub created_by_username: Option<String>,
    pub status: Option<PrintStatus>,
    /// `created_at >= from`.
    pub from: Option<Millis>,
    /// `created_at < to` (exclusive, so a whole day is `[day, next day)`).
    pub to: Option<Millis>,
}

/// One page of the log, newest first (`created_at`, then id, descending), and how many rows
/// the filter matches in all.
#[derive(Debug, Clone, PartialEq)]
pub struct PrintPage {
    pub items: Vec<Print>,
    pub total: u64,
}

/// The print log's figures over the rows a filter matches, computed by the database.
#[derive(Debug, Clone, PartialEq)]
pub struct PrintStats {
    pub total: u64,
    /// Every status of [`PrintStatus::ALL`], in that order, with its count (zero included).
    pub by_status: Vec<(PrintStatus, u64)>,
    /// Every cause of [`FailureReason::ALL`], in that order, with how many rows carry it
    /// (whatever their status).
    pub by_failure_reason: Vec<(FailureReason, u64)>,
    /// Failed rows that carry no failure cause yet.
    pub unclassified_failures: u64,
    /// The sum of `duration_seconds` over the rows that have one.
    pub total_duration_seconds: i64,
    /// How many rows have a `duration_seconds` (the average divides by this).
    pub timed_prints: u64,
    /// Grams of filament per filament type, sorted by type; rows without a type count only in
    /// `total_filament_grams`.
    pub filament_grams_by_type: Vec<(String, f64)>,
    pub total_filament_grams: f64,
    pub total_cost: f64,
    pub total_energy_kwh: f64,
    pub total_energy_cost: f64,
}

impl PrintStats {
    /// Reads the stats query's row of sums, selected by both backends in this order: the total,
    /// a count per [`PrintStatus::ALL`], a count per [`FailureReason::ALL`], the unclassified
    /// failures, the sum and count of durations, then the filament, cost, energy and energy cost
    /// sums. `int(i)` and `real(i)` read column `i`. `filament_grams_by_type` is left empty for
    /// the backend's second query.
    pub fn from_sums<E>(
        int: impl Fn(usize) -> Result<i64, E>,
        real: impl Fn(usize) -> Result<f64, E>,
    ) -> Result<PrintStats, E> {
        let count = |i: usize| int(i).map(|n| n as u64);
        let mut i = 1;
        let mut by_status = Vec::with_capacity(PrintStatus::ALL.len());
        for status in PrintStatus::ALL {
            by_status.push((status, count(i)?));
            i += 1;
        }
        let mut by_failure_reason = Vec::with_capacity(FailureReason::ALL.len());
        for reason in FailureReason::ALL {
            by_failure_reason.push((reason, count(i)?));
            i += 1;
        }
        Ok(PrintStats {
            total: count(0)?,
            by_status,
            by_failure_reason,
            unclassified_failures: count(i)?,
            total_duration_seconds: int(i + 1)?,
            timed_prints: count(i + 2)?,
            filament_grams_by_type: vec![],
            total_filament_grams: real(i + 3)?,
            total_cost: real(i + 4)?,
            total_energy_kwh: real(i + 5)?,
            total_energy_cost: real(i + 6)?,
        })
    }

    /// The mean duration of the rows that have one, if any has.
    pub fn average_duration_seconds(&self) -> Option<f64> {
        (self.timed_prints > 0)
            .then(|| self.total_duration_seconds as f64 / self.timed_prints as f64)
    }
}

/// What a change of the print log did, as the store hands it to the [`PrintAudit`] that
/// describes it in the trail.
#[derive(Debug, Clone, Copy)]
pub enum PrintLogChange<'a> {
    /// A row was added.
    Recorded { print: &'a Print },
    /// A row's classification changed (`before` and `after` differ).
    Classified { before: &'a Print, after: &'a Print },
    /// One row was removed.
    Deleted { print: &'a Print },
    /// The organization's log was cleared: these rows (ids ascending) were removed.
    Cleared { ids: &'a [PrintId] },
}

/// Builds the audit entries of a print log change, sealed, from what the change did. The store
/// calls it inside the transaction that makes the change and appends what it returns in that
/// same transaction, so the change and its entries commit together or not at all. A backend
/// may run a transaction again after a conflict (PostgreSQL), so it may be called more than
/// once for one change: it must only build entries.
///
/// A change that changes nothing (a classification to the values a row already has, a clear
/// of an empty log) is not made, and this is not called.
pub type PrintAudit = Arc<dyn Fn(PrintLogChange<'_>) -> Vec<SealedEvent> + Send + Sync>;
