//! Time partitions: `entries` and `entry_keys` are partitioned by range of `pk`, one partition
//! per calendar month (UTC). Because `pk` is `occurred_ms << 21 | n`, a `pk` range is a time range:
//! a query for recent entries is planned over the recent partitions only (the newest-first scan
//! of a range-partitioned table walks the partitions newest first and stops at the page's end),
//! and a month that retention has emptied goes as a whole.
//!
//! Partitions are made ahead of time: on start and on every upkeep tick, the current month and the
//! next [`MONTHS_AHEAD`] exist. An event of a month that has no partition yet (a backfill of old
//! entries) gets its month created by the writer before the group that holds it is written.
//!
//! How a partition is made, and why that way:
//! - It is created as a plain table and then attached. `CREATE TABLE … PARTITION OF` would lock
//!   the whole `entries` table exclusively, stalling every reader and writer for the moment it
//!   takes; `ATTACH PARTITION` takes a lock that lets reads and inserts go on. The table is empty,
//!   so attaching checks no rows, and the parent's indexes and row triggers are copied onto it.
//! - A statement trigger refusing `TRUNCATE` is added to each partition: the parent's own trigger
//!   fires only when the parent is named.
//! - Several processes may try to create the same month at once, so creation runs under a
//!   transaction-scoped advisory lock and re-checks the catalog first.
//!
//! Retention empties months: once a month before the current one holds no entry of any
//! organization, its partitions are dropped ([`drop_empty`]). `DROP TABLE` of a partition locks
//! the parent exclusively, so it waits at most [`DROP_LOCK_TIMEOUT`] for readers and writers to
//! let go, and otherwise leaves the month for the next retention run. Each process remembers
//! which months exist; a process that drops a month forgets it, and a writer whose insert finds
//! no partition (another process dropped it) forgets the months of its group and runs it again,
//! which creates them anew (`writer.rs`).

use std::collections::BTreeSet;
use std::sync::Mutex;

use chrono::{DateTime, Datelike, NaiveDate};
use stele_core::time::Millis;

use crate::codec::pk_floor;
use crate::error::{R, is_lock_timeout, is_undefined_table};
use crate::pool::Conn;

/// The entries' columns no query filters, sorts or joins on, which `ANALYZE` skips (migration 16):
/// sampling their wide values was about half of what analysing a month cost.
pub const UNANALYSED_COLUMNS: [&str; 5] = ["body", "personal", "salt", "personal_digest", "hash"];

/// Months made ahead of the current one, so no insert ever waits for a partition in normal use.
pub const MONTHS_AHEAD: u32 = 2;

/// The advisory lock serialising partition creation across processes (`STELEPRT` in ASCII).
const PARTITION_LOCK: i64 = 0x5354_454c_4550_5254;

/// The partitioned tables, each given one partition per month.
const PARTITIONED: [&str; 2] = ["entries", "entry_keys"];

/// How long dropping an emptied month may wait for its locks before it gives up until the next
/// retention run. While it waits, new readers of `entries` queue behind it, so it is short.
pub const DROP_LOCK_TIMEOUT: &str = "100ms";

/// One calendar month (UTC), the unit of partitioning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    /// 1..=12
    month: u32,
}

impl Month {
    /// The month an instant falls in.
    pub fn of(ms: Millis) -> Month {
        let t = DateTime::from_timestamp_millis(ms).unwrap_or_default();
        Month {
            year: t.year(),
            month: t.month(),
        }
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The first millisecond of the month.
    pub fn start_ms(self) -> Millis {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map_or(0, |t| t.and_utc().timestamp_millis())
    }

    /// The `pk` range `[lo, hi)` holding the entries that occurred this month.
    pub fn pk_range(self) -> (i64, i64) {
        (pk_floor(self.start_ms()), pk_floor(self.next().start_ms()))
    }

    /// The partition's name for a partitioned table: `entries_p202611`.
    pub fn partition_of(self, table: &str) -> String {
        format!("{table}_p{:04}{:02}", self.year, self.month)
    }

    /// The month of one of `table`'s partitions, from its name.
    pub fn of_partition(table: &str, name: &str) -> Option<Month> {
        let digits = name.strip_prefix(table)?.strip_prefix("_p")?;
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (year, month) = (digits[..4].parse().ok()?, digits[4..].parse().ok()?);
        (1..=12).contains(&month).then_some(Month { year, month })
    }
}

/// Which months have partitions, as far as this process knows. Starts empty and learns from the
/// catalog the first time a month is asked for, so a month another process created is found.
#[derive(Default)]
pub struct Partitions {
    known: Mutex<BTreeSet<Month>>,
}

impl Partitions {
    /// Makes sure every month in `months` has its partitions, creating the missing ones.
    pub async fn ensure(&self, conn: &mut Conn, months: impl IntoIterator<Item = Month>) -> R<()> {
        let missing: BTreeSet<Month> = {
            let known = self.known.lock().expect("partition cache lock");
            months.into_iter().filter(|m| !known.contains(m)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        create(conn, &missing).await?;
        self.known
            .lock()
            .expect("partition cache lock")
            .extend(missing);
        Ok(())
    }

    /// Forgets `months`, whose partitions were dropped: the next [`Partitions::ensure`] of one
    /// of them looks in the catalog again (and makes them anew).
    pub fn forget(&self, months: impl IntoIterator<Item = Month>) {
        let mut known = self.known.lock().expect("partition cache lock");
        for month in months {
            known.remove(&month);
        }
    }

    /// Whether this process believes `month` has its partitions (for tests of the cache).
    #[cfg(test)]
    fn knows(&self, month: Month) -> bool {
        self.known
            .lock()
            .expect("partition cache lock")
            .contains(&month)
    }

    /// The current month and the next [`MONTHS_AHEAD`].
    pub async fn ensure_ahead(&self, conn: &mut Conn, now: Millis) -> R<()> {
        let mut month = Month::of(now);
        let mut months = vec![month];
        for _ in 0..MONTHS_AHEAD {
            month = month.next();
            months.push(month);
        }
        self.ensure(conn, months).await
    }
}

/// Creates the partitions of `months` that do not exist yet, in one transaction.
async fn create(conn: &mut Conn, months: &BTreeSet<Month>) -> R<()> {
    let mut tx = conn.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
        .await?;
    for month in months {
        for table in PARTITIONED {
            let name = month.partition_of(table);
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM pg_class
                     WHERE relname = $1 AND relnamespace = current_schema()::regnamespace",
                    &[&name],
                )
                .await?
                .is_some();
            if exists {
                continue;
            }
            let (lo, hi) = month.pk_range();
            // Identifiers and bounds are made here from numbers, never from input.
            tx.batch_execute(&format!(
                "CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
                 ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi});
                 CREATE TRIGGER {name}_untruncatable BEFORE TRUNCATE ON {name}
                     FOR EACH STATEMENT EXECUTE FUNCTION stele_refuse('audit entries are immutable');"
            ))
            .await?;
            if table == "entries" {
                // What migration 16 set on the parent, which a new partition does not inherit.
                let columns = UNANALYSED_COLUMNS
                    .iter()
                    .map(|c| format!("ALTER COLUMN {c} SET STATISTICS 0"))
                    .collect::<Vec<_>>()
                    .join(", ");
                tx.batch_execute(&format!("ALTER TABLE {name} {columns}"))
                    .await?;
            }
        }
    }
    tx.commit().await
}

/// Months before `now`'s that may have been emptied by retention, as the statistics see them
/// (no live row in the month's `entries` partition). A cheap hint, checked exactly before
/// anything is dropped: it lets a month whose drop timed out be retried by a later run, by any
/// process, even when that run prunes nothing in it.
pub async fn emptied_months(conn: &mut Conn, now: Millis) -> R<BTreeSet<Month>> {
    let rows = conn
        .query(
            "SELECT c.relname::text FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
             WHERE i.inhparent = 'entries'::regclass AND coalesce(s.n_live_tup, 0) = 0",
            &[],
        )
        .await?;
    let current = Month::of(now);
    let mut out = BTreeSet::new();
    for row in rows {
        let name: String = row.try_get(0)?;
        if let Some(month) = Month::of_partition("entries", &name).filter(|m| *m < current) {
            out.insert(month);
        }
    }
    Ok(out)
}

/// Drops the partitions of every month in `months` that is before `now`'s month and holds no
/// entry of any organization, and makes this process forget them. Returns the months dropped.
///
/// Each month is first checked without a lock (a month with entries costs one probe); then, in
/// a transaction that waits at most [`DROP_LOCK_TIMEOUT`] for its locks, the parents are locked
/// (before their partitions, the order in which writers and `DROP TABLE` lock them), the month
/// is checked again, and both partitions go. A month whose locks did not come in time is left
/// for the next run. Rows of `entry_keys` can only be there for entries of the same month, so an
/// empty `entries` partition makes the month's `entry_keys` partition droppable too.
pub async fn drop_empty(
    conn: &mut Conn,
    partitions: &Partitions,
    months: &BTreeSet<Month>,
    now: Millis,
) -> R<Vec<Month>> {
    let current = Month::of(now);
    let mut dropped = Vec::new();
    for &month in months.iter().filter(|m| **m < current) {
        let entries = month.partition_of("entries");
        match holds_rows(conn, &entries).await? {
            Some(true) => continue,
            Some(false) => {}
            None => {
                // Already dropped (by another process, or an earlier run).
                partitions.forget([month]);
                continue;
            }
        }
        match drop_month(conn, month).await {
            Ok(true) => {
                partitions.forget([month]);
                dropped.push(month);
            }
            Ok(false) => {}
            Err(e) if is_lock_timeout(&e) => {
                tracing::info!(
                    partition = %entries,
                    "the emptied month's partitions are in use; dropping them is left for the \
                     next retention run"
                );
            }
            Err(e) => return Err(e),
        }
    }
    Ok(dropped)
}

/// Drops one month's partitions if it is still empty, under the locks [`drop_empty`] describes.
async fn drop_month(conn: &mut Conn, month: Month) -> R<bool> {
    let (entries, keys) = (
        month.partition_of("entries"),
        month.partition_of("entry_keys"),
    );
    let mut tx = conn.transaction().await?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'"))
        .await?;
    // Not while another process is making partitions (it re-checks the catalog under this lock).
    let ours: bool = tx
        .query_opt("SELECT pg_try_advisory_xact_lock($1)", &[&PARTITION_LOCK])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?
        .unwrap_or(false);
    if !ours {
        return Ok(false);
    }
    tx.batch_execute("LOCK TABLE ONLY entries, entry_keys IN ACCESS EXCLUSIVE MODE")
        .await?;
    if !tx_exists(&mut tx, &entries).await? {
        return Ok(false);
    }
    let keys_exist = tx_exists(&mut tx, &keys).await?;
    // Names are made here from numbers, never from input.
    let rows = tx
        .query_opt(&format!("SELECT 1 FROM {entries} LIMIT 1"), &[])
        .await?;
    if rows.is_some() {
        return Ok(false);
    }
    if keys_exist {
        tx.batch_execute(&format!("DROP TABLE {keys}")).await?;
    }
    tx.batch_execute(&format!("DROP TABLE {entries}")).await?;
    tx.commit().await?;
    Ok(true)
}

const EXISTS_SQL: &str = "SELECT 1 FROM pg_class
     WHERE relname = $1 AND relnamespace = current_schema()::regnamespace";

async fn tx_exists(tx: &mut crate::pool::Tx<'_>, name: &str) -> R<bool> {
    Ok(tx.query_opt(EXISTS_SQL, &[&name]).await?.is_some())
}

/// Whether a partition this module made holds any row (`None`: it is gone, dropped since).
async fn holds_rows(conn: &mut Conn, partition: &str) -> R<Option<bool>> {
    debug_assert!(is_partition_name(partition));
    match conn
        .query_opt(&format!("SELECT 1 FROM {partition} LIMIT 1"), &[])
        .await
    {
        Ok(row) => Ok(Some(row.is_some())),
        Err(e) if is_undefined_table(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The months of a set of instants.
pub fn months_of(ms: impl IntoIterator<Item = Millis>) -> BTreeSet<Month> {
    ms.into_iter().map(Month::of).collect()
}

/// Checks that `name` is a partition name this module makes (for callers that take it back from
/// the catalog).
pub fn is_partition_name(name: &str) -> bool {
    PARTITIONED.iter().any(|t| {
        name.strip_prefix(t)
            .and_then(|rest| rest.strip_prefix("_p"))
            .is_some_and(|d| d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_calendar_months_in_utc() {
        // 2026-11-30T23:59:59.999Z and 2026-12-01T00:00:00Z
        let end = 1_796_083_199_999;
        assert_eq!(Month::of(end).partition_of("entries"), "entries_p202611");
        assert_eq!(
            Month::of(end + 1).partition_of("entries"),
            "entries_p202612"
        );
        assert_eq!(Month::of(end + 1).start_ms(), end + 1);
        assert_eq!(
            Month::of(end).next().next().partition_of("entry_keys"),
            "entry_keys_p202701"
        );
        assert_eq!(Month::of(0).partition_of("entries"), "entries_p197001");
    }

    #[test]
    fn a_months_pk_range_holds_exactly_its_entries() {
        let m = Month::of(1_796_083_199_999);
        let (lo, hi) = m.pk_range();
        assert_eq!(lo, pk_floor(m.start_ms()));
        assert_eq!(hi, pk_floor(m.next().start_ms()));
        assert!(pk_floor(1_796_083_199_999) < hi);
        assert_eq!(pk_floor(1_796_083_199_999 + 1), hi);
    }

    #[test]
    fn a_partitions_month_is_read_back_from_its_name() {
        let m = Month::of(1_796_083_199_999);
        assert_eq!(
            Month::of_partition("entries", &m.partition_of("entries")),
            Some(m)
        );
        assert_eq!(
            Month::of_partition("entry_keys", &m.partition_of("entry_keys")),
            Some(m)
        );
        assert_eq!(Month::of_partition("entries", "entry_keys_p202611"), None);
        assert_eq!(Month::of_partition("entries", "entries_p202613"), None);
        assert_eq!(Month::of_partition("entries", "entries_p2026110"), None);
    }

    #[test]
    fn a_forgotten_month_is_looked_up_again() {
        let partitions = Partitions::default();
        let (a, b) = (Month::of(0), Month::of(0).next());
        partitions.known.lock().unwrap().extend([a, b]);
        partitions.forget([a]);
        assert!(!partitions.knows(a) && partitions.knows(b));
    }

    #[test]
    fn partition_names_are_recognised() {
        assert!(is_partition_name("entries_p202611"));
        assert!(is_partition_name("entry_keys_p197001"));
        assert!(!is_partition_name("entries"));
        assert!(!is_partition_name("entries_p2026"));
    }
}
